"""Training speed. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_train.py [--preset tiny|v2] [--steps 10] [--batch-size 4] [--device cpu]
                                               [--amp none,bf16] [--ops]

Step time and samples per second for stage s2 (SoVITS + discriminator, one generator and one
discriminator update) and stage s1 (GPT, summed cross-entropy), on synthetic batches of ~5 s
clips (random weights; speed does not depend on the data). `--amp none,bf16` times each stage
without and with bf16 autocast side by side: the Trainer's own steps (`model.steps`: autocast
regions, fused AdamW on CUDA, gradient clipping) with TF32 on, as `clonebench train` runs them. `--ops` counts the aten ops of one s2 step under bf16
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

from clonebench.model import steps  # noqa: E402
from clonebench.model.config import HOP, preset  # noqa: E402
from clonebench.model.gpt import Text2Semantic  # noqa: E402
from clonebench.model.sovits import SoVITS  # noqa: E402
from clonebench.model.spectrogram import linear_spectrogram  # noqa: E402


def _timed(step, n: int, dev: str) -> float:
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    times = []
    for k in range(n + 2):
        t = time.perf_counter()
        step()
        sync()
        if k >= 2:                                     # the first steps pay one-off costs
            times.append(time.perf_counter() - t)
    return float(np.median(times))


def s2_step(name: str, batch: int, dev: str, amp: str):
    """The Trainer's s2 step (`model.steps`) on a synthetic batch of ~5 s clips."""
    torch.manual_seed(0)
    c, _ = preset(name)
    device = torch.device(dev)
    parts = steps.s2_parts(SoVITS(c).to(device).train(), device, frozen=False)
    frames = 250                                       # 5 s at 50 Hz
    wav = torch.randn(batch, frames * HOP) * 0.1
    b = steps.S2Batch(torch.randn(batch, c.ssl_dim, frames), linear_spectrogram(wav)[:, :, :frames],
                      torch.full((batch,), frames), wav, torch.randint(0, 732, (batch, 60)),
                      torch.full((batch,), 60), torch.randn(batch, c.sv_dim) if c.sv_dim else None).to(device)
    autocast = steps.autocast_for(device, amp)
    return lambda: steps.s2_step(parts, b, autocast)


def s1_step(name: str, batch: int, dev: str, amp: str):
    """The Trainer's s1 step on a synthetic batch of 60 phones and 125 codes (5 s at 25 tokens/s)."""
    torch.manual_seed(0)
    _, c = preset(name)
    device = torch.device(dev)
    parts = steps.s1_parts(Text2Semantic(c).to(device).train(), 1e-4, 1000, device)
    b = steps.S1Batch(*(t.to(device) for t in (
        torch.randint(0, 732, (batch, 60)), torch.full((batch,), 60), torch.zeros(batch, 1024, 60),
        torch.randint(0, 1024, (batch, 125)), torch.full((batch,), 125))))
    autocast = steps.autocast_for(device, amp)
    return lambda: steps.s1_step(parts, b, 0, 1, autocast)


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
