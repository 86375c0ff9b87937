"""Upstream parity on another device: the fixtures of tests/model/test_parity.py (made by upstream
GPT-SoVITS's own code on a CPU, fp32), run through our normal loading path on `--device` (a GPU
when one is lent; CI has none). Prints each quantity's relative L2 error against upstream's and
whether the tokens are identical; asserts nothing.

    .venv/bin/python benchmarks/gpu_parity.py --device cuda [--precision fp32|fp16|bf16]
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from clonebench.model.decode import SamplingParams  # noqa: E402
from clonebench.model.spec import ModelSpec  # noqa: E402
from clonebench.model.spectrogram import linear_spectrogram  # noqa: E402
from clonebench.model.synthesize import Synthesizer  # noqa: E402

FIX = ROOT / "tests" / "fixtures" / "parity"


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().float().cpu(), b.float().cpu()
    return float((a - b).norm() / b.norm())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default="fp32")
    args = ap.parse_args()
    dev = torch.device(args.device)
    tmp = Path(tempfile.mkdtemp())
    with gzip.open(FIX / "sovits.pth.gz") as src, open(tmp / "sovits.pth", "wb") as dst:
        shutil.copyfileobj(src, dst)
    spec = ModelSpec(FIX / "gpt.ckpt", tmp / "sovits.pth", content=f"cnhubert:{FIX / 'hubert'}",
                     device=args.device, precision=args.precision)
    synth = Synthesizer(spec)
    dtype = next(synth.sovits.parameters()).dtype
    inp = torch.load(FIX / "inputs.pt", weights_only=True)
    up = torch.load(FIX / "upstream.pt", weights_only=True)
    name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    print(f"parity against upstream's CPU fp32 fixtures on {name}, {args.precision} (tests hold < 1e-4 on a CPU)")
    with torch.inference_mode():
        codes = synth.sovits.extract_latent(inp["ssl"].to(dev, dtype))
        print(f"  SoVITS codes identical: {torch.equal(codes.cpu(), up['codes'])}")
        spec_ = linear_spectrogram(inp["clip32"].float().to(dev))
        print(f"  spectrogram rel L2: {rel_l2(spec_, up['refer']):.2e}")
        ge = synth.sovits.style(spec_.to(dtype))
        print(f"  style rel L2: {rel_l2(ge, up['ge']):.2e}")
        wav = synth.sovits.decode(up["codes"].to(dev), inp["phones"].to(dev), ge, noise_scale=0.0)
        print(f"  waveform rel L2: {rel_l2(wav, up['wav']):.2e}")
        gpt = synth.gpt
        x, bert, y = inp["gpt_x"].to(dev), inp["gpt_bert"].to(dev, dtype), inp["gpt_y"].to(dev)
        lens = (torch.tensor([x.shape[1]], device=dev), torch.tensor([y.shape[1]], device=dev))
        logits, _, _ = gpt.teacher_forced(x, lens[0], bert, y, lens[1])
        print(f"  GPT logits rel L2: {rel_l2(logits, up['logits']):.2e}")
        for loop in ("eager", "static"):
            tokens = gpt.generate([x[0]], [bert[0]], inp["prompt"][0].to(dev), SamplingParams(top_k=1, repetition_penalty=1.35),
                                  max_tokens=up["greedy"].shape[1], loop=loop)[0].cpu()
            same = int((tokens[: up["greedy"].shape[1]] == up["greedy"][0][: len(tokens)]).sum())
            print(f"  greedy tokens ({loop}): {same}/{up['greedy'].shape[1]} equal to upstream's")


if __name__ == "__main__":
    main()
