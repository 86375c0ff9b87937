"""How far `train`'s pre-flight memory estimate is from what was measured. Prints figures;
asserts nothing (tests/model/test_train.py holds the estimate to the error recorded in
RESULTS.md).

    .venv/bin/python benchmarks/bench_preflight.py [--device cpu|cuda] [--presets tiny,v2]
        [--seconds 8] [--at 6,12] [--db STORE --speakers a,b --train-batches 2,8]

1. The model: for each preset, the fit from the pre-flight's two probes (the longest clip taken
   as `--seconds` long) extrapolated to each `--at` batch size, against a probe measured
   directly at that size (the same synthetic batch: what the straight line misses).
2. With `--db`: real `clonebench train` runs (tiny, one epoch of each stage) at each
   `--train-batches` size on that store's clips, the run's measured peak against the pre-flight
   estimate it printed (mixed lengths, the feature cache, checkpoints and validation included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from clonebench.model.config import preset  # noqa: E402
from clonebench.model.preflight import PROBE_BATCHES, ClipShape, fit_memory, probe  # noqa: E402


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB"


def model_error(name: str, seconds: float, sizes: list[int], device: torch.device) -> None:
    s, g = preset(name)
    shape = ClipShape("synthetic", "-", seconds, int(seconds * 50) // 2 * 2, int(seconds * 12))
    t = time.perf_counter()
    fit = fit_memory(s, g, shape, device, "auto", frozen=False)
    took = time.perf_counter() - t
    print(f"{name}, {seconds:.0f} s clips: probes {', '.join(f'batch {b} {gib(p)}' for b, p in fit.probes)} "
          f"({took:.1f} s); {gib(fit.per_row_bytes)} a row over {gib(fit.fixed_bytes)}")
    for b in sizes:
        measured = probe(s, g, shape, b, device, "auto", frozen=False)
        print(f"  batch {b:3d}: estimated {gib(fit.at(b))}, measured {gib(measured)}, "
              f"error {(fit.at(b) - measured) / measured:+.1%}")


def run_error(db: str, speakers: str, batches: list[int]) -> None:
    for b in batches:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "clonebench.cli", "train", "--speakers", speakers, "--db", db,
                   "--out", str(Path(tmp) / f"b{b}"), "--s2-epochs", "1", "--s1-epochs", "1",
                   "--batch-size", str(b), "--no-report", "--json"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                print(f"  batch {b}: train failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            m = json.loads(done.stdout)["memory"]
            print(f"  train, tiny, batch {b:3d}: estimated {gib(m['estimated_bytes'])}, run's peak "
                  f"{gib(m['peak_bytes'])}, error {(m['estimated_bytes'] - m['peak_bytes']) / m['peak_bytes']:+.1%}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--presets", default="tiny,v2")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--at", default="6,12")
    ap.add_argument("--db")
    ap.add_argument("--speakers", default="allison,robo")
    ap.add_argument("--train-batches", default="2,8")
    args = ap.parse_args()
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.machine()}, {os.cpu_count()} cores"
    print(f"{where}, torch {torch.__version__}; probes at batch {PROBE_BATCHES[0]} and {PROBE_BATCHES[1]}")
    for name in args.presets.split(","):
        model_error(name, args.seconds, [int(b) for b in args.at.split(",")], device)
    if args.db:
        run_error(args.db, args.speakers, [int(b) for b in args.train_batches.split(",")])


if __name__ == "__main__":
    main()
