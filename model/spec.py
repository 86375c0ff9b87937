"""Which GPT + SoVITS pair to load, and how: the settings `synth`, model-mode evaluation and
`serve` share, checked once before anything loads."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from clonebench.core.errors import UserError

PRECISIONS = ("fp32", "fp16", "bf16")
TIMBRES = ("reference", "speaker")
SV_MODEL_ENV = "CLONEBENCH_SV_MODEL"


@dataclass(frozen=True)
class ModelSpec:
    gpt: Path                   # GPT-SoVITS .ckpt (the text -> semantic-token model)
    sovits: Path                # GPT-SoVITS .pth (the decoder)
    content: str | None = None  # whisper-base or cnhubert:/folder; None: what the SoVITS file was trained with
    bert: Path | None = None    # chinese-roberta-wwm-ext-large folder; None: zeros (as upstream for non-Chinese)
    device: str = "cpu"
    precision: str = "fp32"     # fp32, fp16 (on a CPU: the GPT's matrices only) or bf16
    threads: int | None = None  # torch CPU threads; None: torch's default
    # v2Pro/v2ProPlus: the ERes2NetV2 file, and where a voice's 20480-d timbre vector comes from:
    # `reference` (upstream's way: the prompt clip) or `speaker` (the timbre library's mean over
    # the speaker's accepted clips, written by `vet --sv-model`)
    sv_model: Path | None = None
    timbre: str = "reference"

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
        if self.timbre not in TIMBRES:
            raise UserError(f"--timbre {self.timbre}: use reference or speaker")
        if self.sv_model is not None:
            object.__setattr__(self, "sv_model", Path(self.sv_model).expanduser())
            if not self.sv_model.is_file():
                raise UserError(f"--sv-model {self.sv_model}: no such file")

    def with_files(self, gpt: Path, sovits: Path, timbre: str | None = None) -> "ModelSpec":
        """Another checkpoint pair loaded the same way (a baseline, a run's epoch), optionally
        with another timbre source."""
        return replace(self, gpt=Path(gpt), sovits=Path(sovits), timbre=timbre or self.timbre)


def load_timbre_model(path: Path | None, sv_dim: int, version: str, device: str = "cpu", optional: bool = False):
    """The one way a v2Pro/v2ProPlus model's ERes2NetV2 is found and checked (synthesis and training)."""
    import os

    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    path = path or os.environ.get(SV_MODEL_ENV)
    if not path:
        if optional:
            return None
        raise UserError(f"a GPT-SoVITS {version} model conditions on ERes2NetV2 timbre vectors: pass --sv-model "
                        "pretrained_eres2netv2w24s4ep4.ckpt (GPT_SoVITS/pretrained_models/sv/ in upstream's release) "
                        f"or set {SV_MODEL_ENV}")
    model = ERes2NetV2Encoder(Path(path), device=device)
    if model.timbre_dim != sv_dim:
        raise UserError(f"--sv-model {path}: its timbre vector is {model.timbre_dim}-d; the {version} model takes {sv_dim}-d")
    return model
