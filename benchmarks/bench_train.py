"""Training speed. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_train.py [--preset tiny|v2] [--steps 10] [--batch-size 4] [--device cpu]

Step time and samples per second for stage s2 (SoVITS + discriminator, one generator and one
discriminator update) and stage s1 (GPT, summed cross-entropy), on synthetic batches of ~5 s
clips (random weights; speed does not depend on the data). Feature extraction throughput
(Whisper-base content features + spectrogram) on real speech. For the whole pipeline on the
demo set, time `clonebench train` (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from model.config import HOP, preset  # noqa: E402
from model.discriminator import (  # noqa: E402
    MultiPeriodDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    kl_loss,
)
from model.gpt import Text2Semantic  # noqa: E402
from model.sovits import SoVITS  # noqa: E402
from model.spectrogram import linear_spectrogram, mel_spectrogram  # noqa: E402


def s2_step_time(name: str, steps: int, batch: int, dev: str) -> float:
    torch.manual_seed(0)
    c, _ = preset(name)
    g, d = SoVITS(c).to(dev).train(), MultiPeriodDiscriminator(narrow=c.disc_narrow).to(dev).train()
    og, od = torch.optim.AdamW(g.parameters(), 1e-4), torch.optim.AdamW(d.parameters(), 1e-4)
    frames = 250                                       # 5 s at 50 Hz
    wav = torch.randn(batch, frames * HOP, device=dev) * 0.1
    spec = linear_spectrogram(wav)[:, :, :frames]
    ssl = torch.randn(batch, c.ssl_dim, frames, device=dev)
    lens = torch.full((batch,), frames, device=dev)
    phones = torch.randint(0, 732, (batch, 60), device=dev)
    plens = torch.full((batch,), 60, device=dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    times = []
    for k in range(steps + 2):
        t = time.perf_counter()
        fake, starts, commit, mask, (z_p, m_p, logs_p, logs_q) = g(ssl, spec, lens, phones, plens)
        seg = c.segment_size
        real = F.pad(wav, (0, seg)).gather(1, (starts * HOP)[:, None] + torch.arange(seg, device=dev)[None])[:, None]
        fake = fake[..., :seg]
        r, f, _, _ = d(real, fake.detach())
        od.zero_grad()
        discriminator_loss(r, f).backward()
        od.step()
        r, f, fr, ff = d(real, fake)
        loss = (generator_loss(f) + feature_matching_loss(fr, ff) + 45 * F.l1_loss(mel_spectrogram(fake[:, 0]),
                mel_spectrogram(real[:, 0])) + kl_loss(z_p, logs_q, m_p, logs_p, mask) + commit)
        og.zero_grad()
        loss.backward()
        og.step()
        sync()
        if k >= 2:                                     # the first steps pay one-off costs
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def s1_step_time(name: str, steps: int, batch: int, dev: str) -> float:
    torch.manual_seed(0)
    _, c = preset(name)
    m = Text2Semantic(c).to(dev).train()
    opt = torch.optim.AdamW(m.parameters(), 1e-4)
    phones = torch.randint(0, 732, (batch, 60), device=dev)
    codes = torch.randint(0, 1024, (batch, 125), device=dev)     # 5 s at 25 tokens/s
    bert = torch.zeros(batch, 1024, 60, device=dev)
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    times = []
    for k in range(steps + 2):
        t = time.perf_counter()
        loss, _ = m(phones, torch.full((batch,), 60, device=dev), bert, codes, torch.full((batch,), 125, device=dev))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync()
        if k >= 2:
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def feature_throughput() -> tuple[float, float]:
    from model.features import WhisperEncoderContent
    from testing import corpus

    _, audio = corpus.take_seconds(corpus.prompts("en"), 60)
    clips = [a for a in audio]
    ext = WhisperEncoderContent()
    ext.encode(clips[0])                                # load
    t = time.perf_counter()
    for x in clips:
        ext.encode(x)
        linear_spectrogram(torch.from_numpy(np.repeat(x, 2))[None])
    seconds = sum(len(x) for x in clips) / 16000
    return seconds, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}")
    b = args.batch_size
    t2 = s2_step_time(args.preset, args.steps, b, args.device)
    print(f"s2 ({args.preset}, batch {b} x 5 s clips, 0.64 s decoded slices): {t2:.3f} s/step, {b / t2:.2f} samples/s")
    t1 = s1_step_time(args.preset, args.steps, b, args.device)
    print(f"s1 ({args.preset}, batch {b} x 125 tokens): {t1:.3f} s/step, {b / t1:.2f} samples/s")
    if args.device == "cpu":
        secs, wall = feature_throughput()
        print(f"features (Whisper-base content + spectrogram): {secs:.0f} s of audio in {wall:.1f} s, "
              f"{secs / wall:.1f} audio-s per wall-s")


if __name__ == "__main__":
    main()
