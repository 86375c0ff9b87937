"""Known degradations of clean speech, for the demo corpus, the tests and the accuracy benchmark.

Every function is deterministic given its seed, so a labelled set can be rebuilt exactly.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from scipy import signal

from clonebench.core.audio import read_wav, resample, write_wav


def _power(x: np.ndarray) -> float:
    return float(np.mean(x.astype(np.float64) ** 2)) + 1e-12


def mix_at_snr(speech: np.ndarray, other: np.ndarray, snr_db: float) -> np.ndarray:
    """speech + other, with `other` scaled so speech power / other power = snr_db."""
    other = np.resize(other, len(speech)).astype(np.float32)
    gain = np.sqrt(_power(speech) / (_power(other) * 10 ** (snr_db / 10)))
    return (speech + gain * other).astype(np.float32)


def add_white_noise(x: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    return mix_at_snr(x, np.random.default_rng(seed).standard_normal(len(x)), snr_db)


def add_reverb(x: np.ndarray, sr: int, rt60_s: float, seed: int = 0) -> np.ndarray:
    """Convolve with a synthetic room: direct path plus exponentially decaying noise (RT60)."""
    rng = np.random.default_rng(seed)
    n = int(sr * rt60_s * 1.2)
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.908 * t / rt60_s)
    rir[: int(0.002 * sr)] = 0.0  # the first reflection comes after the direct sound
    rir = 0.5 * rir / np.sqrt(np.sum(rir**2))
    rir[0] = 1.0
    y = signal.fftconvolve(x, rir)[: len(x) + n // 2]
    return (y * (np.max(np.abs(x)) / max(np.max(np.abs(y)), 1e-9))).astype(np.float32)


def hard_clip(x: np.ndarray, gain_db: float = 12.0) -> np.ndarray:
    return np.clip(x * 10 ** (gain_db / 20), -1.0, 1.0).astype(np.float32)


def telephone_band(x: np.ndarray, sr: int) -> np.ndarray:
    """Down to 8 kHz and back: what a phone line leaves (nothing above 4 kHz)."""
    return resample(resample(x, sr, 8000), 8000, sr)


def _sox(x: np.ndarray, sr: int, *effect: str) -> np.ndarray:
    """Run one sox effect on `x`."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError(f"sox is needed for `{effect[0]}` (apt-get install sox)")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        write_wav(src, x, sr)
        # -D: no dither, which sox adds at random and which would make every run's audio differ
        subprocess.run([sox, "-D", str(src), str(dst), *effect], check=True, capture_output=True)
        y, _ = read_wav(dst)
    return y


def time_stretch(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """Speed speech up by `factor` without changing its pitch (sox `tempo`, WSOLA)."""
    return _sox(x, sr, "tempo", "-s", str(factor))


def pitch_shift(x: np.ndarray, sr: int, cents: int) -> np.ndarray:
    """Another-sounding talker from a real voice: sox `pitch` keeps the tempo."""
    return _sox(x, sr, "pitch", str(cents))


def scale_db(x: np.ndarray, gain_db: float) -> np.ndarray:
    return (x * 10 ** (gain_db / 20)).astype(np.float32)
