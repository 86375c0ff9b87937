"""Speaker-report render time and size. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_reports.py [--clips 500] [--embedded 50]

A store with one speaker and N clips of real speech (Allison's prompts, reused round-robin,
each clip its own file), metrics, transcripts with word probabilities and embeddings; then
`clonebench report speaker` with linked audio (N clips) and with embedded audio (M clips).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.core.audio import write_wav  # noqa: E402
from clonebench.instruments.speakers import ENCODER  # noqa: E402
from clonebench.reports.speaker import speaker_report  # noqa: E402
from clonebench.store import ASR, Clip, Enrolment, Recording, Store, Transcript, Verdict, Word  # noqa: E402
from clonebench.testing import corpus  # noqa: E402


def fill(db: Path, speaker: str, n: int) -> None:
    prompts = corpus.prompts("en")[:40]
    audio = [corpus.load_prompt(p) for p in prompts]
    rng = np.random.default_rng(0)
    with Store(db) as store:
        store.put_speaker(speaker, "en")
        for k in range(n):
            x, p = audio[k % len(audio)], prompts[k % len(prompts)]
            sha, dur = f"{speaker}{k:060x}", len(x) / 16000
            p16, p32 = db.parent / "clips" / speaker / f"c{k}_16k.wav", db.parent / "clips" / speaker / f"c{k}_32k.wav"
            write_wav(p16, x, 16000)
            write_wav(p32, np.repeat(x, 2), 32000)
            cid = f"{speaker}-{k:04d}"
            store.add_recording(Recording(sha, speaker, f"take{k}.wav", None, None, None, dur),
                                [Clip(cid, sha, speaker, 0.0, dur, dur, str(p32), str(p16), "bench")], {}, "bench")
            bad = k % 5 == 0
            store.record_verdicts("bench", [cid], [Verdict(cid, "bench", "rejected" if bad else "accepted",
                                                           ("noise",) if bad else ())])
            store.put_asr(Transcript(cid, ASR, p.text, producer="bench"),
                          [Word(cid, i, w, 0.0, 0.0, float(rng.uniform(0.3, 1))) for i, w in enumerate(p.text.split())])
            store.put_metrics(cid, {m: float(rng.normal()) for m in ("snr_db", "dnsmos_bak", "dnsmos_ovrl", "music_prob",
                                    "rt60_s", "speech_rate", "loudness_lufs", "bandwidth_hz", "spk_centroid_cos")}, "bench")
            store.put_embedding(cid, ENCODER, rng.normal(size=256), None)
        store.record_enrolment(Enrolment(speaker, "bench", "ready", 100, 20, []))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=500)
    ap.add_argument("--embedded", type=int, default=50)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "clonebench.duckdb"
        fill(db, "big", args.clips)
        fill(db, "small", args.embedded)
        for speaker, n, embed in [("big", args.clips, False), ("small", args.embedded, True)]:
            t = time.perf_counter()
            out = speaker_report(db, speaker, embed_audio=embed)
            dt = time.perf_counter() - t
            print(f"{n} clips, {'embedded' if embed else 'linked'} audio: {dt:.1f} s, {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
