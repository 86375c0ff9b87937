"""What scoring each epoch costs a training run (`train --eval-every`). Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_choose.py [--s1-epochs 3] [--eval-items 8]

Vets two speakers (Allison's prompts, ~70 s, and an espeak-ng voice, ~40 s, as the training
tests do), then trains the `tiny` preset twice side by side in one run, the same epochs and
seed (after a warm-up run that fills the feature cache): without scoring and with `--eval-every 1`. Prints each run's wall time, the difference
per scored epoch, and each pair's evaluation time from the store (synthesis and scoring of
`--eval-items` sentences per speaker).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import run_cli, vetted_training_store  # noqa: E402

from clonebench.store import Store  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--s2-epochs", type=int, default=2)
    ap.add_argument("--s1-epochs", type=int, default=3)
    ap.add_argument("--eval-items", type=int, default=8)
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, Python {platform.python_version()}, {__import__('os').cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        db = vetted_training_store(Path(tmp))
        code, _, err = run_cli("train", "--all", "--preset", "tiny", "--out", str(Path(tmp) / "warm-up"), "--db", str(db),
                               "--s2-epochs", "1", "--s1-epochs", "1", "--no-report", "--json")
        assert code == 0, err   # fills the feature cache, so that neither timed run computes features
        walls = {}
        for name, extra in (("plain", ()), ("scored", ("--eval-every", "1", "--eval-items", str(a.eval_items),
                                                       "--choose", "sim"))):
            t = time.perf_counter()
            code, doc, err = run_cli("train", "--all", "--preset", "tiny", "--out", str(Path(tmp) / name), "--db", str(db),
                                     "--s2-epochs", str(a.s2_epochs), "--s1-epochs", str(a.s1_epochs), "--save-every",
                                     "1000", "--no-report", "--json", *extra)
            assert code == 0, err
            walls[name] = time.perf_counter() - t
        with Store(db, read_only=True) as store:
            runs = store.query("SELECT label, epoch(finished_at - created_at) AS s, n_items FROM eval_runs "
                               "WHERE label LIKE 'scored e%' ORDER BY label")
    extra = walls["scored"] - walls["plain"]
    print(f"tiny, {a.s2_epochs} s2 + {a.s1_epochs} s1 epochs, 2 speakers, {doc['train_clips']} training clips")
    print(f"| run | wall s |\n|---|---|\n| without scoring | {walls['plain']:.1f} |\n| --eval-every 1 | {walls['scored']:.1f} |")
    print(f"added per scored epoch: {extra / a.s1_epochs:.1f} s ({a.eval_items} sentences per speaker)")
    for r in runs:
        print(f"  {r['label']}: scoring {r['s']:.1f} s for {r['n_items']} items (synthesis before it not included)")
    print(f"chosen: {doc['choice']['why']}")


if __name__ == "__main__":
    main()
