"""The GPT's decode loops side by side: eager, static (fixed shapes; a CUDA graph on a GPU) and
continuous batching. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_decode.py [--preset v2] [--device cuda] [--tokens 250]

Random weights (speed does not depend on them; every sentence is held to its length with
`min_tokens`, so EOS never ends it early). Sampling is on throughout: top-k 15, repetition
penalty 1.35, seeded per sentence. For each precision (CUDA: fp32, fp16 and bf16 over the whole
model; CPU: fp32 and fp16 matrices):
- one sentence of `--tokens` tokens: tokens/s of each loop, and how many tokens the static loop
  drew equal to the eager loop's;
- 16 sentences of `--tokens` tokens decoded together in one static batch, aggregate tokens/s;
- continuous batching: `--sentences` sentences of different lengths (0.4-1.6x `--tokens`)
  through 16 rows, joining as rows free up; aggregate tokens/s and mean rows busy;
- kernel launches per token (CUDA, torch.profiler: kernels run, and the host's launch calls);
- RTF for `--tokens` tokens (25 per second of audio): static GPT + SoVITS + vocoder.
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

import torch  # noqa: E402
from bench_model import PROMPT_TEXT, TEXT, build  # noqa: E402  (the same text and random model)

from clonebench.model.decode import ContinuousDecoder, SamplingParams  # noqa: E402
from clonebench.model.layers import fold_weight_norm  # noqa: E402
from clonebench.model.text.frontend import phonemize  # noqa: E402

ROWS = 16


class Clock:
    def __init__(self, device: torch.device):
        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def __call__(self, fn):
        self.sync()
        t = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - t, out


def inputs(device, dtype, n: int = 1):
    prompt_ids, target = phonemize(PROMPT_TEXT, "en").ids, phonemize(TEXT, "en").ids
    phones = [torch.tensor(prompt_ids + target, device=device)] * n
    bert = [torch.zeros(1024, len(prompt_ids) + len(target), device=device, dtype=dtype)] * n
    prompt = torch.randint(0, 1024, (125,), generator=torch.Generator().manual_seed(0)).to(device)   # drawn on the CPU: the same prompt on every device
    return phones, bert, prompt


def decode(gpt, loop: str, tokens: int, n: int, dtype):
    phones, bert, prompt = inputs(gpt.device, dtype, n)
    return lambda: gpt.generate(phones, bert, prompt, SamplingParams(), seed=list(range(n)), max_tokens=tokens,
                                min_tokens=tokens, loop=loop)


def continuous(decoder: ContinuousDecoder, tokens: int, sentences: int, dtype) -> tuple[int, float]:
    """Every sentence through the decoder's rows; returns the tokens said and the mean rows busy."""
    phones, bert, prompt = inputs(decoder.model.device, dtype)
    caps = [int(tokens * (0.4 + 1.2 * i / max(sentences - 1, 1))) for i in range(sentences)]
    caps = caps[::2] + caps[1::2]                          # long and short ones interleaved
    waiting, said, busy, steps = list(range(sentences)), 0, 0, 0
    while waiting or decoder.busy:
        while waiting and decoder.free_rows:
            k = waiting.pop(0)
            decoder.add(k, phones[0], bert[0], prompt, seed=k, cap=caps[k])
        busy += ROWS - decoder.free_rows
        steps += 1
        said += sum(len(t) for _, t in decoder.step())
    return said, busy / steps


def launches_per_token(gpt, dtype, n_tokens: int = 50) -> str:
    from torch.profiler import ProfilerActivity, profile

    run = decode(gpt, "static", n_tokens, 1, dtype)
    run()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    events = prof.events()
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    calls = sum(1 for e in events if e.name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    graphs = sum(1 for e in events if e.name == "cudaGraphLaunch")
    return (f"{kernels / n_tokens:.0f} kernels run, {calls / n_tokens:.1f} kernel launches and "
            f"{graphs / n_tokens:.2f} graph launches from the host per token (prefill and capture included)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="v2")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--sentences", type=int, default=48)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clock = Clock(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"{name}, torch {torch.__version__}, {os.cpu_count()} cores, preset {args.preset}, random weights, "
          f"{args.tokens} tokens = {args.tokens / 25:.0f} s of audio, sampled (top-k 15, penalty 1.35, seeded)")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    precisions = ["fp32", "fp16", "bf16"] if device.type == "cuda" else ["fp32", "fp16"]
    for precision in precisions:
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        # the same random weights each time (`build` seeds); a CPU keeps fp32 but the GPT's matrices
        s, gpt = build(args.preset, device, dtype if device.type == "cuda" else torch.float32)
        del s.enc_q
        fold_weight_norm(s)
        if device.type != "cuda" and precision == "fp16":
            gpt.half_matrices()
        data_dtype = dtype if device.type == "cuda" else torch.float32
        loops = ["eager", "static"]
        print(f"\n{precision} ({'whole model' if device.type == 'cuda' else 'GPT matrices' if precision == 'fp16' else 'fp32'})")
        with torch.inference_mode():
            one = {}
            for loop in loops:
                run = decode(gpt, loop, args.tokens, 1, data_dtype)
                t_first, _ = clock(run)                           # the static decoder is made (and captured) once
                t, out = clock(run)
                one[loop] = (t, out[0])
                print(f"  one sentence, {loop:<6}: {args.tokens / t:8.1f} tokens/s (first call {t_first:.3f} s)")
            same = int((one["eager"][1] == one["static"][1]).sum())
            print(f"  static tokens equal to eager: {same}/{args.tokens}")
            run = decode(gpt, "static", args.tokens, ROWS, data_dtype)
            run()
            t, out = clock(run)
            print(f"  {ROWS} sentences, static batch: {ROWS * args.tokens / t:8.1f} tokens/s in aggregate")
            phones, _, prompt = inputs(device, data_dtype)
            t_made, rows_decoder = clock(lambda: ContinuousDecoder(
                gpt, ROWS, phones[0].shape[0] + prompt.shape[0] + int(1.6 * args.tokens) + 1, min_tokens=10 ** 9))
            t, (said, rows) = clock(lambda: continuous(rows_decoder, args.tokens, args.sentences, data_dtype))
            print(f"  continuous, {args.sentences} sentences of {int(0.4 * args.tokens)}-{int(1.6 * args.tokens)} "
                  f"tokens through {ROWS} rows: {said / t:8.1f} tokens/s in aggregate, {rows:.1f} rows busy "
                  f"(decoder made in {t_made:.3f} s)")
            if device.type == "cuda":
                print(f"  {launches_per_token(gpt, data_dtype)}")
            codes = one["static"][1][None, None].to(device)
            text_ids = torch.tensor([phonemize(TEXT, "en").ids], device=device)
            ge = torch.randn(1, s.config.gin_channels, 1, device=device, dtype=data_dtype if device.type == "cuda"
                             else torch.float32)
            s.dec(s.latent(codes, text_ids, ge), g=ge)                 # warm-up
            t_s, _ = clock(lambda: s.dec(s.latent(codes, text_ids, ge), g=ge))
            t_g = one["static"][0]
            print(f"  RTF, {args.tokens / 25:.0f} s of audio: {(t_g + t_s) / (args.tokens / 25):.3f} "
                  f"(GPT static {t_g:.3f} s + SoVITS and vocoder {t_s:.3f} s)")


if __name__ == "__main__":
    main()
