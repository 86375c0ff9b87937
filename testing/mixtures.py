"""Labelled mixtures for the vetting screens: clean speech, overlapped talkers, babble, music,
noise and slowed or hurried speech, built from the Debian speech packages and espeak-ng.

Voices, interferers and music tracks come in two disjoint pools:
- `TUNE`: English Allison, four espeak-ng English voices, three music-on-hold tracks; the
  overlap classifier is trained and the thresholds are chosen on it;
- `HELD`: French June, four other espeak-ng voices (French and English), the two other tracks;
  only ever scored.

Every item is deterministic given its pool, condition and index, so a set can be rebuilt exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from clonebench.instruments.scenes import SCENES

from . import corpus, degrade

SR = 16000
CONDITIONS = ("clean", "overlap", "babble", "music", "noise", "slow", "fast", "reverb", "clipping", "telephone")
# The scene classifier's label of each condition: one voice alone, whatever else is wrong with it,
# is "clean".
SCENE_OF = {c: c if c in SCENES else "clean" for c in CONDITIONS}


@dataclass(frozen=True)
class Pool:
    name: str
    main: str  # the real voice vetted as the speaker: "en" (Allison) or "fr" (June)
    espeak: tuple[str, ...]  # interfering synthetic voices
    music: tuple[int, ...]  # music-on-hold tracks (indices into corpus.music)


TUNE = Pool("tune", "en", ("en-us+m3", "en-gb-x-rp+f3", "en+m7", "en-gb-scotland+f2"), (0, 1, 2))
HELD = Pool("held", "fr", ("fr-fr+m1", "fr-be+f4", "en-029+f5", "en-us-nyc+m4"), (3, 4))


@dataclass(frozen=True)
class Item:
    pool: str
    condition: str
    index: int
    recipe: str  # how it was made, e.g. "overlap 5 dB, 60 %, espeak fr-be+f4"
    audio: np.ndarray  # 16 kHz mono float32
    text: str  # what the main voice says


@lru_cache(maxsize=2)
def _utterances(lang: str) -> tuple[tuple[str, np.ndarray], ...]:
    """The main voice's prompts of 2-9 s, with their text, in a fixed order."""
    out = []
    for p in corpus.prompts(lang, min_words=4):
        x = corpus.load_prompt(p)
        if 2.0 <= len(x) / SR <= 9.0:
            out.append((p.text, x))
    return tuple(out)


def main_utterance(pool: Pool, index: int, min_s: float = 4.0) -> tuple[str, np.ndarray]:
    """The main utterance of an item: one prompt, or the next ones joined on until `min_s`."""
    utts = _utterances(pool.main)
    k = 3 * index
    text, x = utts[k % len(utts)]
    while len(x) / SR < min_s:
        k += 1
        t2, x2 = utts[k % len(utts)]
        text, x = f"{text} {t2}", np.concatenate([x, np.zeros(int(0.25 * SR), np.float32), x2])
    return text, x


def talker(pool: Pool, rng: np.random.Generator, seconds: float) -> tuple[str, np.ndarray]:
    """One interfering talker, at least `seconds` long: the main voice pitch-shifted, or an
    espeak-ng voice reading the main voice's prompts."""
    utts = _utterances(pool.main)
    pieces, total, who = [], 0.0, None
    kind = rng.integers(0, len(pool.espeak) + 1)
    while total < seconds:
        text, x = utts[rng.integers(0, len(utts))]
        if kind == len(pool.espeak):
            cents = int(rng.choice([-500, -400, 300, 400]))
            who = f"{pool.main} pitch {cents:+d}"
            x = degrade.pitch_shift(x, SR, cents)
        else:
            who = f"espeak {pool.espeak[kind]}"
            x = corpus.espeak(text, pool.espeak[kind], speed_wpm=int(rng.integers(140, 190)))
        pieces += [x, np.zeros(int(rng.uniform(0.05, 0.3) * SR), np.float32)]
        total += len(x) / SR
    return who, np.concatenate(pieces)


def place(length: int, other: np.ndarray, ratio: float, rng: np.random.Generator) -> np.ndarray:
    """`other` cut to cover `ratio` of a clip of `length` samples, at a random place in it."""
    span = max(1, int(ratio * length))
    start = int(rng.integers(0, length - span + 1))
    out = np.zeros(length, np.float32)
    out[start : start + span] = other[:span]
    return out


def _noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    f = np.maximum(np.fft.rfftfreq(n, 1 / SR), 20.0)
    spectrum /= np.sqrt(f) if kind == "pink" else f  # pink 1/f power, brown 1/f^2
    return np.fft.irfft(spectrum, n)


def make(pool: Pool, condition: str, index: int) -> Item:
    """Item `index` of `condition` in `pool`; severities cycle through the recipe's settings.
    Mixtures are scaled down where their sum would clip: a recording's level is set by its gain."""
    item = _make(pool, condition, index)
    peak = float(np.max(np.abs(item.audio)))
    if condition != "clipping" and peak > 0.95:
        return dataclasses.replace(item, audio=(item.audio * (0.9 / peak)).astype(np.float32))
    return item


def _make(pool: Pool, condition: str, index: int) -> Item:
    rng = np.random.default_rng([sum(map(ord, pool.name)), CONDITIONS.index(condition), index])
    text, x = main_utterance(pool, index, 7.5 if condition == "fast" else 4.0)
    n = len(x)
    if condition == "clean":
        return Item(pool.name, condition, index, "clean", x, text)
    if condition == "overlap":
        snr = (0.0, 5.0)[index % 2]
        ratio = (1.0, 0.6, 0.3, 0.8)[(index // 2) % 4]
        who, other = talker(pool, rng, ratio * n / SR + 0.5)
        mixed = degrade.mix_at_snr(x, place(n, other, ratio, rng), snr + 10 * np.log10(ratio))
        return Item(pool.name, condition, index, f"overlap {snr:.0f} dB, {ratio:.0%} of the clip, {who}", mixed, text)
    if condition == "babble":
        talkers = 3 + index % 6
        snr = (3.0, 0.0, 6.0)[index % 3]
        crowd = np.zeros(n, np.float32)
        for _ in range(talkers):
            _, t = talker(pool, rng, n / SR + 1.0)
            start = int(rng.integers(0, len(t) - n + 1))
            seg = t[start : start + n]
            crowd += seg / np.sqrt(np.mean(seg**2) + 1e-9)
        return Item(pool.name, condition, index, f"babble of {talkers} talkers, {snr:.0f} dB", degrade.mix_at_snr(x, crowd, snr), text)
    if condition == "music":
        snr = (0.0, 5.0, 10.0)[index % 3]
        track = pool.music[index % len(pool.music)]
        m = corpus.music(n / SR + 1.0, track)
        start = int(rng.integers(0, max(1, len(m) - n)))
        return Item(pool.name, condition, index, f"music track {track}, {snr:.0f} dB",
                    degrade.mix_at_snr(x, m[start : start + n], snr), text)
    if condition == "noise":
        kind = ("white", "pink", "brown")[index % 3]
        snr = (0.0, 5.0, 10.0)[(index // 3) % 3]
        return Item(pool.name, condition, index, f"{kind} noise, {snr:.0f} dB", degrade.mix_at_snr(x, _noise(kind, n, rng), snr), text)
    if condition == "slow":
        factor = (0.5, 0.55, 0.65, 0.75)[index % 4]
        return Item(pool.name, condition, index, f"slowed to {factor}x", degrade.time_stretch(x, SR, factor), text)
    if condition == "fast":
        factor = (1.5, 1.75, 2.0)[index % 3]
        return Item(pool.name, condition, index, f"sped up {factor}x", degrade.time_stretch(x, SR, factor), text)
    if condition == "reverb":
        rt60 = (0.6, 0.9, 1.2)[index % 3]
        return Item(pool.name, condition, index, f"room RT60 {rt60} s", degrade.add_reverb(x, SR, rt60, index), text)
    if condition == "clipping":
        gain = (8.0, 12.0, 16.0)[index % 3]
        return Item(pool.name, condition, index, f"clipped, +{gain:.0f} dB", degrade.hard_clip(x, gain), text)
    if condition == "telephone":
        return Item(pool.name, condition, index, "telephone band", degrade.telephone_band(x, SR), text)
    raise ValueError(f"unknown condition {condition!r}")
