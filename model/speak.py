"""Library functions behind `clonebench synth` and `clonebench init-model`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.errors import UserError

from .decode import SamplingParams
from .spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthOptions:
    """`clonebench synth`: the voice comes from a vetted `speaker` in `db`, or from `ref_audio`
    with its `prompt_text`."""
    model: ModelSpec
    text: str
    out: Path
    lang: str = "auto"
    speaker: str | None = None
    db: Path | None = None
    ref_audio: Path | None = None
    prompt_text: str | None = None
    prompt_lang: str = "auto"
    params: SamplingParams = field(default_factory=SamplingParams)
    seed: int = 0
    speed: float = 1.0

    def __post_init__(self) -> None:
        """Everything that can be checked before the models load."""
        from .synthesize import check_speed
        from .text.frontend import check_lang, language_runs

        if (self.speaker is None) == (self.ref_audio is None):
            raise UserError("give exactly one of --speaker or --ref-audio")
        if self.ref_audio is not None:
            if not Path(self.ref_audio).is_file():
                raise UserError(f"--ref-audio {self.ref_audio}: no such file")
            if not (self.prompt_text or "").strip():
                raise UserError("--prompt-text is required with --ref-audio (the words spoken in the reference)")
            check_lang(self.prompt_lang)
        check_speed(self.speed)
        language_runs(self.text, self.lang)   # an unsupported language or script fails here, not after loading


def synth(opts: SynthOptions) -> dict:
    from clonebench.core.audio import write_wav
    from clonebench.instruments.references import prompt_from_file, prompt_from_store

    from .synthesize import Synthesizer

    prompt = (prompt_from_store(opts.db, opts.speaker) if opts.speaker
              else prompt_from_file(opts.ref_audio, opts.prompt_text, opts.prompt_lang))
    synthesizer = Synthesizer(opts.model)
    ref = synthesizer.reference(prompt)
    result = synthesizer.synthesize(opts.text, opts.lang, ref, opts.params, seed=opts.seed, speed=opts.speed)
    write_wav(opts.out, result.audio, result.sample_rate)
    return {"out": str(opts.out), "sample_rate": result.sample_rate, "duration_s": round(result.duration_s, 3),
            "tokens": len(result.tokens), "sentences": result.sentences, "reference": prompt.source,
            "model_version": synthesizer.version,
            "rtf": round(result.rtf, 4), "ttfa_s": round(result.ttfa_s, 4),
            "timings_s": {k: round(v, 4) for k, v in result.timings.items()}}


def init_model(preset_name: str, out: Path, seed: int = 0, sv_dim: int = 0) -> dict:
    """Random-weight GPT + SoVITS files of a preset: for trying the pipeline and for speed tests."""
    import torch

    from . import checkpoint
    from .config import preset
    from .gpt import Text2Semantic
    from .sovits import SoVITS

    s_config, g_config = preset(preset_name)
    if sv_dim and s_config.is_pro:
        raise UserError(f"--sv-dim: the {preset_name} preset has upstream's own timbre path ({s_config.sv_dim}-d)")
    if sv_dim:
        s_config.sv_dim, s_config.sv_encoder = sv_dim, "resemblyzer"
    torch.manual_seed(seed)
    out = Path(out)
    paths = {"gpt": out / f"{preset_name}-gpt.ckpt", "sovits": out / f"{preset_name}-sovits.pth"}
    checkpoint.save_gpt(paths["gpt"], Text2Semantic(g_config), g_config)
    sovits = SoVITS(s_config)
    # a fresh codebook is all zeros (k-means fills it in training): give it distinct codes
    sovits.quantizer.codebooks[0].embed.normal_()
    checkpoint.save_sovits(paths["sovits"], sovits, s_config)
    return {k: str(v) for k, v in paths.items()}
