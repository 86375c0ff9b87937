"""Training speed. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_train.py [--preset tiny|v2] [--steps 10] [--batch-size 4] [--device cpu]
                                               [--amp none,bf16] [--ops]

Step time and samples per second for stage s2 (SoVITS + discriminator, one generator and one
discriminator update) and stage s1 (GPT, summed cross-entropy), on synthetic batches of ~5 s
clips (random weights; speed does not depend on the data). `--amp none,bf16` times each stage
without and with bf16 autocast side by side, with the autocast regions, fused AdamW (CUDA) and
TF32 that `clonebench train` uses. `--ops` counts the aten ops of one s2 step under bf16
autocast, and the dtype the convolutions and matrix products ran in (where a step's time can
go besides arithmetic: launches, casts, weight norm). Feature extraction throughput
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

from clonebench.model.config import HOP, preset  # noqa: E402
from clonebench.model.discriminator import (  # noqa: E402
    MultiPeriodDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    kl_loss,
)
from clonebench.model.gpt import Text2Semantic  # noqa: E402
from clonebench.model.sovits import SoVITS  # noqa: E402
from clonebench.model.spectrogram import linear_spectrogram, mel_spectrogram  # noqa: E402


def _autocast(dev: str, amp: str):
    return torch.autocast(torch.device(dev).type, dtype=torch.bfloat16, enabled=amp == "bf16")


def _adamw(params, dev: str) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, 1e-4, fused=dev.startswith("cuda"))


def _timed(step, steps: int, dev: str) -> float:
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    times = []
    for k in range(steps + 2):
        t = time.perf_counter()
        step()
        sync()
        if k >= 2:                                     # the first steps pay one-off costs
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def s2_step(name: str, batch: int, dev: str, amp: str):
    """One s2 training step on a synthetic batch, with the Trainer's autocast regions."""
    torch.manual_seed(0)
    c, _ = preset(name)
    g, d = SoVITS(c).to(dev).train(), MultiPeriodDiscriminator(narrow=c.disc_narrow).to(dev).train()
    og, od = _adamw(g.parameters(), dev), _adamw(d.parameters(), dev)
    frames = 250                                       # 5 s at 50 Hz
    wav = torch.randn(batch, frames * HOP, device=dev) * 0.1
    spec = linear_spectrogram(wav)[:, :, :frames]
    ssl = torch.randn(batch, c.ssl_dim, frames, device=dev)
    lens = torch.full((batch,), frames, device=dev)
    phones = torch.randint(0, 732, (batch, 60), device=dev)
    plens = torch.full((batch,), 60, device=dev)

    def step():
        with _autocast(dev, amp):
            fake, starts, commit, mask, (z_p, m_p, logs_p, logs_q) = g(ssl, spec, lens, phones, plens)
            seg = c.segment_size
            real = F.pad(wav, (0, seg)).gather(1, (starts * HOP)[:, None] + torch.arange(seg, device=dev)[None])[:, None]
            fake = fake[..., :seg]
            r, f, _, _ = d(real, fake.detach())
            loss_d = discriminator_loss(r, f)
        od.zero_grad()
        loss_d.backward()
        od.step()
        with _autocast(dev, amp):
            r, f, fr, ff = d(real, fake)
        loss = (generator_loss(f) + feature_matching_loss(fr, ff) + 45 * F.l1_loss(
            mel_spectrogram(fake[:, 0].float()), mel_spectrogram(real[:, 0].float()))
            + kl_loss(z_p, logs_q, m_p, logs_p, mask) + commit)
        og.zero_grad()
        loss.backward()
        og.step()

    return step


def s1_step(name: str, batch: int, dev: str, amp: str):
    torch.manual_seed(0)
    _, c = preset(name)
    m = Text2Semantic(c).to(dev).train()
    opt = _adamw(m.parameters(), dev)
    phones = torch.randint(0, 732, (batch, 60), device=dev)
    codes = torch.randint(0, 1024, (batch, 125), device=dev)     # 5 s at 25 tokens/s
    bert = torch.zeros(batch, 1024, 60, device=dev)

    def step():
        with _autocast(dev, amp):
            loss, _ = m(phones, torch.full((batch,), 60, device=dev), bert, codes,
                        torch.full((batch,), 125, device=dev))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def s2_ops(name: str, batch: int, dev: str) -> None:
    """Print the aten ops of one s2 step under bf16 autocast, and the dtypes its heavy ops ran in."""
    from collections import Counter

    from torch.utils._python_dispatch import TorchDispatchMode

    heavy = {"convolution", "convolution_backward", "mm", "addmm", "bmm", "baddbmm"}

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.count, self.heavy = Counter(), Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            self.count[name] += 1
            if name in heavy:
                self.heavy[(name, str(next(a for a in args if isinstance(a, torch.Tensor)).dtype))] += 1
            return func(*args, **(kwargs or {}))

    step = s2_step(name, batch, dev, "bf16")
    step()
    with Ops() as ops:
        step()
    print(f"s2 ops under bf16 autocast ({name}, batch {batch}): {sum(ops.count.values())} aten ops per step; "
          f"most called: {', '.join(f'{k} {v}' for k, v in ops.count.most_common(8))}")
    print("  convolutions and matrix products by input dtype: "
          + ", ".join(f"{k[0]} {k[1].replace('torch.', '')} {v}" for k, v in sorted(ops.heavy.items())))


def feature_throughput() -> tuple[float, float]:
    from clonebench.model.features import WhisperEncoderContent
    from clonebench.testing import corpus

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
    ap.add_argument("--amp", default="none", help="comma-separated: none, bf16 (timed side by side)")
    ap.add_argument("--ops", action="store_true", help="count the aten ops of one s2 step under bf16 autocast")
    args = ap.parse_args()
    if args.device.startswith("cuda"):
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    device = f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {args.device}{device}")
    b = args.batch_size
    for amp in args.amp.split(","):
        t2 = _timed(s2_step(args.preset, b, args.device, amp), args.steps, args.device)
        print(f"s2 ({args.preset}, batch {b} x 5 s clips, 0.64 s decoded slices, amp {amp}): {t2:.3f} s/step, "
              f"{b / t2:.2f} samples/s")
        t1 = _timed(s1_step(args.preset, b, args.device, amp), args.steps, args.device)
        print(f"s1 ({args.preset}, batch {b} x 125 tokens, amp {amp}): {t1:.3f} s/step, {b / t1:.2f} samples/s")
    if args.ops:
        s2_ops(args.preset, b, args.device)
    if args.device == "cpu":
        secs, wall = feature_throughput()
        print(f"features (Whisper-base content + spectrogram): {secs:.0f} s of audio in {wall:.1f} s, "
              f"{secs / wall:.1f} audio-s per wall-s")


if __name__ == "__main__":
    main()
