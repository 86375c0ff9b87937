"""One voice alone or two at once, in many languages: the material that keeps the overlap screen
from learning what the training voices sound like.

A main voice (a `Talker`) is a synthetic voice of `testing.voices`, or a real Asterisk voice
(English Allison, French June) pitch-shifted into other-sounding people: sox's `pitch` moves the
formants with the pitch, so each shift is a new voice that still sounds recorded, not
synthesized. Training only ever sees the tune languages; English and French Asterisk voices are
the only real ones, and French (June) is held out with the other held languages.

Every item is deterministic given its talker, condition and index.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import degrade, mixtures, voices
from .phrasebook import SENTENCES

SR = 16000
# The espeak-ng voices of `mixtures.HELD` stay unseen voices even where their language is tuned.
HELD_VOICES = frozenset(f"espeak:{name}" for name in mixtures.HELD.espeak)
REAL_SHIFTS = {"en": (0, -300, 300, -500, 200), "fr": (0, -300, 300)}  # cents


@dataclass(frozen=True)
class Talker:
    label: str  # 'espeak:it+m1', 'real:en-300', ...
    lang: str
    voice: voices.Voice | None  # None for a real voice
    cents: int = 0  # real voices: the pitch shift that makes this person of the recording

    @property
    def real(self) -> bool:
        return self.voice is None

    @property
    def split(self) -> str:
        return voices.LANG_SPLIT[self.lang]


def talkers(split: str) -> list[Talker]:
    """Every installed main voice of a split ('tune' or 'held')."""
    out = [Talker(f"real:{lang}{c:+d}", lang, None, c) for lang, shifts in REAL_SHIFTS.items() for c in shifts
           if voices.LANG_SPLIT[lang] == split]
    out += [Talker(v.label, v.lang, v) for v in voices.voices(split) if v.label not in HELD_VOICES]
    return out


@lru_cache(maxsize=512)  # a few hundred MB of audio at most; interferers repeat
def utterance(talker: Talker, index: int) -> np.ndarray:
    """Item `index` of a talker read alone: two sentences (one joined prompt for real voices),
    at a reading speed that varies by +-10 %."""
    rng = np.random.default_rng([index, len(talker.label)])
    if talker.real:
        pool = mixtures.TUNE if talker.lang == "en" else mixtures.HELD
        _, x = mixtures.main_utterance(pool, index)
        return degrade.pitch_shift(x, SR, talker.cents) if talker.cents else x
    sentences = SENTENCES[talker.lang]
    speed = float(rng.choice([0.9, 1.0, 1.1]))
    a = voices.speak(talker.voice, sentences[index % len(sentences)], speed)
    b = voices.speak(talker.voice, sentences[(index + 1) % len(sentences)], speed)
    return np.concatenate([a, np.zeros(int(rng.uniform(0.2, 0.5) * SR), np.float32), b])


@dataclass(frozen=True)
class Item:
    talker: str
    lang: str
    condition: str  # 'clean' | 'overlap'
    recipe: str
    audio: np.ndarray  # 16 kHz mono float32, peak 0.5


def make(talker: Talker, condition: str, index: int, others: list[Talker]) -> Item:
    """Item `index` of `talker`: alone ('clean') or with a second voice from `others`
    ('overlap'): the same language and another in turn, at 0 or 5 dB over 30-100 % of the clip."""
    x = utterance(talker, index)
    recipe = "clean"
    if condition == "overlap":
        rng = np.random.default_rng([index, len(talker.label), 7])
        same = [o for o in others if o.lang == talker.lang and o.label != talker.label]
        other_langs = [o for o in others if o.lang != talker.lang]
        pick = same if (index // 2) % 2 == 0 and same else other_langs or same
        other = pick[int(rng.integers(len(pick)))]
        second = np.zeros(0, np.float32)
        k = int(rng.integers(0, 50))
        while len(second) < len(x):
            second = np.concatenate([second, utterance(other, k), np.zeros(int(0.2 * SR), np.float32)])
            k += 1
        snr = (0.0, 5.0)[index % 2]
        ratio = (1.0, 0.6, 0.3, 0.8)[(index // 4) % 4]
        x = degrade.mix_at_snr(x, mixtures.place(len(x), second, ratio, rng), snr + 10 * np.log10(ratio))
        recipe = f"overlap {snr:.0f} dB, {ratio:.0%} of the clip, {other.label} ({other.lang})"
    elif condition != "clean":
        raise ValueError(f"unknown condition {condition!r}")
    peak = float(np.max(np.abs(x)))
    return Item(talker.label, talker.lang, condition, recipe, (x * (0.5 / max(peak, 1e-6))).astype(np.float32))
