"""Speed of the bring-your-own backends against the embedded defaults. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_backends.py [--seconds 60]

No released weights can be downloaded here, so each backend is built with random weights at
its released model's size (`testing.toy_models`) and loaded through the same code as a user's
folder. These are RANDOM-WEIGHT SPEED FIGURES, NOT QUALITY: compute per audio-second depends
on the architecture and size only, except for ASR decoding, whose length depends on what the
model says (a random model babbles to the token limit and falls back through every
temperature, so only its encoder and per-token decoder costs are measured).

Figures (real speech: the first N seconds of Allison's English prompts, as ~5 s clips):
- speaker embedding, s per audio-second: Resemblyzer (embedded) vs ECAPA-TDNN C=1024 and
  WavLM base x-vector;
- overlap detection, s per audio-second: pyannote PyanNet at segmentation-3.0 size;
- UTMOS, s per audio-second: wav2vec 2.0 base + UTMOS22-strong head;
- ASR: faster-whisper tiny.en int8 (embedded, real weights) end-to-end RTF, clip by clip as
  evaluation runs it, vs openai-whisper at base size, fp32: encoder per 30 s window and beam-5
  decoder per token, and the RTF they imply for a 5 s clip (a random model's own transcript
  length is arbitrary, so its end-to-end RTF would say nothing).
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
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clonebench.instruments import mos_predictor, overlap_detector, speaker_encoder, toy, transcriber  # noqa: E402
from clonebench.testing import corpus  # noqa: E402

SR = 16000


def clips(seconds: float) -> list[np.ndarray]:
    _, audio = corpus.take_seconds(corpus.prompts("en"), seconds)
    return audio


def per_second(fn, xs: list[np.ndarray]) -> float:
    fn(xs[0])  # warm-up
    t0 = time.perf_counter()
    for x in xs:
        fn(x)
    return (time.perf_counter() - t0) / (sum(len(x) for x in xs) / SR)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--asr-clips", type=int, default=4, help="clips for the end-to-end ASR figures")
    args = ap.parse_args()
    import torch

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; RANDOM-WEIGHT SPEED FIGURES, NOT QUALITY")
    xs = clips(args.seconds)
    total = sum(len(x) for x in xs) / SR
    print(f"audio: {len(xs)} clips, {total:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        ecapa = toy.ecapa_folder(root / "ecapa", channels=1024)
        pyannote = toy.pyannote_checkpoint(root / "segmentation", real_size=True)
        utmos = toy.utmos_folder(root / "utmos", real_size=True)
        whisper_base = toy.whisper_pt(root / "whisper-base-random.pt", size="base")
        wavlm = toy.wavlm_folder(root / "wavlm", real_size=True)
        print(f"built random models at released sizes in {time.perf_counter() - t0:.1f} s")

        print("\nspeaker embedding (s per audio-second, lower is faster)")
        for spec in ("resemblyzer", f"ecapa:{ecapa}", f"wavlm:{wavlm}"):
            t0 = time.perf_counter()
            enc = speaker_encoder(spec)
            load = time.perf_counter() - t0
            print(f"  {enc.name:<45} utterance {per_second(enc.embedding, xs):.4f}   "
                  f"utterance + 1.6 s windows {per_second(enc.embed, xs):.4f}   load {load:.1f} s")

        print("\noverlapped-speech detection")
        det = overlap_detector(f"pyannote:{pyannote}")
        print(f"  {det.name:<45} {per_second(det.evidence, xs):.4f} s per audio-second")

        print("\nUTMOS")
        mos = mos_predictor(str(utmos))
        print(f"  {mos.name:<45} {per_second(mos.score, xs):.4f} s per audio-second")

        print("\nASR")
        few = xs[: args.asr_clips]
        few_s = sum(len(x) for x in few) / SR
        fw = transcriber("faster-whisper")
        fw.transcribe_each(few[:1], "en")  # warm-up (and model load)
        t0 = time.perf_counter()
        fw.transcribe_each(few, "en")
        print(f"  {fw.producer('en'):<55} end-to-end RTF {(time.perf_counter() - t0) / few_s:.3f} "
              f"(real weights, {few_s:.0f} s, clip by clip)")
        # A random model's transcript length is arbitrary (it babbles to the token limit through
        # every fallback temperature), so its end-to-end RTF says nothing. Its fixed costs do:
        # the encoder per 30 s window and the beam-5 decoder per token.
        import whisper

        ow = transcriber(f"openai-whisper:{whisper_base}")
        model = ow.model
        mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(np.concatenate(xs)[: 30 * SR]), 80)
        with torch.inference_mode():
            model.encoder(mel[None])
            t0 = time.perf_counter()
            for _ in range(3):
                model.encoder(mel[None])
            encoder_s = (time.perf_counter() - t0) / 3
            options = whisper.DecodingOptions(language="en", temperature=0.0, beam_size=5, sample_len=32, fp16=False)
            t0 = time.perf_counter()
            result = whisper.decode(model, mel, options)
            per_token = (time.perf_counter() - t0 - encoder_s) / max(1, len(result.tokens))  # decode() encodes too
        tokens = 25  # a 5 s English clip: ~15 words, ~20 text tokens + timestamps
        print(f"  {ow.producer('en'):<55} encoder {encoder_s:.3f} s per 30 s window, beam-5 decoder "
              f"{1000 * per_token:.1f} ms per token (fp32): a 5 s clip of {tokens} tokens ~ RTF "
              f"{(encoder_s + tokens * per_token) / 5:.2f} (estimate)")


if __name__ == "__main__":
    main()
