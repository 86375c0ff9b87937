"""Signal-level screens that need no neural model: SNR, loudness, bandwidth, reverberation,
articulation time and syllable nuclei.

Each function takes a mono float32 clip and returns plain numbers; `measure` gathers them.
"""

from __future__ import annotations

import numpy as np
from scipy import signal
from scipy.ndimage import uniform_filter1d

PRODUCER = "acoustics-3"


def _frame_power(x: np.ndarray, sr: int, win_s: float = 0.025, hop_s: float = 0.010) -> np.ndarray:
    win, hop = int(sr * win_s), int(sr * hop_s)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return np.mean(x[idx].astype(np.float64) ** 2, axis=1)


def _mask_to_frames(mask: np.ndarray, mask_hop_s: float, n_frames: int, hop_s: float = 0.010) -> np.ndarray:
    t = np.arange(n_frames) * hop_s
    idx = np.minimum((t / mask_hop_s).astype(int), len(mask) - 1)
    return mask[idx]


def snr_db(x: np.ndarray, sr: int, speech: np.ndarray, speech_hop_s: float) -> float:
    """Blind SNR: mean power of the VAD's speech frames over the noise floor.

    The floor is the 5th percentile of 25 ms frame powers. Silero marks >90 % of a tightly
    cut clip as speech (it bridges word gaps), so its non-speech frames are too few and too
    close to speech to measure noise; the quietest frames (pauses between words and
    syllables) show the floor in clean and noisy clips alike.
    """
    p = _frame_power(x, sr)
    is_speech = _mask_to_frames(speech, speech_hop_s, len(p)) if len(speech) else np.zeros(len(p), bool)
    noise = float(np.percentile(p, 5))
    loud = p[is_speech] if is_speech.any() else p
    sig = max(float(np.mean(loud)) - noise, 1e-12)
    return float(np.clip(10 * np.log10(sig / max(noise, 1e-12)), -20.0, 80.0))


def loudness_lufs(x: np.ndarray, sr: int) -> float | None:
    """Integrated loudness (ITU-R BS.1770, gated). None for clips under 0.4 s."""
    import pyloudnorm

    if len(x) < int(0.4 * sr) + 1:
        return None
    value = pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))
    return float(value) if np.isfinite(value) else -120.0


def bandwidth_hz(x: np.ndarray, sr: int, drop_db: float = 50.0) -> float:
    """Effective upper frequency: the highest frequency whose long-term level is within
    `drop_db` of the speech band's (300-3000 Hz) level.

    Telephone-band audio, however it was upsampled, has almost nothing above 3.4-4 kHz; a
    wideband microphone keeps energy to 7 kHz and beyond, 40 dB or less under the speech band.
    """
    if len(x) < 2048:
        return 0.0
    f, pxx = signal.welch(x, sr, nperseg=2048, noverlap=1024)
    level = 10 * np.log10(np.maximum(pxx, 1e-20))
    # smooth over ~200 Hz so single tones or bins do not decide
    level = uniform_filter1d(level, max(1, int(200 / (f[1] - f[0]))), mode="nearest")
    ref = np.median(level[(f >= 300) & (f <= 3000)])
    above = np.flatnonzero(level >= ref - drop_db)
    return float(f[above[-1]]) if len(above) else 0.0


def reverb_rt60_s(x: np.ndarray, sr: int) -> float:
    """Blind reverberation time from the fastest free decays of the sub-band energy envelope.

    In a room, no sound can die away faster than the room lets it: after each word offset the
    level falls at most 60 dB per RT60. Clean close-talk speech has offsets that fall at
    several hundred dB/s; reverberant speech cannot beat 60/RT60 dB/s. We fit straight lines
    to 150 ms stretches of the log energy in 8 bands, keep the well-fitting decays that start
    20 dB over the band's noise floor, and read RT60 from the 90th percentile of decay rates.

    Calibrated on synthetic rooms (benchmarks/RESULTS.md): clean prompts 0.17-0.29 s, RT60
    0.5 s -> 0.35-0.41, 0.8 s -> 0.42-0.52, 1.2 s -> 0.47-0.60. It reads low for long rooms
    (the direct sound and early decay dominate 150 ms fits) but keeps their order.
    """
    if len(x) < sr // 2:
        return 0.0
    hop = int(sr * 0.008)
    f, _, z = signal.stft(x, sr, nperseg=4 * hop, noverlap=3 * hop, boundary=None)
    power = np.abs(z) ** 2
    edges = np.geomspace(250, min(6000, sr / 2 - 1), 9)
    win = int(round(0.15 / (hop / sr)))  # frames in a 150 ms fit
    t = np.arange(win) * hop / sr
    t_c = t - t.mean()
    denom = float(np.sum(t_c**2))
    rates = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = power[(f >= lo) & (f < hi)].sum(axis=0)
        if band.size < win + 1:
            continue
        db = 10 * np.log10(np.maximum(band, 1e-12))
        floor = np.percentile(db, 10)
        # all 100 ms windows at once: slope and fit quality by least squares
        idx = np.arange(win)[None, :] + np.arange(len(db) - win + 1)[:, None]
        seg = db[idx]
        seg_c = seg - seg.mean(axis=1, keepdims=True)
        slope = seg_c @ t_c / denom
        resid = seg_c - slope[:, None] * t_c[None, :]
        r2 = 1 - np.sum(resid**2, axis=1) / np.maximum(np.sum(seg_c**2, axis=1), 1e-9)
        good = (slope < -20) & (r2 > 0.8) & (seg[:, 0] > floor + 20) & (seg[:, -1] > floor + 3)
        rates.extend((-slope[good]).tolist())
    if len(rates) < 5:
        return 0.0
    fast = float(np.percentile(rates, 90))
    return float(min(60.0 / fast, 5.0))


def articulation_s(x: np.ndarray, sr: int, min_pause_s: float = 0.15) -> float:
    """Seconds of articulated speech, pauses left out: 10 ms frames within 35 dB of the clip's
    loud frames and 12 dB over its floor, with gaps shorter than `min_pause_s` (stop closures,
    not pauses) counted as speech. Speaking rate over this time is the articulation rate, which
    long hesitations do not dilute and which a slowed reading lowers in proportion."""
    db = 10 * np.log10(_frame_power(x, sr) + 1e-12)
    active = (db > np.percentile(db, 99) - 35) & (db > np.percentile(db, 5) + 12)
    idx = np.flatnonzero(active)
    if not len(idx):
        return 0.0
    gaps = np.diff(idx) - 1
    bridged = int(gaps[(gaps > 0) & (gaps < round(min_pause_s / 0.010))].sum())
    return float((len(idx) + bridged) * 0.010)


def syllable_nuclei(x: np.ndarray, sr: int) -> int:
    """Syllables counted from the signal alone: peaks of the 300-2500 Hz band's loudness (40 ms
    frames, lightly smoothed) that rise 2 dB over the dips either side of them and reach the
    louder of the clip's median and 25 dB under its loud frames (after de Jong & Wempe, 2009).

    It needs no transcript, so it confirms a rate read from the recogniser's words: a slowed or
    hurried reading moves both, a sentence the recogniser missed lowers only the latter.
    Measured on the mixtures: 0.8-1.1 nuclei per dictionary syllable, +-10 % clip to clip.
    """
    if len(x) < sr // 10:
        return 0
    band = signal.sosfiltfilt(signal.butter(4, [300, 2500], "bandpass", fs=sr, output="sos"), x.astype(np.float64))
    db = 10 * np.log10(_frame_power(band, sr, win_s=0.040) + 1e-12)
    db = np.convolve(db, np.hanning(5) / np.hanning(5).sum(), mode="same")
    floor = max(float(np.percentile(db, 99)) - 25, float(np.median(db)))
    peaks, _ = signal.find_peaks(db, height=floor, prominence=2.0, distance=6)
    return len(peaks)


def measure(x16: np.ndarray, x32: np.ndarray, speech: np.ndarray, speech_hop_s: float) -> dict[str, float | None]:
    """All signal screens of one clip. Bandwidth uses the 32 kHz copy, the rest 16 kHz."""
    speech_s = float(speech.sum() * speech_hop_s)
    duration = len(x16) / 16000
    articulated = articulation_s(x16, 16000)
    return {
        "snr_db": snr_db(x16, 16000, speech, speech_hop_s),
        "loudness_lufs": loudness_lufs(x16, 16000),
        "bandwidth_hz": bandwidth_hz(x32, 32000),
        "rt60_s": reverb_rt60_s(x16, 16000),
        "speech_s": speech_s,
        "articulation_s": articulated,
        "nuclei_rate": syllable_nuclei(x16, 16000) / articulated if articulated >= 0.5 else None,
        "silence_ratio": float(1.0 - speech_s / duration) if duration else 1.0,
    }
