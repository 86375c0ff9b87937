"""Silence-based slicing of long recordings into clips.

The idea follows GPT-SoVITS's slicer (RMS threshold, minimum clip length, minimum silence
interval, maximum silence kept at each edge) and adds what it lacks:
- a maximum clip length: a stretch of speech longer than it is split at its quietest frame;
- an adaptive threshold, so noisy or very quiet recordings still slice (and then get their
  `noise` / `too_quiet` verdicts) instead of coming out as one block or nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SLICER_VERSION = "slicer-1"
SILENT_DBFS = -75.0  # a recording whose loud frames stay under this has nothing to slice


@dataclass(frozen=True)
class SliceConfig:
    threshold_db: float = -40.0  # frames quieter than this (dBFS RMS) are silence
    min_clip_s: float = 3.0  # a clip closes at a silence once it is at least this long
    max_clip_s: float = 15.0  # longer speech is split at its quietest frame
    min_interval_s: float = 0.3  # shorter silences never cut
    max_sil_kept_s: float = 0.5  # silence kept at each edge of a clip
    hop_s: float = 0.01
    win_s: float = 0.02


def frame_db(x: np.ndarray, sr: int, hop_s: float, win_s: float) -> np.ndarray:
    """RMS level per frame in dBFS."""
    hop, win = int(sr * hop_s), int(sr * win_s)
    if len(x) < win:
        x = np.pad(x, (0, win - len(x)))
    n = 1 + (len(x) - win) // hop
    idx = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(x[idx].astype(np.float64) ** 2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10))


def effective_threshold(db: np.ndarray, cfg: SliceConfig) -> float:
    """The configured threshold, raised above a high noise floor and lowered for quiet takes."""
    floor, loud = np.percentile(db, 10), np.percentile(db, 95)
    return float(min(max(cfg.threshold_db, floor + 8.0), loud - 12.0))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def slice_audio(x: np.ndarray, sr: int, cfg: SliceConfig = SliceConfig()) -> list[tuple[float, float]]:
    """Return (start_s, end_s) of each clip. A recording with no sound above silence gives []."""
    db = frame_db(x, sr, cfg.hop_s, cfg.win_s)
    if np.percentile(db, 95) < SILENT_DBFS:
        return []  # nothing audible at all
    thr = effective_threshold(db, cfg)
    loud = db >= thr
    if not loud.any():
        return []
    min_gap = max(1, round(cfg.min_interval_s / cfg.hop_s))
    keep = round(cfg.max_sil_kept_s / cfg.hop_s)
    n = len(db)

    # 1. Speech stretches: sound separated by silences of at least min_interval.
    stretches: list[list[int]] = []
    for start, stop in _runs(loud):
        if stretches and start - stretches[-1][1] < min_gap:
            stretches[-1][1] = stop
        else:
            stretches.append([start, stop])

    # 2. Split any stretch longer than max_clip at its quietest frame (beyond min_clip).
    max_f, min_f = round(cfg.max_clip_s / cfg.hop_s), round(cfg.min_clip_s / cfg.hop_s)
    pieces: list[tuple[int, int]] = []
    for start, stop in stretches:
        while stop - start > max_f - 2 * keep:
            lo, hi = start + min_f, start + max_f - 2 * keep
            cut = lo + int(np.argmin(db[lo:hi])) if hi > lo else start + max_f - 2 * keep
            pieces.append((start, cut))
            start = cut
        pieces.append((start, stop))

    # 3. Merge neighbours until each clip reaches min_clip, never exceeding max_clip. A piece
    #    still short after the forward pass joins its previous clip when that fits, so a
    #    7 s file with a pause in it stays one clip instead of a 5 s clip and a 2 s scrap.
    clips: list[list[int]] = []
    for start, stop in pieces:
        if clips and clips[-1][1] - clips[-1][0] < min_f and stop - clips[-1][0] + 2 * keep <= max_f:
            clips[-1][1] = stop
        else:
            clips.append([start, stop])
    merged: list[list[int]] = []
    for clip in clips:
        if merged and clip[1] - clip[0] < min_f and clip[1] - merged[-1][0] + 2 * keep <= max_f:
            merged[-1][1] = clip[1]
        else:
            merged.append(clip)
    clips = merged

    # 4. Pad each clip with up to max_sil_kept of its silence, without overlapping neighbours.
    out = []
    for i, (start, stop) in enumerate(clips):
        left_limit = clips[i - 1][1] if i else 0
        right_limit = clips[i + 1][0] if i + 1 < len(clips) else n
        a = max(start - keep, (start + left_limit) // 2 if i else 0)
        b = min(stop + keep, (stop + right_limit) // 2 if i + 1 < len(clips) else n)
        out.append((round(a * cfg.hop_s, 3), round(min(b * cfg.hop_s, len(x) / sr), 3)))
    return out
