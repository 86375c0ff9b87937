"""Vetting speed and memory, and screening accuracy. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_vet.py [--speakers N] [--accuracy]

1. Wall time to vet 120 s of speech (one English speaker, 120 s of prompts in one recording),
   cold (new store, models loaded) and warm (models loaded, new clips), as a real-time factor.
2. The same audio through faster-whisper alone (tiny.en, int8, beam 5, same threads), and the
   ratio of the vet time to it.
3. Peak RSS of the process.
4. Scaling: N speakers x 120 s, time per audio-second per speaker.
5. With --accuracy: a labelled set (clean vs each defect at 2-3 severities, two voices),
   detection rate per defect, clean acceptance and the confusion between reason codes.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from curate.vet import VetOptions, vet  # noqa: E402
from testing import corpus, degrade  # noqa: E402

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

    from clonebench.registry import whisper_tiny_en_dir
    from instruments.onnx_session import cpu_threads

    model = WhisperModel(str(whisper_tiny_en_dir()), device="cpu", compute_type="int8", cpu_threads=cpu_threads())
    list(model.transcribe(x[: SR * 5], language="en")[0])  # warm-up
    t = time.perf_counter()
    list(model.transcribe(x, language="en", beam_size=5, word_timestamps=True)[0])
    return time.perf_counter() - t


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


DEFECTS = {
    "noise": [lambda x: degrade.add_white_noise(x, 0, 1), lambda x: degrade.add_white_noise(x, 5, 2), lambda x: degrade.add_white_noise(x, 10, 3)],
    "music": [lambda x: degrade.mix_at_snr(x, corpus.music(20, 3), 0), lambda x: degrade.mix_at_snr(x, corpus.music(20, 1), 5), lambda x: degrade.mix_at_snr(x, corpus.music(20, 2), 10)],
    "reverb": [lambda x: degrade.add_reverb(x, SR, 1.2, 1), lambda x: degrade.add_reverb(x, SR, 0.8, 2), lambda x: degrade.add_reverb(x, SR, 0.5, 3)],
    "too_fast": [lambda x: degrade.time_stretch(x, SR, 1.8), lambda x: degrade.time_stretch(x, SR, 1.5)],
    "clipping": [lambda x: degrade.hard_clip(x, 14), lambda x: degrade.hard_clip(x, 6)],
    "low_bandwidth": [lambda x: degrade.telephone_band(x, SR)],
}


def accuracy() -> None:
    """Two voices (English Allison, French June), 12 clean clips each plus every defect."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-acc-"))
    labels: dict[str, str] = {}
    for lang, voice in (("en", "allison"), ("fr", "june")):
        _, parts = corpus.take_seconds([p for p in corpus.prompts(lang) if len(p.text.split()) >= 5], 200)
        clips = [corpus.join(parts[i : i + 2], gap_s=0.3) for i in range(0, len(parts) - 1, 2)]
        clips = [c for c in clips if 3.5 <= len(c) / SR <= 14]
        folder = tmp / voice
        folder.mkdir()
        k = 0
        for i in range(12):
            sf.write(folder / f"clean_{i}.wav", clips[k], SR)
            labels[f"{voice}/clean_{i}"] = "clean"
            k += 1
        for defect, fns in DEFECTS.items():
            for sev, fn in enumerate(fns):
                sf.write(folder / f"{defect}_{sev}.wav", fn(clips[k]), SR)
                labels[f"{voice}/{defect}_{sev}"] = defect
                k += 1
        doc = vet(VetOptions(speaker=voice, db=tmp / "acc.duckdb", lang=lang, inputs=[folder]))
        for c in doc["clips"]:
            c["_key"] = f"{voice}/{Path(c['source']).stem}"
        labels_found = defaultdict(set)
        for c in doc["clips"]:
            labels_found[c["_key"]] |= set(c["reasons"])
        accuracy.results = getattr(accuracy, "results", {})
        accuracy.results.update(labels_found)
    found = accuracy.results
    per = defaultdict(list)
    confusion = defaultdict(Counter)
    for key, label in labels.items():
        reasons = found.get(key, set())
        if label == "clean":
            per["clean accepted"].append(not reasons)
        else:
            per[label].append(label in reasons)
        for r in reasons - {label}:
            confusion[label][r] += 1
    print("screening accuracy (two voices; defects at 2-3 severities):")
    for label, hits in per.items():
        print(f"  {label:<15} {sum(hits)}/{len(hits)} = {100 * np.mean(hits):.0f} %")
    print("  extra reasons per true label (confusion):")
    for label, counter in confusion.items():
        print(f"    {label:<15} {dict(counter)}")
    for key, label in labels.items():
        if label != "clean" and label not in found.get(key, set()):
            print(f"  missed: {key} -> {sorted(found.get(key, set()))}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--speakers", type=int, default=1)
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if not args.no_speed:
        speed(args.speakers)
    if args.accuracy:
        accuracy()


if __name__ == "__main__":
    main()
