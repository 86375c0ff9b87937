"""Train the scene classifier (`instruments.scenes`) and score it on voices it never saw.

    .venv/bin/python scripts/train_scene_classifier.py [--per-condition 60] [--held 24] [--out PATH]

Training set: every condition of `testing.mixtures.TUNE` (English Allison with English espeak-ng
interferers and three music tracks), plus clips whose main voice is itself an espeak-ng voice
(alone, or overlapped), so that "one voice alone" is not learnt as "Allison". Held-out set:
`testing.mixtures.HELD` (French June, other espeak-ng voices, the other two music tracks).

Prints the held-out accuracy and confusion matrix and the new file's SHA-256, which goes into
`instruments/scenes.py` (WEIGHTS_SHA256).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.instruments import scenes  # noqa: E402
from clonebench.instruments.registry import sha256_file  # noqa: E402
from clonebench.instruments.yamnet import YAMNet  # noqa: E402
from clonebench.testing import corpus, degrade, mixtures  # noqa: E402

SR = 16000


def synthetic_main_voices(pool: mixtures.Pool, n: int) -> list[tuple[str, np.ndarray]]:
    """Clips whose main voice is an espeak-ng voice: alone (clean) or with a second talker."""
    rng = np.random.default_rng(7)
    texts = [p.text for p in corpus.prompts(pool.main)]
    out = []
    for i in range(n):
        voice = pool.espeak[i % len(pool.espeak)]
        text = f"{texts[(5 * i) % len(texts)]} {texts[(5 * i + 1) % len(texts)]}"
        x = corpus.espeak(text, voice, speed_wpm=int(rng.integers(140, 190)))
        if i % 2 == 0:
            out.append(("clean", x))
        else:
            _, other = mixtures.talker(pool, rng, len(x) / SR + 0.5)
            out.append(("overlap", degrade.mix_at_snr(x, other[: len(x)], float(rng.choice([0.0, 5.0])))))
    return out


def features(yamnet: YAMNet, items: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([scenes.pool(yamnet.run(audio)[1]) for _, audio in items])
    y = np.array([scenes.SCENES.index(label) for label, _ in items])
    return x, y


def items(pool: mixtures.Pool, n: int) -> list[tuple[str, np.ndarray]]:
    return [(mixtures.SCENE_OF[c], mixtures.make(pool, c, i).audio) for c in mixtures.CONDITIONS for i in range(n)]


def main() -> None:
    from sklearn.linear_model import LogisticRegression  # librosa's dependency; only training needs it

    ap = argparse.ArgumentParser()
    ap.add_argument("--per-condition", type=int, default=60)
    ap.add_argument("--held", type=int, default=24)
    ap.add_argument("--out", type=Path, default=scenes.WEIGHTS)
    args = ap.parse_args()
    yamnet = YAMNet()
    x, y = features(yamnet, items(mixtures.TUNE, args.per_condition) + synthetic_main_voices(mixtures.TUNE, 2 * args.per_condition))
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-3
    # Strong L2: 2048 features against a few hundred clips; C was picked on the tune voices.
    clf = LogisticRegression(C=0.01, max_iter=5000).fit((x - mean) / scale, y)
    print(f"trained on {len(y)} clips: " + ", ".join(f"{s} {int((y == k).sum())}" for k, s in enumerate(scenes.SCENES)))
    print(f"training accuracy {np.mean(clf.predict((x - mean) / scale) == y):.3f}")
    scenes.save(args.out, mean, scale, clf.coef_, clf.intercept_)
    model = scenes.SceneClassifier(args.out, sha256=None)
    held = items(mixtures.HELD, args.held)
    confusion = np.zeros((len(scenes.SCENES), len(scenes.SCENES)), int)
    for label, audio in held:
        p = model.probabilities(yamnet.run(audio)[1])
        confusion[scenes.SCENES.index(label), int(np.argmax(list(p.values())))] += 1
    print(f"held-out accuracy {np.trace(confusion) / confusion.sum():.3f} on {confusion.sum()} clips "
          "(rows: true scene, columns: predicted)")
    print("          " + " ".join(f"{s:>8}" for s in scenes.SCENES))
    for s, row in zip(scenes.SCENES, confusion):
        print(f"{s:>9} " + " ".join(f"{v:8d}" for v in row))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes), SHA-256 {sha256_file(args.out)}")


if __name__ == "__main__":
    main()
