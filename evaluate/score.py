"""The scoring core: one eval item's audio in, one `eval_items` row out.

Both modes use it: `--audio-dir` scores files made by any system, model mode scores what our
own model synthesized (and adds the timing it measured).

Per item: Whisper transcript and WER/CER counts (`clonebench.textnorm`), speaker similarity to
the reference centroid (`sim`) and to the prompt clip (`sim_o`), DNSMOS P.835, and sanity
checks. DNSMOS is a noise-suppression-oriented MOS: it rates how clean and undistorted speech
sounds, not how natural a voice clone is; UTMOS is the naturalness MOS when given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clonebench.core import textnorm
from clonebench.core.errors import AudioError
from clonebench.instruments.registry import sha256_file
from clonebench.instruments.jobs import NaturalnessMOS, QualityMOS, SpeakerEncoder, Transcriber, VoiceActivity
from clonebench.instruments.references import SR, SpeakerReference, load_16k

from .items import ManifestItem

# Sanity flags. Speaking rates outside these bounds (syllables, or Han characters, per second
# of speech) mean words were skipped or repeated, or the audio babbles; normal read speech is
# 3-6 syllables per second.
RATE_BOUNDS = (1.8, 9.0)
MOSTLY_SILENT = 0.6  # share of the audio without speech
CLIPPING = 0.001  # share of samples at full scale
MIN_AUDIO_S = 0.2


@dataclass
class Models:
    """The models scoring needs, loaded once per run."""

    encoder: SpeakerEncoder
    transcriber: Transcriber
    dnsmos: QualityMOS
    vad: VoiceActivity
    utmos: NaturalnessMOS | None = None
    prompt_cache: dict = field(default_factory=dict)

    @classmethod
    def load(cls, asr: str | None = None, speaker_encoder: str | None = None, utmos: str | None = None) -> "Models":
        """The embedded defaults, or the local models named as in `instruments`."""
        from clonebench import instruments
        from clonebench.instruments.dnsmos import DNSMOS
        from clonebench.instruments.vad import SileroVAD

        return cls(instruments.speaker_encoder(speaker_encoder), instruments.transcriber(asr), DNSMOS(), SileroVAD(),
                   instruments.mos_predictor(utmos))

    def prompt_embedding(self, path) -> np.ndarray:
        key = str(path)
        if key not in self.prompt_cache:
            self.prompt_cache[key] = self.encoder.embedding(load_16k(path)[0])
        return self.prompt_cache[key]


def error_row(item: ManifestItem, error: str) -> dict:
    return {"item_key": item.item_key, "speaker": item.speaker, "lang": item.lang, "text": item.text,
            "path": str(item.path) if item.path else None, "status": "error", "error": error, "flags": []}


def score_item(models: Models, item: ManifestItem, reference: SpeakerReference | None,
               x16: np.ndarray | None = None, clip_ratio: float = 0.0) -> dict:
    """Score one item. Audio comes from `item.path` unless given (model mode passes it).
    Problems with the item become an error row; a missing reference only blanks similarity."""
    if item.error:
        return error_row(item, item.error)
    sha = None
    if x16 is None:
        try:
            x16, clip_ratio = load_16k(item.path)
            sha = sha256_file(item.path)
        except AudioError as e:
            return error_row(item, str(e))
    duration = len(x16) / SR
    if duration < MIN_AUDIO_S:
        return error_row(item, f"{item.path}: {duration:.2f} s of audio is too short to score")

    row = error_row(item, "")
    row.update(status="ok", error=None, audio_sha256=sha, duration_s=duration, clip_ratio=clip_ratio,
               synth_s=item.synth_s, rtf=item.synth_s / duration if item.synth_s else None,
               ttfa_s=item.ttfa_s)

    transcript = models.transcriber.transcribe_each([x16], item.lang)[0]
    row["hyp_text"] = transcript.text
    counts = textnorm.error_counts(item.text, transcript.text, item.lang)
    if counts is None:
        row.update(status="partial", error=f"text {item.text!r} has no words after normalization: no WER")
    else:
        unit, chars = counts
        row.update(unit=textnorm.unit_for(item.lang), hits=unit.hits, subs=unit.substitutions, dels=unit.deletions,
                   ins=unit.insertions, wer=unit.rate, char_hits=chars.hits, char_subs=chars.substitutions,
                   char_dels=chars.deletions, char_ins=chars.insertions, cer=chars.rate)

    row.update(models.dnsmos.score(x16))
    if models.utmos is not None:
        row["utmos"] = models.utmos.score(x16)

    emb = models.encoder.embedding(x16)
    if reference is None:
        row.update(status="partial", error=f"no reference for speaker {item.speaker}: vet their recordings "
                                           f"or pass --reference {item.speaker}=PATH; similarity not scored")
    else:
        row["sim"] = float(emb @ reference.centroid)
        prompt = reference.prompt_embedding
        if item.prompt is not None:
            try:
                prompt = models.prompt_embedding(item.prompt)
                row["prompt_path"] = str(item.prompt)
            except AudioError as e:
                row.update(status="partial", error=f"prompt unreadable, SIM-o against the default prompt: {e}")
        row.setdefault("prompt_path", reference.prompt_path)
        row["sim_o"] = float(emb @ prompt)

    row.update(_sanity(models, x16, item, clip_ratio))
    return row


def _sanity(models: Models, x16: np.ndarray, item: ManifestItem, clip_ratio: float) -> dict:
    from clonebench.core.syllables import count_syllables
    from clonebench.instruments.vad import FRAME_S, speech_mask

    mask = speech_mask(models.vad.probabilities(x16))
    speech_s = float(mask.sum() * FRAME_S)
    silence_ratio = 1.0 - speech_s / max(len(x16) / SR, 1e-9)
    syllables = count_syllables(item.text, item.lang)
    rate = syllables / speech_s if speech_s > 0 else None
    flags = []
    if rate is None or not RATE_BOUNDS[0] <= rate <= RATE_BOUNDS[1]:
        flags.append("duration_outlier")
    if silence_ratio > MOSTLY_SILENT:
        flags.append("mostly_silent")
    if clip_ratio > CLIPPING:
        flags.append("clipping")
    return {"silence_ratio": max(0.0, silence_ratio), "speech_rate": rate, "flags": flags}
