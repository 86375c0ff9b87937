"""Charts as inline SVG (matplotlib, Agg) and clip thumbnails (waveform SVG, spectrogram PNG).

SVG keeps text as text (`svg.fonttype = none`): small files, crisp in print, and matplotlib
escapes every string it writes into the XML.
"""

from __future__ import annotations

import io
import re

import numpy as np
from markupsafe import Markup

from .html import PALETTE, data_uri


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 96})
    return plt


def _svg(fig) -> Markup:
    plt = _plt()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg[svg.index("<svg"):], flags=re.S)  # inline: no prolog, no RDF
    return Markup(svg)


def histogram(values: dict[str, list[float]], title: str, thresholds: list[float], xlabel: str = "") -> Markup:
    """Stacked histogram of one metric, coloured by verdict, with dashed threshold lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.4, 2.0))
    groups = [(k, [v for v in vals if v is not None and np.isfinite(v)]) for k, vals in values.items()]
    data = [g for _, g in groups if g]
    if data:
        ax.hist([g for _, g in groups if g], bins=20, stacked=True, label=[k for k, g in groups if g],
                color=[PALETTE.get(k, PALETTE["blue"]) for k, g in groups if g])
    for t in thresholds:
        ax.axvline(t, color=PALETTE["black"], linestyle="--", linewidth=1)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")
    return _svg(fig)


def lines(series: dict[str, tuple[list[float], list[float]]], title: str, xlabel: str = "step",
          log_y: bool = False, empty: str = "no data") -> Markup:
    """One line per series, e.g. a training loss against steps; a chart with no point at all says
    `empty` instead of showing bare axes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 2.2))
    colours = [PALETTE[k] for k in ("blue", "rejected", "accepted", "orange", "purple", "sky")]
    drawn = {label: xy for label, xy in series.items() if len(xy[0])}
    for (label, (x, y)), c in zip(drawn.items(), colours * 3):
        ax.plot(x, y, color=c, linewidth=1.2, label=label, marker="o" if len(x) < 12 else None, markersize=3)
    if not drawn:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes, color=PALETTE["grey"])
        ax.set_xticks([])
        ax.set_yticks([])
    if log_y:
        ax.set_yscale("log")
    if len(drawn) > 1:
        ax.legend(fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def epochs(series: dict[str, list[tuple[int, float, float, float]]], title: str, chosen: int | None = None) -> Markup:
    """A metric per epoch, one line per series (a speaker, or all), each point (epoch, value, lo,
    hi) with its interval as a band; the chosen epoch as a dashed line."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 2.2))
    colours = [PALETTE[k] for k in ("black", "blue", "rejected", "accepted", "orange", "purple", "sky")]
    for (label, points), c in zip(series.items(), colours * 3):
        x, v, lo, hi = (np.array([p[i] for p in points], dtype=float) for i in range(4))
        ax.plot(x, v, color=c, linewidth=1.2, marker="o", markersize=3, label=label)
        ok = np.isfinite(lo) & np.isfinite(hi)
        ax.fill_between(x[ok], lo[ok], hi[ok], color=c, alpha=0.15, linewidth=0)
    if chosen is not None:
        ax.axvline(chosen, color=PALETTE["accepted"], linestyle="--", linewidth=1, label=f"chosen (epoch {chosen})")
    ax.legend(fontsize=6, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("epoch")
    return _svg(fig)


def trend(points: list[tuple[str, float, float, float]], title: str) -> Markup:
    """One metric across runs in time order: (label, value, lo, hi) with the interval as a bar."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.8, 2.3))
    x = np.arange(len(points))
    v = np.array([p[1] for p in points], dtype=float)
    lo = np.array([p[2] for p in points], dtype=float)
    hi = np.array([p[3] for p in points], dtype=float)
    ax.plot(x, v, color=PALETTE["blue"], linewidth=1.2, marker="o", markersize=3)
    ax.vlines(x, lo, hi, color=PALETTE["blue"], alpha=0.5)
    ax.set_xticks(x, [p[0] for p in points], rotation=45, ha="right", fontsize=6)
    ax.set_title(title, fontsize=9)
    return _svg(fig)


def bars(counts: dict[str, float], title: str, xlabel: str) -> Markup:
    """Horizontal bars, largest first (e.g. clips rejected per reason)."""
    plt = _plt()
    items = sorted(counts.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(4.6, 0.3 * len(items) + 0.8))
    ax.barh(range(len(items)), [v for _, v in items], color=PALETTE["rejected"])
    ax.set_yticks(range(len(items)), [k for k, _ in items])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    return _svg(fig)


def embedding_map(points: np.ndarray, status: list[str], outlier: list[bool], centroid: np.ndarray | None) -> Markup:
    """2-D PCA of clip embeddings; rejected-as-foreign clips ringed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    for st in ("accepted", "rejected"):
        idx = [i for i, s in enumerate(status) if s == st]
        if idx:
            ax.scatter(points[idx, 0], points[idx, 1], s=14, color=PALETTE[st], label=st, alpha=0.85)
    ring = [i for i, o in enumerate(outlier) if o]
    if ring:
        ax.scatter(points[ring, 0], points[ring, 1], s=70, facecolors="none", edgecolors=PALETTE["black"],
                   label="other voice?")
    if centroid is not None:
        ax.scatter([centroid[0]], [centroid[1]], marker="X", s=90, color=PALETTE["blue"], label="centroid")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(fontsize=7, frameon=False)
    return _svg(fig)


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(2-D points, mean, components) by SVD."""
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:2] if len(vt) >= 2 else np.vstack([vt, np.zeros_like(vt)])[:2]
    return (x - mean) @ comps.T, mean, comps


def forest(rows: list[tuple[str, float, float, float, str]], title: str) -> Markup:
    """Differences with their intervals, one row each: (label, value, lo, hi, verdict)."""
    plt = _plt()
    colour = {"better": PALETTE["accepted"], "worse": PALETTE["rejected"], "no_significant_change": PALETTE["grey"]}
    fig, ax = plt.subplots(figsize=(4.6, 0.32 * len(rows) + 0.8))
    for y, (label, v, lo, hi, verdict) in enumerate(reversed(rows)):
        c = colour.get(verdict, PALETTE["grey"])
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [y, y], color=c, linewidth=2)
        ax.plot([v], [y], "o", color=c)
    ax.axvline(0, color=PALETTE["black"], linewidth=0.8)
    ax.set_yticks(range(len(rows)), [r[0] for r in reversed(rows)])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("new − baseline")
    return _svg(fig)


def waveform_svg(x: np.ndarray, width: int = 120, height: int = 28) -> Markup:
    """Min/max envelope as one SVG path: about 1 KB per clip."""
    n = max(1, len(x) // width)
    frames = x[: n * width].reshape(width, n) if len(x) >= width else np.pad(x, (0, width - len(x))).reshape(width, 1)
    top, bottom = frames.max(axis=1), frames.min(axis=1)
    peak = max(float(np.abs(frames).max()), 1e-6)
    mid = height / 2
    up = " ".join(f"{i},{mid - t / peak * mid:.0f}" for i, t in enumerate(top))  # whole pixels: half the bytes
    down = " ".join(f"{i},{mid - b / peak * mid:.0f}" for i, b in reversed(list(enumerate(bottom))))
    return Markup(f'<svg class="wave" viewBox="0 0 {width} {height}" width="{width}" height="{height}" aria-hidden="true">'
                  f'<polygon points="{up} {down}"/></svg>')


def spectrogram_png(x: np.ndarray, width: int = 96, height: int = 32) -> str:
    """A small log-magnitude spectrogram of 16 kHz audio (0-8 kHz) as a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image

    n_fft = 512
    hop = max(n_fft // 4, (len(x) - n_fft) // width + 1) if len(x) > n_fft else n_fft
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:width]
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)).T  # (freq, time)
    db = 20 * np.log10(mag + 1e-6)
    db = np.clip(db, db.max() - 70, None)
    rows = np.linspace(0, db.shape[0] - 1, height).astype(int)
    levels = np.round((db[rows][::-1] - db.max()) / 10.0)  # 8 colour steps: a thumbnail needs no more, and PNG
    buf = io.BytesIO()                                     # compresses flat runs far better than smooth noise
    image.imsave(buf, levels, cmap="viridis", vmin=-7, vmax=0, format="png")
    return data_uri(buf.getvalue(), "image/png")

