"""The models a vetting run loads: the per-clip ones (ASR, speaker encoder, overlap detector)
and the optional v2Pro timbre encoder, from the user's specs (`instruments`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from clonebench.instruments.jobs import OverlapDetector, SpeakerEncoder, Transcriber

from .rules import RuleSet

if TYPE_CHECKING:
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    from .vet import VetOptions


@dataclass
class VetModels:
    transcriber: Transcriber
    encoder: SpeakerEncoder
    overlap: OverlapDetector | None = None
    timbre: "ERes2NetV2Encoder | None" = None   # --sv-model: v2Pro timbre vectors for the timbre library


def load_models(opts: VetOptions) -> tuple["VetModels", RuleSet]:
    """Models and rules load before any work, so a bad --asr/--speaker-encoder/--overlap/--rules
    fails at once and leaves no store behind."""
    sv = None
    if opts.sv_model is not None:
        from clonebench.instruments.eres2net import ERes2NetV2Encoder

        sv = ERes2NetV2Encoder(opts.sv_model)
    models = clip_models(opts.asr, opts.speaker_encoder, opts.overlap, sv)
    return models, RuleSet.load(opts.rules).for_encoder(models.encoder.name)


def clip_models(asr: str | None, encoder: str | None, overlap: str | None, timbre=None) -> "VetModels":
    """The per-clip models from their specs (None: the embedded defaults; no overlap detector)."""
    from clonebench import instruments

    return VetModels(instruments.transcriber(asr), instruments.speaker_encoder(encoder),
                     instruments.overlap_detector(overlap), timbre)
