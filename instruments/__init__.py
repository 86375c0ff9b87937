"""Models the user brings from disk, beside the embedded defaults.

    --asr             faster-whisper (default) | openai-whisper:FILE.pt
    --speaker-encoder resemblyzer (default)    | ecapa:DIR   (speechbrain spkrec-ecapa-voxceleb layout)
                                               | wavlm:DIR   (transformers WavLMForXVector folder)
                                               | eres2netv2:FILE (ERes2NetV2 state dict, upstream
                                                 GPT-SoVITS's pretrained_eres2netv2w24s4ep4.ckpt)
    --overlap         (none by default)        | pyannote:PATH (segmentation checkpoint or its folder)
    --utmos           (none by default)        | utmos:DIR   (see instruments.utmos)

Each option also reads an environment variable (CLONEBENCH_ASR, CLONEBENCH_SPEAKER_ENCODER,
CLONEBENCH_OVERLAP, CLONEBENCH_UTMOS). speechbrain and pyannote.audio are optional
(`pip install 'clonebench[byo]'`); the default path never imports them. Every loader works
offline, refuses files that would run code when read, and turns a missing or broken model
into one `ModelError` line.
"""

from __future__ import annotations

import importlib.metadata
from typing import Callable

from clonebench.core.errors import ModelError

from .local import Spec, enforce_offline

OPTIONS = {  # option -> (environment variable, job)
    "--asr": ("CLONEBENCH_ASR", "ASR + word timestamps"),
    "--speaker-encoder": ("CLONEBENCH_SPEAKER_ENCODER", "speaker embedding"),
    "--overlap": ("CLONEBENCH_OVERLAP", "overlapped-speech detection"),
    "--utmos": ("CLONEBENCH_UTMOS", "naturalness MOS"),
}
EXTRA = "pip install 'clonebench[byo]'"
KINDS = {  # option -> (kinds read from a local PATH, built-in names)
    "--asr": (("openai-whisper",), ("faster-whisper",)),
    "--speaker-encoder": (("ecapa", "wavlm", "eres2netv2"), ("resemblyzer",)),
    "--overlap": (("pyannote",), ()),
}


def check_spec(option: str, value: str | None) -> None:
    """A model option's kind and path, checked without loading anything (`vet --ray` checks them
    on the driver before its workers load the models)."""
    if not value or value in KINDS[option][1]:
        return
    spec = Spec.parse(option, value, *KINDS[option])
    if spec.path is not None and not spec.path.exists():
        raise ModelError(f"{option} {value}: no such file or folder")


def _needs(package: str, option: str, kind: str) -> None:
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"{option} {kind} needs the {package} package: {EXTRA}") from None


def transcriber(value: str | None = None):
    from clonebench.instruments.asr import FasterWhisper

    if not value or value == "faster-whisper":
        return FasterWhisper()
    spec = Spec.parse("--asr", value, *KINDS["--asr"])
    from .openai_whisper import OpenAIWhisper

    return OpenAIWhisper(spec)


def speaker_encoder(value: str | None = None):
    from clonebench.instruments.speakers import SpeakerEncoder

    if not value or value == "resemblyzer":
        return SpeakerEncoder()
    spec = Spec.parse("--speaker-encoder", value, *KINDS["--speaker-encoder"])
    if spec.kind == "eres2netv2":
        from .eres2net import ERes2NetV2Encoder

        return ERes2NetV2Encoder(spec.path, label=f"{spec.option} {spec.kind}")
    if spec.kind == "wavlm":
        from .wavlm import WavLMEncoder

        return WavLMEncoder(spec)
    _needs("speechbrain", spec.option, spec.kind)
    from .ecapa import EcapaEncoder

    return EcapaEncoder(spec)


def overlap_detector(value: str | None = None):
    if not value:
        return None
    spec = Spec.parse("--overlap", value, *KINDS["--overlap"])
    _needs("pyannote.audio", spec.option, spec.kind)
    from .overlap import PyannoteOverlap

    return PyannoteOverlap(spec)


def mos_predictor(value: str | None = None):
    if not value:
        return None
    spec = Spec.parse("--utmos", value if ":" in value else f"utmos:{value}", ("utmos",))
    from .utmos import UTMOS

    return UTMOS(spec)


FACTORIES: dict[str, Callable] = {
    "--asr": transcriber, "--speaker-encoder": speaker_encoder, "--overlap": overlap_detector, "--utmos": mos_predictor,
}


def backend_report(choices: dict[str, str | None]) -> list[dict]:
    """One row per configured local model: what it is, where it comes from, its SHA-256, and
    whether it loads (it is loaded to find out). Options left at their default are listed with
    the optional libraries' versions, so a user sees what could be plugged in."""
    enforce_offline()
    rows = []
    for option, (env, job) in OPTIONS.items():
        value = choices.get(option)
        if not value or value in ("faster-whisper", "resemblyzer"):
            libs = {"--speaker-encoder": "speechbrain", "--overlap": "pyannote.audio"}.get(option)
            note = "embedded default" if option in ("--asr", "--speaker-encoder") else "off"
            if libs:
                try:
                    note += f"; {libs} {importlib.metadata.version(libs)} installed"
                except importlib.metadata.PackageNotFoundError:
                    note += f"; {libs} not installed ({EXTRA})"
            rows.append({"name": option.lstrip("-"), "job": job, "source": f"not set ({option} or {env})",
                         "status": note, "configured": False})
            continue
        row = {"name": option.lstrip("-"), "job": job, "source": value, "configured": True}
        try:
            model = FACTORIES[option](value)
            row.update(status="ok (loads)", model=getattr(model, "name", None) or model.producer("en"),
                       source=getattr(model, "source", value), sha256=getattr(model, "sha256", None))
        except ModelError as e:
            row["status"] = str(e)
        rows.append(row)
    return rows


def model_report(choices: dict[str, str | None]) -> list[dict]:
    """`clonebench models`: the embedded models (wheel, SHA-256 checked) and the local ones given,
    each with `usable` (an embedded model verifies; a configured local model loads)."""
    from clonebench.instruments.registry import model_report as embedded

    rows = embedded()
    for r in rows:
        r["usable"] = r["status"] == "ok"
    for r in backend_report(choices):
        r["usable"] = not r["configured"] or r["status"].startswith("ok")
        rows.append(r)
    return rows
