"""The acoustic scene of a clip: one voice alone, two voices at once, a crowd, music or noise.

A multinomial logistic regression on YAMNet's 1024-d patch embeddings, pooled over the clip
(mean and standard deviation, so both what is there and how it changes over time count). It
is ours: trained by `scripts/train_scene_classifier.py` on mixtures built from the Debian speech
packages and music on hold (`testing.mixtures.TUNE`) and on one voice alone or two at once in 20
tune languages (`testing.multilingual`: espeak-ng, MBROLA, Festival and Pico voices, and real
voices pitch-shifted into other people). It is scored on languages, voices and music it never
heard (`testing.voices.HELD_LANGS`, `testing.mixtures.HELD`); the figures are in
benchmarks/RESULTS.md. The first version, trained on English voices only, heard "not English or
French" as two voices; the verdict rules still let it reject on its own only when it is sure
(`curate.rules.second_voice`). The weights (59 kB) ship in `instruments/weights/`, checked by
SHA-256 before use like the embedded models.

YAMNet's own class scores cannot do this job: its "Music" score reaches 0.3-0.8 on two voices
mixed, and its crowd and babble classes stay at zero after int8 quantization.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clonebench.core.errors import ModelError
from clonebench.instruments.registry import sha256_file

SCENES = ("clean", "overlap", "babble", "music", "noise")
WEIGHTS = Path(__file__).with_name("weights") / "scenes-v2.npz"
WEIGHTS_SHA256 = "0191254c1522d6a01f0cb7544ccaeeeb522e84bbc3b5791f45507a58e526d843"
PRODUCER = f"scenes-v2@{WEIGHTS_SHA256[:12]}"


def pool(embeddings: np.ndarray) -> np.ndarray:
    """Clip features from [patches, 1024] embeddings: their mean and standard deviation."""
    e = np.asarray(embeddings, np.float32)
    return np.concatenate([e.mean(axis=0), e.std(axis=0)])


class SceneClassifier:
    def __init__(self, path: Path = WEIGHTS, sha256: str | None = WEIGHTS_SHA256) -> None:
        if not Path(path).is_file():
            raise ModelError(f"scene classifier: {path} is missing (reinstall clonebench)")
        if sha256 is not None and sha256_file(path) != sha256:
            raise ModelError(f"scene classifier: {path} has the wrong SHA-256 (corrupt or edited): retrain with "
                             "scripts/train_scene_classifier.py or reinstall")
        with np.load(path, allow_pickle=False) as w:
            if tuple(w["scenes"]) != SCENES:
                raise ModelError(f"scene classifier: {path} has classes {tuple(w['scenes'])}, expected {SCENES}")
            self.mean, self.scale = w["mean"], w["scale"]
            self.coef, self.intercept = w["coef"], w["intercept"]

    def probabilities(self, embeddings: np.ndarray) -> dict[str, float]:
        """Scene probabilities of one clip, from its YAMNet patch embeddings."""
        return self.probabilities_of_features(pool(embeddings))

    def probabilities_of_features(self, features: np.ndarray) -> dict[str, float]:
        """Scene probabilities from a clip's pooled features (`pool`)."""
        z = (features - self.mean) / self.scale
        logits = self.coef @ z + self.intercept
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {f"scene_{s}": float(v) for s, v in zip(SCENES, p)}


def save(path: Path, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
    np.savez(path, scenes=np.array(SCENES), mean=mean.astype(np.float32), scale=scale.astype(np.float32),
             coef=coef.astype(np.float32), intercept=intercept.astype(np.float32))
