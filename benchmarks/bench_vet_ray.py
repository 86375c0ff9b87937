"""`vet` against `vet --ray` with one and with two workers, side by side in one run, on one corpus.

    python benchmarks/bench_vet_ray.py [--minutes 3] [--runs plain,ray1,plain-1t,ray1x1,ray2x1]

The corpus: Allison's real prompts (Debian's Asterisk sounds), two speakers, about `--minutes` of
audio in all, one prompt a file. Each run vets it into a fresh store; the Ray runs start a local
Ray (this machine's CPUs) and shut it down after. A Ray worker takes as many CPUs as it runs
threads, so two workers on two cores run one thread each (CLONEBENCH_THREADS=1), beside a plain
run with one thread. A warm-up run (two files) goes first. Printed per run: wall time, audio
hours per hour (and per worker), the Ray runs' start-up (Ray and the workers' models) and the
overhead against the plain run with the same threads per process; and the single writer's rate: rows the driver
commits per second of its commit time, which bounds the cluster's throughput.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.curate.cluster import RayOptions  # noqa: E402
from clonebench.curate.vet import VetOptions, vet_list  # noqa: E402
from clonebench.testing import corpus  # noqa: E402

ROW_TABLES = ("metrics", "clip_stages", "transcripts", "words", "clip_embeddings", "verdicts")


def build(root: Path, minutes: float) -> tuple[Path, float]:
    """Allison's prompts, one a file, until `minutes`; past the end of the prompts they come again
    a little quieter each round (other bytes, so no file is a duplicate of another)."""
    lines, total = [], 0.0
    prompts = [(p, corpus.load_prompt(p)) for p in corpus.prompts("en")]
    prompts = [(p, x) for p, x in prompts if len(x) >= 16000]
    k = 0
    while total < minutes * 60:
        prompt, x = prompts[k % len(prompts)]
        gain = 0.93 ** (k // len(prompts))
        speaker = "allison" if k % 2 else "allison2"
        path = root / speaker / f"p{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x * gain, 16000)
        lines.append(f"{speaker}/p{k}.wav|{speaker}|en|{prompt.text}")
        total += len(x) / 16000
        k += 1
    (root / "corpus.list").write_text("\n".join(lines) + "\n")
    return root / "corpus.list", total


def rows(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ROW_TABLES)
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--runs", default="plain,ray1,plain-1t,ray2x1",
                    help="which runs, in order (a Ray run is compared with the plain run of its threads)")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    work = Path(tempfile.mkdtemp(prefix="bench_vet_ray_"))
    try:
        listing, audio_s = build(work / "corpus", args.minutes)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; corpus: {audio_s / 60:.1f} min of audio, "
              f"{len(listing.read_text().splitlines())} files, 2 speakers")
        # warm-up: libraries imported and model files in the page cache before anything is timed
        warm = work / "warm.list"
        warm.write_text("\n".join(listing.read_text().splitlines()[:2]) + "\n")
        (work / "corpus" / "warm.list").write_text(warm.read_text())
        vet_list(VetOptions(speaker=None, db=work / "warm" / "store.duckdb", list_file=work / "corpus" / "warm.list"))
        runs, startup_of = {}, {}
        threads = str(min(4, os.cpu_count() or 1))
        known = {"plain": ("plain", None, threads), "ray1": ("ray, 1 worker", RayOptions(workers=1), threads),
                 "plain-1t": ("plain, 1 thread", None, "1"), "ray1x1": ("ray, 1 x 1 thread", RayOptions(workers=1), "1"),
                 "ray2x1": ("ray, 2 x 1 thread", RayOptions(workers=2), "1")}
        chosen = args.runs.split(",")
        if unknown := [r for r in chosen if r not in known]:
            raise SystemExit(f"--runs: unknown {', '.join(unknown)} (known: {', '.join(known)})")
        for label, ray_opts, n_threads in (known[r] for r in chosen):
            os.environ["CLONEBENCH_THREADS"] = n_threads
            db = work / label.replace(", ", "-").replace(" ", "") / "store.duckdb"
            startup = 0.0
            if ray_opts is not None:
                t0 = time.perf_counter()
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
                startup = time.perf_counter() - t0
            start = time.perf_counter()
            result = vet_list(VetOptions(speaker=None, db=db, list_file=listing, ray=ray_opts))
            wall = time.perf_counter() - start + startup
            if ray_opts is not None:
                ray.shutdown()
            runs[label] = (wall, result.cluster, rows(db))
            startup_of[label] = startup
        print(f"\n{'run':<18} {'wall s':>7} {'audio h/h':>9} {'per worker':>10} {'vs plain':>9}  notes")
        for label, (wall, cluster, n_rows) in runs.items():
            # each Ray run against the plain run with the same threads per process
            plain_run = runs.get("plain, 1 thread" if "1 thread" in label else "plain")
            workers = cluster.workers if cluster else 1
            speed = audio_s / wall
            note = ""
            if cluster:
                busy = sum(cluster.worker_s.values())
                note = (f"start-up {startup_of[label] + cluster.startup_s:.1f} s; worker-seconds {busy:.0f} (signal {cluster.worker_s['signal']:.0f}, asr "
                        f"{cluster.worker_s['asr']:.0f}, embed {cluster.worker_s['embed']:.0f}, ingest "
                        f"{cluster.worker_s['ingest']:.0f}); driver commit {cluster.driver_s['commit']:.1f} s for "
                        f"{n_rows} rows = {n_rows / max(cluster.driver_s['commit'], 1e-9):.0f} rows/s; "
                        f"judge {cluster.driver_s['judge']:.1f} s")
            versus = f"{wall / plain_run[0] - 1:+9.1%}" if plain_run else f"{'':>9}"
            print(f"{label:<18} {wall:7.1f} {speed:9.2f} {speed / workers:10.2f} {versus}  {note}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
