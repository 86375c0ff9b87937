"""Transcription, word timestamps and language ID with Whisper.

The default engine is faster-whisper with the embedded CTranslate2 models: English clips use
Whisper tiny.en; every other language (and `auto`) uses Whisper base. A local openai-whisper
`.pt` file can replace it (`--asr openai-whisper:PATH`, see `instruments.openai_whisper`).

Clips are *packed*: consecutive clips are joined, with 0.6 s of silence between them, into
windows of at most 28 s, and each window is transcribed once. Whisper always encodes 30 s, so
transcribing 5 s clips one by one costs several times more than the audio warrants (measured:
1.7x on the English prompts). Words go back to their clip by the time of their midpoint.

Per-clip language ID is only run where it can change a verdict: on clips whose packed
transcription has low confidence (a French clip decoded as English reads as gibberish with
low word probabilities), and in `auto` mode when the packed windows disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clonebench.instruments import registry

SR = 16000
GAP_S = 0.6
PACK_S = 28.0
# Decoding is bounded, so audio Whisper cannot read costs about what readable audio does: at most
# one temperature fallback (Whisper's default tries six), and at most this many tokens per second
# of audio (fast read speech needs under 8, word timestamps included).
TEMPERATURES = (0.0, 0.4)
MAX_TOKENS_PER_S = 12


@dataclass
class Word:
    word: str
    start_s: float  # relative to the clip
    end_s: float
    probability: float


@dataclass
class ClipTranscript:
    text: str
    words: list[Word] = field(default_factory=list)
    language: str | None = None
    language_prob: float | None = None
    lid_scope: str = "forced"  # forced | window | clip
    avg_logprob: float | None = None  # mean log word probability


def model_name_for(lang: str) -> str:
    return "whisper-tiny.en" if lang == "en" else "whisper-base"


def whisper_language(lang: str, knows_cantonese: bool = True) -> str | None:
    """Whisper's language code for ours: mixed Chinese-English is decoded as Chinese, which
    keeps the English words in Latin script; `auto` lets Whisper detect it. Cantonese has a code
    of its own only in large-v3's vocabulary: other models decode it as Chinese (given `yue`,
    they would run without a language token)."""
    if lang == "yue" and not knows_cantonese:
        return "zh"
    return {"auto": None, "zh-en": "zh"}.get(lang, lang)


@dataclass
class Decoded:
    """One engine call's result: words with times relative to the audio given."""

    words: list[Word]
    language: str | None
    language_prob: float | None


class Transcriber:
    """Packing, word mapping and the language-ID policy; an engine supplies `_decode`,
    `detect_language` and `producer`. Engines: `FasterWhisper` (the embedded default) and
    `instruments.openai_whisper.OpenAIWhisper` (a local `.pt` file)."""

    def producer(self, lang: str) -> str:
        raise NotImplementedError

    def detect_language(self, x: np.ndarray) -> tuple[str, float]:
        raise NotImplementedError

    def _decode(self, audio: np.ndarray, lang: str) -> Decoded:
        raise NotImplementedError

    def transcribe(self, clips: list[np.ndarray], lang: str, low_confidence: float = -0.7) -> list[ClipTranscript]:
        """Transcribe clips (16 kHz) in packed windows; `lang` is a code or 'auto'."""
        out: list[ClipTranscript | None] = [None] * len(clips)
        for group in _pack([len(c) / SR for c in clips]):
            gap = np.zeros(int(GAP_S * SR), np.float32)
            pieces, offsets, t = [], [], 0.0
            for i in group:
                offsets.append(t)
                pieces += [clips[i], gap]
                t += len(clips[i]) / SR + GAP_S
            decoded = self._decode(np.concatenate(pieces), lang)
            for j, i in enumerate(group):
                lo, hi = offsets[j], offsets[j] + len(clips[i]) / SR
                mine = [w for w in decoded.words if lo <= (w.start_s + w.end_s) / 2 < hi + GAP_S / 2]
                out[i] = _clip_transcript(mine, lo, hi, decoded, lang)
        # Whisper sometimes ends a packed window early and drops the last clips: those with no
        # words at all are transcribed again on their own.
        for i, tr in enumerate(out):
            if not tr.words:
                out[i] = self._alone(clips[i], lang)
        # Per-clip language ID where it matters (see module docstring).
        window_langs = {o.language for o in out if o.language}
        for i, tr in enumerate(out):
            suspicious = tr.avg_logprob is None or tr.avg_logprob < low_confidence
            if suspicious or (lang == "auto" and len(window_langs) > 1):
                tr.language, tr.language_prob = self.detect_language(clips[i])
                tr.lid_scope = "clip"
        return out  # type: ignore[return-value]

    def transcribe_each(self, clips: list[np.ndarray], lang: str) -> list[ClipTranscript]:
        """Transcribe each clip on its own: no context from neighbours, as evaluation needs
        (an item's WER must not depend on which items were scored beside it)."""
        return [self._alone(x, lang) for x in clips]

    def _alone(self, x: np.ndarray, lang: str) -> ClipTranscript:
        decoded = self._decode(x, lang)
        return _clip_transcript(decoded.words, 0.0, len(x) / SR, decoded, lang)


class FasterWhisper(Transcriber):
    """The embedded CTranslate2 models through faster-whisper, int8 on the CPU. Loads lazily;
    base is only loaded when it is needed."""

    def __init__(self, beam_size: int = 5) -> None:
        self.beam_size = beam_size
        self._models: dict[str, object] = {}

    def model(self, name: str):
        if name not in self._models:
            import os

            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel

            from .onnx_session import cpu_threads

            path = registry.whisper_tiny_en_dir() if name == "whisper-tiny.en" else registry.whisper_base_dir()
            self._models[name] = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
        return self._models[name]

    def producer(self, lang: str) -> str:
        return f"faster-whisper:{model_name_for(lang)}:int8:beam{self.beam_size}:bounded"

    def detect_language(self, x: np.ndarray) -> tuple[str, float]:
        lang, prob, _ = self.model("whisper-base").detect_language(x)
        return lang, float(prob)

    def _decode(self, audio: np.ndarray, lang: str) -> Decoded:
        import ctranslate2

        # The fallback temperature samples: a fixed seed per call makes a re-run (and CI) read
        # the same words, so verdicts do not change from one run to the next.
        ctranslate2.set_random_seed(0)
        model = self.model(model_name_for(lang))
        knows_cantonese = model.hf_tokenizer.token_to_id("<|yue|>") is not None
        segments, info = model.transcribe(
            audio, language=whisper_language(lang, knows_cantonese), beam_size=self.beam_size,
            word_timestamps=True, vad_filter=False, condition_on_previous_text=False,
            temperature=list(TEMPERATURES), max_new_tokens=min(440, 16 + int(MAX_TOKENS_PER_S * len(audio) / SR)),
        )
        words = [Word(w.word, w.start, w.end, float(w.probability)) for s in segments for w in (s.words or [])]
        return Decoded(words, info.language, float(info.language_probability))


def _pack(durations: list[float]) -> list[list[int]]:
    groups: list[list[int]] = []
    total = math.inf
    for i, d in enumerate(durations):
        if total + d + GAP_S > PACK_S:
            groups.append([])
            total = 0.0
        groups[-1].append(i)
        total += d + GAP_S
    return groups


def _clip_transcript(words: list[Word], lo: float, hi: float, decoded: Decoded, lang: str) -> ClipTranscript:
    mapped = []
    for w in words:
        if w.word.strip():
            # a word is the clip's when its midpoint is, so its edges may stick out: clamp both
            end = round(min(hi - lo, max(0.0, w.end_s - lo)), 3)
            mapped.append(Word(w.word.strip(), min(round(max(0.0, w.start_s - lo), 3), end), end, w.probability))
    text = " ".join(w.word for w in mapped)
    avg = float(np.mean([math.log(max(w.probability, 1e-6)) for w in mapped])) if mapped else None
    if lang == "auto":
        return ClipTranscript(text, mapped, decoded.language, decoded.language_prob, "window", avg)
    return ClipTranscript(text, mapped, lang, None, "forced", avg)
