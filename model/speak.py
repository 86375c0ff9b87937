"""Library functions behind `clonebench synth` and `clonebench init-model`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.errors import UserError

from .gpt import SamplingParams

log = logging.getLogger(__name__)


@dataclass
class PromptChoice:
    wav16: np.ndarray
    text: str
    lang: str
    source: str               # file the reference came from
    speaker_embedding: np.ndarray | None = None


def prompt_from_store(db: Path, speaker: str, encoder=None) -> PromptChoice:
    """The speaker's accepted clip (3-10 s, closest to the centroid) and its transcript.
    `encoder` (Resemblyzer by default) embeds clips the store has no vector for."""
    from clonebench import audio
    from curate.speakers import SpeakerEncoder
    from store import Store
    from evaluate.references import from_store

    with Store(db, read_only=True) as store:
        ref = from_store(store, speaker, encoder or SpeakerEncoder())
        if ref is None:
            raise UserError(f"speaker {speaker!r} has no accepted clips in {db}: vet recordings first")
        view = store.clip_by_path(ref.prompt_path)
    if view is None or not (view.text or "").strip():
        raise UserError(f"the reference clip {ref.prompt_path} of {speaker!r} has no transcript: "
                        "pass --ref-audio and --prompt-text")
    lang = view.lang
    if lang not in ("zh", "en", "auto"):
        raise UserError(f"{speaker}'s clips are in {lang!r}, and the text front end reads only zh and en: "
                        "pass --ref-audio with a Chinese or English prompt and its --prompt-text")
    wav, _ = audio.read_wav(ref.prompt_path)
    return PromptChoice(wav, view.text, lang, ref.prompt_path, ref.centroid)


def prompt_from_file(path: Path, text: str, lang: str) -> PromptChoice:
    from evaluate.references import load_16k

    if not text or not text.strip():
        raise UserError("--prompt-text is required with --ref-audio (the words spoken in the reference)")
    wav, _ = load_16k(Path(path))
    return PromptChoice(wav, text, lang, str(path))


def synth(gpt: Path, sovits: Path, text: str, lang: str, out: Path, prompt: PromptChoice,
          params: SamplingParams, seed: int = 0, speed: float = 1.0, content: str | None = None,
          bert: Path | None = None, threads: int | None = None, precision: str = "fp32",
          device: str = "cpu") -> dict:
    from clonebench.audio import write_wav

    from .synthesize import Synthesizer

    synthesizer = Synthesizer(gpt, sovits, content=content, bert_folder=bert, threads=threads,
                              precision=precision, device=device)
    ref = synthesizer.reference(prompt.wav16, prompt.text, prompt.lang, sv=prompt.speaker_embedding)
    result = synthesizer.synthesize(text, lang, ref, params, seed=seed, speed=speed)
    write_wav(out, result.audio, result.sample_rate)
    return {"out": str(out), "sample_rate": result.sample_rate, "duration_s": round(result.duration_s, 3),
            "tokens": len(result.tokens), "sentences": result.sentences, "reference": prompt.source,
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
    if sv_dim:
        s_config.sv_dim, s_config.sv_encoder = sv_dim, "resemblyzer"
    torch.manual_seed(seed)
    out = Path(out)
    paths = {"gpt": out / f"{preset_name}-gpt.ckpt", "sovits": out / f"{preset_name}-sovits.pth"}
    checkpoint.save_gpt(paths["gpt"], Text2Semantic(g_config), g_config)
    sovits = SoVITS(s_config)
    # a fresh codebook is all zeros (k-means fills it in training): give it distinct codes
    sovits.quantizer.vq.layers[0]._codebook.embed.normal_()
    checkpoint.save_sovits(paths["sovits"], sovits, s_config)
    return {k: str(v) for k, v in paths.items()}
