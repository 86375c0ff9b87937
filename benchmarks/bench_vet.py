"""Vetting speed and memory. Prints figures; asserts nothing. (Screening accuracy is
`bench_screens.py`.)

    .venv/bin/python benchmarks/bench_vet.py [--speakers N]

1. Wall time to vet 120 s of speech (one English speaker, 120 s of prompts in one recording),
   cold (new store, models loaded) and warm (models loaded, new clips), as a real-time factor.
2. The same audio through faster-whisper alone (tiny.en, int8, beam 5, same threads), and the
   ratio of the vet time to it.
3. Peak RSS of the process.
4. Scaling: N speakers x 120 s, time per audio-second per speaker.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clonebench.curate.vet import VetOptions, vet  # noqa: E402
from clonebench.testing import corpus  # noqa: E402

SR = 16000


def speaker_audio(lang: str, seconds: float, start: int) -> np.ndarray:
    _, parts = corpus.take_seconds(corpus.prompts(lang), seconds, start=start)
    return corpus.join(parts, gap_s=0.5)


def timed_vet(folder: Path, speaker: str, db: Path, lang: str = "en") -> float:
    t = time.perf_counter()
    vet(VetOptions(speaker=speaker, db=db, lang=lang, inputs=[folder]))
    return time.perf_counter() - t


def whisper_alone(x: np.ndarray) -> float:
    from faster_whisper import WhisperModel

    from clonebench.instruments.onnx_session import cpu_threads
    from clonebench.instruments.registry import whisper_tiny_en_dir

    model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
    list(model.transcribe(x[: SR * 5], language="en")[0])  # warm-up
    t = time.perf_counter()
    list(model.transcribe(x, language="en", beam_size=5, word_timestamps=True)[0])
    return time.perf_counter() - t


# The same model and settings as `whisper_alone`, written out rather than imported: importing this
# file would load clonebench's vetting stack too and charge its imports to faster-whisper.
WHISPER_PROCESS = """
import sys
from faster_whisper import WhisperModel
from clonebench.instruments.registry import whisper_tiny_en_dir
from clonebench.instruments.onnx_session import cpu_threads
model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
segments, _ = model.transcribe(sys.argv[1], language="en", beam_size=5, word_timestamps=True)
print(sum(len(s.words) for s in segments), "words")
"""


def whole_processes(wav: Path, tmp: Path, runs: int = 2) -> None:
    """What a user waits for: `clonebench vet` as a fresh process (imports and model loading
    included) against faster-whisper alone as a fresh process on the same file, side by side,
    alternating, best of `runs` each (file caches warm after the first)."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    vet_s, asr_s = [], []
    for k in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "clonebench.cli", "vet", str(wav), "--speaker", f"p{k}", "--db",
                        str(tmp / f"process{k}.duckdb"), "--no-report", "--json"], check=True, env=env, capture_output=True)
        vet_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", WHISPER_PROCESS, str(wav)], check=True, env=env, capture_output=True)
        asr_s.append(time.perf_counter() - t)
    print(f"whole process, vet: {min(vet_s):.1f} s (runs {', '.join(f'{v:.1f}' for v in vet_s)})")
    print(f"whole process, faster-whisper alone: {min(asr_s):.1f} s (runs {', '.join(f'{v:.1f}' for v in asr_s)})")
    print(f"whole process, vet / faster-whisper: {min(vet_s) / min(asr_s):.2f}")


def speed(n_speakers: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-vet-"))
    x = speaker_audio("en", 120, 0)
    dur = len(x) / SR
    (tmp / "a").mkdir()
    sf.write(tmp / "a" / "rec.wav", x, SR)
    cold = timed_vet(tmp / "a", "a", tmp / "cold.duckdb")
    # warm: same process (models cached by the OS and Python imports), new audio, new store
    y = speaker_audio("en", 120, 60)
    (tmp / "b").mkdir()
    sf.write(tmp / "b" / "rec.wav", y, SR)
    warm = timed_vet(tmp / "b", "b", tmp / "warm.duckdb")
    asr = whisper_alone(x)
    whole_processes(tmp / "a" / "rec.wav", tmp)
    print(f"audio: {dur:.1f} s of English speech in one recording")
    print(f"vet cold: {cold:.1f} s  RTF {cold / dur:.3f}")
    print(f"vet warm: {warm:.1f} s  RTF {warm / (len(y) / SR):.3f}")
    print(f"faster-whisper alone (tiny.en int8 beam 5, word timestamps): {asr:.1f} s  RTF {asr / dur:.3f}")
    print(f"vet warm / whisper alone: {warm / asr:.2f}")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if n_speakers > 1:
        db = tmp / "scale.duckdb"
        for k in range(n_speakers):
            folder = tmp / f"s{k}"
            folder.mkdir()
            lang = "en" if k % 2 == 0 else "fr"
            z = speaker_audio(lang, 120, (k // 2) * 3)
            sf.write(folder / "rec.wav", z, SR)
            t = timed_vet(folder, f"s{k}", db, lang)
            print(f"scaling: speaker {k + 1}/{n_speakers} ({lang}) {len(z) / SR:.0f} s audio, {t:.1f} s, {t / (len(z) / SR):.3f} s per audio-second")
        print(f"peak RSS after scaling: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speakers", type=int, default=1)
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if not args.no_speed:
        speed(args.speakers)


if __name__ == "__main__":
    main()
