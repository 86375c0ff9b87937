"""Speaker screens with Resemblyzer (256-d GE2E, weights from the `resemblyzer` wheel).

Any encoder with `.name`, `.embed(x) -> (embedding, window embeddings)` and `.embedding(x)`
serves (`--speaker-encoder`, see `instruments`); Resemblyzer is the embedded default.

- Within a clip: embeddings of 1.6 s windows. A second voice shows as a point in time where
  the windows before and the windows after point in different directions; we report the
  lowest cosine between the two sides over every split point (`spk_consistency`).
- Across clips: the cosine of each clip to the speaker's robust centroid (`spk_centroid_cos`,
  computed when verdicts are made, because the centroid depends on all the speaker's clips), and
  of the clip's least typical window to it (`spk_window_min_cos`).
"""

from __future__ import annotations

import numpy as np

from clonebench.instruments import registry

ENCODER = f"resemblyzer=={registry.RESEMBLYZER.version}"
SR = 16000


WINDOW_S, HOP_S = 1.6, 0.4  # the window embeddings behind the within-clip screens (Resemblyzer's own partials)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def unit_rows(v: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length."""
    v = np.asarray(v, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)


def embed_with_windows(encode, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(clip embedding, embeddings of 1.6 s windows every 0.4 s) for an encoder whose
    `encode(list of 16 kHz arrays)` returns one unit row per array. A clip shorter than one
    window is its own only window."""
    whole = encode([x])[0]
    win, hop = int(WINDOW_S * SR), int(HOP_S * SR)
    if len(x) < win:
        return whole, whole[None]
    return whole, encode([x[s:s + win] for s in range(0, len(x) - win + 1, hop)])


def split_consistency(partials: np.ndarray, min_side: int = 2) -> float:
    """Lowest cosine between the mean embedding before and after any split point in time."""
    n = len(partials)
    if n < 2 * min_side:
        return 1.0
    worst = 1.0
    for k in range(min_side, n - min_side + 1):
        a, b = _unit(partials[:k].mean(axis=0)), _unit(partials[k:].mean(axis=0))
        worst = min(worst, float(a @ b))
    return worst


def split_gap(partials: np.ndarray, centroid: np.ndarray, min_side: int = 2) -> float:
    """Largest difference, over split points, between how well the two sides of a clip match
    the speaker's centroid. A clip half this speaker and half someone else scores high even
    when the two voices are alike enough to pass `split_consistency`."""
    n = len(partials)
    best = 0.0
    for k in range(min_side, n - min_side + 1):
        a = float(_unit(partials[:k].mean(axis=0)) @ centroid)
        b = float(_unit(partials[k:].mean(axis=0)) @ centroid)
        best = max(best, abs(a - b))
    return best


def window_min_cos(partials: np.ndarray, centroid: np.ndarray) -> float:
    """The lowest cosine of any window embedding to the speaker's centroid: where a second
    voice enters for a second or more, that window's embedding leaves the speaker's, whatever
    language either speaks."""
    return float((unit_rows(partials) @ centroid).min())


class SpeakerEncoder:
    name = ENCODER

    def __init__(self) -> None:
        import torch
        from resemblyzer import VoiceEncoder

        from .onnx_session import cpu_threads

        torch.set_num_threads(cpu_threads())
        weights = registry.verified_file(registry.RESEMBLYZER, "pretrained.pt")
        self.encoder = VoiceEncoder("cpu", verbose=False, weights_fpath=weights)

    def embed(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(clip embedding, 1.6 s partial embeddings) for 16 kHz audio."""
        from resemblyzer import preprocess_wav

        wav = preprocess_wav(x, source_sr=SR)  # level-normalise and trim long pauses
        if len(wav) < SR // 2:
            wav = x
        embed, partials, _ = self.encoder.embed_utterance(wav, return_partials=True, rate=2.5)
        return embed.astype(np.float32), partials.astype(np.float32)

    def embedding(self, x: np.ndarray) -> np.ndarray:
        """The unit-length utterance embedding of 16 kHz audio: the interface every speaker
        encoder offers to evaluation."""
        return _unit(self.embed(x)[0]).astype(np.float32)


def centroid(embeddings, robust: bool = False, keep: float = 0.8) -> np.ndarray:
    """A speaker's centroid: the unit mean of unit clip embeddings. The one function behind the
    vetting screens (`robust`), the timbre library and the references for similarity.

    `robust` keeps the `keep` share of clips closest to the plain mean (with 5 clips or more),
    so a few foreign clips do not pull the centroid the speaker screens compare with."""
    e = unit_rows(np.stack(list(embeddings)))
    c = _unit(e.mean(axis=0))
    if robust and len(e) >= 5:
        best = np.argsort(-(e @ c))[: max(3, int(np.ceil(keep * len(e))))]
        c = _unit(e[best].mean(axis=0))
    return c.astype(np.float32)
