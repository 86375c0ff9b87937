"""The scoring core: one eval item's audio in, one `eval_items` row (`store.EvalItem`) out.

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
from clonebench.store import EvalItem

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


def error_item(run_id: str, item: ManifestItem, error: str) -> EvalItem:
    """An item that could not be scored, with the reason."""
    return EvalItem(run_id, item.item_key, item.speaker, item.lang, item.text, str(item.path) if item.path else None,
                    status="error", error=error)


def score_item(models: Models, run_id: str, item: ManifestItem, reference: SpeakerReference | None,
               x16: np.ndarray | None = None, clip_ratio: float = 0.0) -> EvalItem:
    """Score one item of run `run_id`. Audio comes from `item.path` unless given.
    Problems with the item make an error item; a missing reference only blanks similarity."""
    if item.error:
        return error_item(run_id, item, item.error)
    sha = None
    if x16 is None:
        try:
            x16, clip_ratio = load_16k(item.path)
            sha = sha256_file(item.path)
        except AudioError as e:
            return error_item(run_id, item, str(e))
    duration = len(x16) / SR
    if duration < MIN_AUDIO_S:
        return error_item(run_id, item, f"{item.path}: {duration:.2f} s of audio is too short to score")

    problem = None  # what makes the item partial; a later problem replaces an earlier one
    transcript = models.transcriber.transcribe_each([x16], item.lang)[0]
    counts = textnorm.error_counts(item.text, transcript.text, item.lang)
    if counts is None:
        problem = f"text {item.text!r} has no words after normalization: no WER"
    words, chars = counts or (None, None)
    hits, subs, dels, ins, wer = _alignment(words)
    char_hits, char_subs, char_dels, char_ins, cer = _alignment(chars)
    mos = models.dnsmos.score(x16)
    utmos = models.utmos.score(x16) if models.utmos is not None else None

    emb = models.encoder.embedding(x16)
    sim = sim_o = prompt_path = None
    if reference is None:
        problem = (f"no reference for speaker {item.speaker}: vet their recordings "
                   f"or pass --reference {item.speaker}=PATH; similarity not scored")
    else:
        sim = float(emb @ reference.centroid)
        prompt, prompt_path = reference.prompt_embedding, reference.prompt_path
        if item.prompt is not None:
            try:
                prompt, prompt_path = models.prompt_embedding(item.prompt), str(item.prompt)
            except AudioError as e:
                problem = f"prompt unreadable, SIM-o against the default prompt: {e}"
        sim_o = float(emb @ prompt)

    sanity = _sanity(models, x16, item, clip_ratio)
    return EvalItem(
        run_id, item.item_key, item.speaker, item.lang, item.text, str(item.path) if item.path else None,
        prompt_path=prompt_path, audio_sha256=sha, status="partial" if problem else "ok", error=problem,
        duration_s=duration, hyp_text=transcript.text, unit=textnorm.unit_for(item.lang) if counts else None,
        hits=hits, subs=subs, dels=dels, ins=ins, char_hits=char_hits, char_subs=char_subs, char_dels=char_dels,
        char_ins=char_ins, wer=wer, cer=cer, sim=sim, sim_o=sim_o, dnsmos_sig=mos["dnsmos_sig"],
        dnsmos_bak=mos["dnsmos_bak"], dnsmos_ovrl=mos["dnsmos_ovrl"], utmos=utmos,
        synth_s=item.synth_s, rtf=item.synth_s / duration if item.synth_s else None, ttfa_s=item.ttfa_s,
        clip_ratio=clip_ratio, silence_ratio=sanity.silence_ratio, speech_rate=sanity.speech_rate, flags=sanity.flags)


def _alignment(c: textnorm.ErrorCounts | None) -> tuple:
    """(hits, substitutions, deletions, insertions, rate), all None without counts."""
    return (None,) * 5 if c is None else (c.hits, c.substitutions, c.deletions, c.insertions, c.rate)


@dataclass(frozen=True)
class Sanity:
    silence_ratio: float
    speech_rate: float | None    # syllables (or Han characters) per second of speech
    flags: tuple[str, ...]


def _sanity(models: Models, x16: np.ndarray, item: ManifestItem, clip_ratio: float) -> Sanity:
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
    return Sanity(max(0.0, silence_ratio), rate, tuple(flags))
