"""Which GPT + SoVITS pair to load, and how: the settings `synth`, model-mode evaluation and
`serve` share, checked once before anything loads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from clonebench.core.errors import UserError

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelSpec:
    gpt: Path                   # GPT-SoVITS .ckpt (the text -> semantic-token model)
    sovits: Path                # GPT-SoVITS .pth (the decoder)
    content: str | None = None  # whisper-base or cnhubert:/folder; None: what the SoVITS file was trained with
    bert: Path | None = None    # chinese-roberta-wwm-ext-large folder; None: zeros (as upstream for non-Chinese)
    device: str = "cpu"
    precision: str = "fp32"     # fp32, fp16 (on a CPU: the GPT's matrices only) or bf16
    threads: int | None = None  # torch CPU threads; None: torch's default

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpt", Path(self.gpt))
        object.__setattr__(self, "sovits", Path(self.sovits))
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision {self.precision}: use fp32, fp16 or bf16")
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise UserError(f"--device {self.device}: use cpu or cuda (cuda:N for one GPU)")
        if self.threads is not None and self.threads < 1:
            raise UserError("--threads must be at least 1")
        for flag, path in (("--gpt", self.gpt), ("--sovits", self.sovits)):
            if not path.is_file():
                raise UserError(f"{flag} {path}: no such file")
        if self.bert is not None and not Path(self.bert).is_dir():
            raise UserError(f"--bert {self.bert}: no such folder")

    def with_files(self, gpt: Path, sovits: Path) -> "ModelSpec":
        """Another checkpoint pair loaded the same way (a baseline, a run's epoch)."""
        return replace(self, gpt=Path(gpt), sovits=Path(sovits))
