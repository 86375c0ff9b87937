"""Throughput and latency of `clonebench serve`, with dynamic batching on and off in one run.
Prints figures; asserts nothing.

    python benchmarks/bench_serve.py [--preset tiny|v2] [--concurrency 1,4,16] [--requests 3] [--db STORE]
                                     [--max-batch 16,1,c16]

For each batching mode (`--max-batch 16`; `1` = no batching; `c16` = `--continuous` with 16
rows) a real server is started on a free loopback port with random-weight `--preset` files; at
each concurrency level that many clients each send `--requests` streaming /v1/tts requests of a
three-sentence text
(different seeds) one after another. Reported: requests/s, audio seconds per wall second,
p50/p95 latency (request to last byte), p50 time to first audio (request to first PCM bytes),
and the server's peak RSS. Without --db a store is made by vetting 75 s of a real voice.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Thank you for calling, please stay on the line. Your call is important to us."


def _cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "clonebench.cli", *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def make_store(tmp: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    import soundfile as sf

    from clonebench.testing import corpus

    _, audio = corpus.take_seconds(corpus.prompts("en"), 75)
    for k in range(0, len(audio), 2):
        path = tmp / "audio" / f"take{k:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), corpus.join(audio[k:k + 2], gap_s=0.3), 16000)
    db = tmp / "store" / "clonebench.duckdb"
    _cli("vet", str(tmp / "audio"), "--speaker", "alice", "--db", str(db), "--no-report", "--json")
    return db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def random_hubert(folder: Path) -> str:
    """The v2 preset reads chinese-hubert-base features: a random HuBERT of that size stands in."""
    from transformers import HubertConfig, HubertModel

    HubertModel(HubertConfig()).eval().save_pretrained(str(folder))
    return f"cnhubert:{folder}"


def run_mode(model: dict, db: Path, mode: str, levels: list[int], requests: int, threads: int) -> list[dict]:
    """One server: `mode` is its --max-batch, or cN for --continuous with N rows."""
    import httpx

    port = free_port()
    continuous = mode.startswith("c")
    proc = subprocess.Popen([sys.executable, "-m", "clonebench.cli", "serve", "--gpt", model["gpt"], "--sovits",
                             model["sovits"], "--db", str(db), "--port", str(port), "--max-batch", mode.lstrip("c"),
                             *(["--continuous"] if continuous else []),
                             "--batch-window-ms", "20", "--queue", "256", "--threads", str(threads), "--timeout", "900",
                             *(["--content", model["content"]] if model.get("content") else [])],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = httpx.Client(base_url=base, timeout=900)
        speaker = next(s["speaker"] for s in client.get("/v1/speakers").json() if s["status"] == "ready" and s["lang"] == "en")
        warm = client.post("/v1/tts", json={"text": TEXT, "speaker": speaker})       # warm-up: the voice is prepared
        if warm.status_code != 200:
            sys.exit(f"warm-up failed: {warm.status_code} {warm.text}")
        rows = []
        for level in levels:
            lat, ttfa, audio_s, lock = [], [], [0.0], threading.Lock()

            def user(u: int) -> None:
                for r in range(requests):
                    t0 = time.perf_counter()
                    first, n = None, 0
                    with client.stream("POST", "/v1/tts", json={"text": TEXT, "speaker": speaker, "stream": True,
                                                                "format": "pcm", "seed": 100 * u + r}) as resp:
                        if resp.status_code != 200:
                            raise RuntimeError(f"status {resp.status_code}")
                        for chunk in resp.iter_raw():
                            first = first if first is not None else time.perf_counter() - t0
                            n += len(chunk)
                    with lock:
                        lat.append(time.perf_counter() - t0)
                        ttfa.append(first)
                        audio_s[0] += n / 2 / 32000

            t0 = time.perf_counter()
            users = [threading.Thread(target=user, args=(u,)) for u in range(level)]
            for t in users:
                t.start()
            for t in users:
                t.join()
            wall = time.perf_counter() - t0
            lat.sort()
            rows.append({"batch": mode, "concurrency": level, "req_s": len(lat) / wall,
                         "audio_s_per_s": audio_s[0] / wall, "p50": statistics.median(lat),
                         "p95": lat[min(len(lat) - 1, int(0.95 * len(lat)))], "ttfa_p50": statistics.median(ttfa)})
        rss = peak_rss_mb(proc.pid)
        for r in rows:
            r["rss_mb"] = rss
        return rows
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from clonebench.model.text.frontend import split_sentences

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="tiny", choices=["tiny", "v2"])
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=3, help="requests each client sends, one after another")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--max-batch", default="16,1",
                    help="server --max-batch values to run, one server each (1: batching off; cN: --continuous, N rows)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    db = args.db or make_store(tmp)
    _cli("init-model", "--preset", args.preset, "--out", str(tmp / "model"))
    model = {"gpt": str(tmp / "model" / f"{args.preset}-gpt.ckpt"), "sovits": str(tmp / "model" / f"{args.preset}-sovits.pth")}
    if args.preset == "v2":
        model["content"] = random_hubert(tmp / "hubert")
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} torch threads; preset {args.preset}, "
          f"random weights; {args.requests} streaming requests per client of {len(TEXT)} characters "
          f"({len(split_sentences(TEXT, 'en'))} sentences)")
    print(f"{'max-batch':>9} {'clients':>7} {'req/s':>7} {'audio s/s':>9} {'p50 s':>7} {'p95 s':>7} {'TTFA p50':>8} {'peak RSS MB':>11}")
    for mode in args.max_batch.split(","):
        for r in run_mode(model, db, mode, levels, args.requests, args.threads):
            print(f"{r['batch']:>9} {r['concurrency']:>7} {r['req_s']:>7.2f} {r['audio_s_per_s']:>9.2f} {r['p50']:>7.2f} "
                  f"{r['p95']:>7.2f} {r['ttfa_p50']:>8.2f} {r['rss_mb']:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
