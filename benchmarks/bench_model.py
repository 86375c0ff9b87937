"""Synthesis speed of the GPT + SoVITS model. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_model.py [--preset v2|v2pro|v2proplus] [--threads 2] [--tokens 250] [--device cpu]

Random weights (speed does not depend on them). 10 s of audio = 250 semantic tokens. Stages:
text front end, GPT (prefill + KV-cache decoding), SoVITS decode (quantizer, text encoder,
flow) and vocoder (HiFi-GAN). Then what each candidate speed-up gives: weight-norm folding,
inference mode, the KV cache, threads, batching sentences, fp16.

With a v2Pro/v2ProPlus preset the style vector comes from a reference spectrogram and a random
20480-d timbre vector (`SoVITS.style`), and the Pro model is put beside v2: the same stages of
the v2 SoVITS on the same codes, the Pro-only steps (the timbre vector from a random
ERes2NetV2 built by `testing.toy_models.eres2netv2_file`, the style vector), and one text said
end to end by `Synthesizer` from files written by `checkpoint.save_sovits`/`save_gpt` (one
GPT file for both; the reference's content features from a HuBERT shrunk to its convolutional
front end, so that time is not a real HuBERT's). The GPT of v2Pro/v2ProPlus (upstream's s1v3)
has v2's layout: its figures are v2's.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from clonebench.model.config import PRESETS, preset  # noqa: E402
from clonebench.model.decode import SamplingParams  # noqa: E402
from clonebench.model.gpt import Text2Semantic  # noqa: E402
from clonebench.model.layers import fold_weight_norm  # noqa: E402
from clonebench.model.sovits import SoVITS  # noqa: E402
from clonebench.model.text.frontend import phonemize, split_sentences  # noqa: E402

TEXT = ("Thank you for calling the customer service centre. All of our agents are busy at the moment, "
        "so please stay on the line and your call will be answered in the order it was received.")
PROMPT_TEXT = "Please leave a message after the tone."


def front_end_sentences() -> dict[str, list[str]]:
    """Sentences per language for the front end's cost: this benchmark's English text, a Chinese
    one, and the Japanese, Korean and Cantonese sentences of the front-end fixtures."""
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "frontend"
    return {"en": split_sentences(TEXT, "en"),
            "zh": split_sentences("感谢您致电客户服务中心。我们的客服人员正忙，请稍候。您的来电对我们很重要，"
                                  "我们将在2分钟内为您服务。", "zh"),
            "ja": (fixtures / "sentences_ja.txt").read_text(encoding="utf-8").splitlines(),
            "ko": (fixtures / "sentences_ko.txt").read_text(encoding="utf-8").splitlines(),
            "yue": (fixtures / "sentences_yue.txt").read_text(encoding="utf-8").splitlines()}


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def build(name: str, device: str, dtype=torch.float32):
    torch.manual_seed(0)
    s_config, g_config = preset(name)
    sovits, gpt = SoVITS(s_config).eval(), Text2Semantic(g_config).eval()
    sovits.quantizer.codebooks[0].embed.normal_()
    return sovits.to(device, dtype), gpt.to(device, dtype)


def gpt_tokens(gpt, n_tokens: int, n_items: int = 1, use_cache: bool = True, device="cpu", dtype=torch.float32):
    prompt_ids = phonemize(PROMPT_TEXT, "en").ids
    target = phonemize(TEXT, "en").ids
    phones = [torch.tensor(prompt_ids + target, device=device)] * n_items
    bert = [torch.zeros(1024, len(prompt_ids) + len(target), device=device, dtype=dtype)] * n_items
    prompt = torch.randint(0, 1024, (125,), device=device)
    return lambda: gpt.generate(phones, bert, prompt, SamplingParams(), seed=0, use_cache=use_cache,
                                min_tokens=n_tokens, max_tokens=n_tokens)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="v2", choices=list(PRESETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="skip the slower comparisons")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, device {dev}"
          + (f" ({torch.cuda.get_device_name()})" if dev.startswith("cuda") else ""))
    audio_s = args.tokens / 25
    print(f"preset {args.preset}, random weights, fp32, {args.tokens} tokens = {audio_s:.0f} s of audio\n")

    sovits, gpt = build(args.preset, dev)
    codes = torch.randint(0, 1024, (1, 1, args.tokens), device=dev)
    text_ids = torch.tensor([phonemize(TEXT, "en").ids], device=dev)
    pro = sovits.config.is_pro
    if pro:   # the Pro style: reference spectrogram + timbre vector through sv_emb, then the PReLU
        g = torch.Generator().manual_seed(0)
        refer = torch.rand(1, 1025, 200, generator=g).to(dev)
        timbre = torch.randn(1, sovits.config.sv_dim, generator=g).to(dev)
        with torch.inference_mode():
            ge = sovits.style(refer, sv=timbre)
        print(f"{sovits.config.version}: gin {sovits.config.gin_channels}, vocoder from "
              f"{sovits.config.upsample_initial_channel} channels, kernels {sovits.config.upsample_kernel_sizes}, "
              f"timbre {sovits.config.sv_dim}-d\n")
    else:
        ge = torch.randn(1, sovits.config.gin_channels, 1, device=dev)

    def run_sovits():
        z = sovits.latent(codes, text_ids, ge)
        sync()
        return z

    with torch.inference_mode():
        t_front, _ = timed(lambda: [phonemize(s, "en") for s in split_sentences(TEXT, "en")], repeat=3)
        gpt_tokens(gpt, 20, device=dev)()                                   # warm-up
        sovits.dec(run_sovits(), g=ge)
        sync()
        t_gpt, _ = timed(lambda: (gpt_tokens(gpt, args.tokens, device=dev)(), sync()))
        t_prefill, _ = timed(lambda: (gpt_tokens(gpt, 1, device=dev)(), sync()), repeat=2)
        t_sovits, z = timed(run_sovits, repeat=2)
        t_voc, _ = timed(lambda: (sovits.dec(z, g=ge), sync()), repeat=2)
        fold_weight_norm(sovits)
        t_sovits_f, z = timed(run_sovits, repeat=2)
        t_voc_f, _ = timed(lambda: (sovits.dec(z, g=ge), sync()), repeat=2)
    total = t_front + t_gpt + t_sovits_f + t_voc_f
    step_ms = (t_gpt - t_prefill) / max(args.tokens - 1, 1) * 1000
    print("stage                     seconds   share")
    for label, t in [("text front end", t_front), ("GPT (prefill + decode)", t_gpt),
                     ("SoVITS decode", t_sovits_f), ("vocoder (HiFi-GAN)", t_voc_f)]:
        print(f"{label:<25} {t:8.4f}  {t / total:6.1%}")
    print(f"{'total':<25} {total:7.3f}   RTF {total / audio_s:.3f}")
    per_sentence = total / len(split_sentences(TEXT, "en"))
    for lang, sentences in front_end_sentences().items():
        phonemize({"en": "Warm up.", "zh": "预热。", "ja": "準備。", "ko": "준비.", "yue": "準備。"}[lang], lang)   # loads dictionaries
        t, _ = timed(lambda: [phonemize(s, lang) for s in sentences])          # once: word caches start cold
        print(f"front end, {lang}: {t / len(sentences) * 1000:.2f} ms per sentence ({len(sentences)} sentences), "
              f"{t / len(sentences) / per_sentence:.2%} of a sentence's synthesis here")
    print(f"\nGPT: prefill {t_prefill:.3f} s, {step_ms:.1f} ms per token, "
          f"{args.tokens / t_gpt:.1f} tokens/s with the KV cache (prefill included)")
    params = sum(p.numel() for p in gpt.parameters())
    print(f"GPT weights read per token: {params * 4 / 1e6:.0f} MB -> {params * 4 / step_ms / 1e6:.1f} GB/s effective")
    print(f"weight-norm folding: SoVITS decode {t_sovits:.3f} -> {t_sovits_f:.3f} s, vocoder {t_voc:.3f} -> {t_voc_f:.3f} s")
    print(f"peak RSS so far (fp32 models, one synthesis) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if pro:
        beside_v2(args, sovits, codes, text_ids, refer, timbre, t_sovits_f, t_voc_f, sync)

    if not args.quick:
        with torch.inference_mode():
            n = 60
            t_nc, _ = timed(lambda: (gpt_tokens(gpt, n, use_cache=False, device=dev)(), sync()))
            t_c, _ = timed(lambda: (gpt_tokens(gpt, n, device=dev)(), sync()))
            print(f"\nKV cache, {n} tokens: without {n / t_nc:.1f} tokens/s, with {n / t_c:.1f} tokens/s ({t_nc / t_c:.1f}x)")
            for b in (2, 4):
                t_b, _ = timed(lambda: (gpt_tokens(gpt, args.tokens // b, n_items=b, device=dev)(), sync()))
                print(f"{b} sentences of {args.tokens // b} tokens batched: {t_b:.3f} s "
                      f"({args.tokens / t_b:.1f} tokens/s, RTF {(t_front + t_b + t_sovits_f + t_voc_f) / audio_s:.3f} in all)")
        with torch.no_grad():
            t_ng, _ = timed(lambda: (gpt_tokens(gpt, 60, device=dev)(), sync()))
        print(f"no_grad instead of inference_mode, 60 tokens: {60 / t_ng:.1f} tokens/s")
        if dev.startswith("cuda"):
            half = torch.float16
            s16, g16 = build(args.preset, dev, half)
            fold_weight_norm(s16)
            with torch.inference_mode():
                gpt_tokens(g16, 20, device=dev, dtype=half)()
                t_g16, _ = timed(lambda: (gpt_tokens(g16, args.tokens, device=dev, dtype=half)(), sync()))
                t_s16, _ = timed(lambda: (s16.dec(s16.latent(codes, text_ids, ge.half()), g=ge.half()), sync()), repeat=2)
            print(f"fp16 (whole model): GPT {t_g16:.3f} s ({args.tokens / t_g16:.1f} tokens/s), "
                  f"SoVITS + vocoder {t_s16:.3f} s, RTF {(t_front + t_g16 + t_s16) / audio_s:.3f}")
        else:
            # on a CPU only the GPT's matrices go to fp16 (fp16 convolutions there are slower than fp32)
            gpt.half_matrices()
            with torch.inference_mode():
                gpt_tokens(gpt, 20, device=dev)()
                t_g16, _ = timed(lambda: gpt_tokens(gpt, args.tokens, device=dev)())
                t_b16, _ = timed(lambda: gpt_tokens(gpt, args.tokens // 4, n_items=4, device=dev)())
            rest = t_front + t_sovits_f + t_voc_f
            print(f"fp16 GPT matrices (--precision fp16): GPT {t_g16:.3f} s ({args.tokens / t_g16:.1f} tokens/s), "
                  f"RTF {(rest + t_g16) / audio_s:.3f}; 4 sentences batched {t_b16:.3f} s, RTF {(rest + t_b16) / audio_s:.3f}")
    print(f"\npeak RSS at the end (fp32 and fp16 copies loaded) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def beside_v2(args, pro_sovits, codes, text_ids, refer, timbre, t_sovits_pro, t_voc_pro, sync) -> None:
    """A v2Pro/v2ProPlus preset beside v2: the same SoVITS stages on the same codes, the Pro-only
    steps, and one text end to end through `Synthesizer` for each."""
    from clonebench.instruments.eres2net import ERes2NetV2Encoder
    from clonebench.model import checkpoint
    from clonebench.testing.toy_models import eres2netv2_file

    dev, version = args.device, pro_sovits.config.version
    v2, _ = build("v2", dev)
    fold_weight_norm(v2)
    ge2 = torch.randn(1, v2.config.gin_channels, 1, device=dev)
    with torch.inference_mode():
        v2.dec(v2.latent(codes, text_ids, ge2), g=ge2)                      # warm-up
        t_sovits_v2, z2 = timed(lambda: (v2.latent(codes, text_ids, ge2), sync())[0], repeat=2)
        t_voc_v2, _ = timed(lambda: (v2.dec(z2, g=ge2), sync()), repeat=2)
        t_style, _ = timed(lambda: (pro_sovits.style(refer, sv=timbre), sync()), repeat=3)
    v2 = None   # release it
    tmp = Path(tempfile.mkdtemp(prefix="bench-model-"))
    sv_path = eres2netv2_file(tmp / "eres2netv2.ckpt", wide=True)
    encoder = ERes2NetV2Encoder(sv_path, device=dev)
    clip32, clip16 = reference_clip()
    encoder.timbre(clip32)                                                  # warm-up
    t_timbre, vec = timed(lambda: encoder.timbre(clip32), repeat=2)
    encoder = None
    rows = [("SoVITS decode (quantizer, text encoder + MRTE, flow)", t_sovits_v2, t_sovits_pro),
            ("vocoder (HiFi-GAN, weight norm folded)", t_voc_v2, t_voc_pro),
            ("SoVITS + vocoder", t_sovits_v2 + t_voc_v2, t_sovits_pro + t_voc_pro)]
    print(f"\nbeside v2, same {args.tokens} codes, fp32:")
    print(f"{'stage':<55} {'v2':>8} {version:>10}  ratio")
    for label, a, b in rows:
        print(f"{label:<55} {a:8.3f} {b:10.3f}  {b / a:5.2f}x")
    print(f"{'GPT (s1v3 = v2 s1 layout: the same model)':<55} {'as above':>8} {'as above':>10}")
    print(f"{version} only: timbre vector {t_timbre:.3f} s (random ERes2NetV2, real widths, one block per stage; "
          f"{vec.shape[0]}-d, from a {len(clip32) / 32000:.0f} s clip), style vector {t_style * 1000:.1f} ms")

    # -- end to end through Synthesizer, from files, one GPT file for both ----------------------
    from clonebench.instruments.references import PromptChoice
    from clonebench.model.spec import ModelSpec
    from clonebench.model.synthesize import Synthesizer

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from make_parity_fixtures import tiny_hubert

    tiny_hubert(tmp / "hubert")
    s_v2, gpt = build("v2", "cpu")
    checkpoint.save_gpt(tmp / "gpt.ckpt", gpt, gpt.config)
    checkpoint.save_sovits(tmp / "v2.pth", s_v2, s_v2.config)
    s_pro, _ = build(args.preset, "cpu")
    checkpoint.save_sovits(tmp / "pro.pth", s_pro, s_pro.config)
    del s_v2, s_pro, gpt
    prompt = PromptChoice(clip16, clip32, PROMPT_TEXT, "en", "synthetic")
    print(f"\nend to end (Synthesizer from files, fp32, seed 0, at most {args.tokens} tokens a sentence, "
          f"{len(split_sentences(TEXT, 'en'))} sentences batched):")
    print(f"{'model':<10} {'reference':>9} {'frontend':>9} {'GPT':>7} {'SoVITS':>7} {'vocoder':>8} {'audio':>7}  RTF")
    for label, path, sv_model in (("v2", tmp / "v2.pth", None), (version, tmp / "pro.pth", sv_path)):
        synth = Synthesizer(ModelSpec(tmp / "gpt.ckpt", path, content=f"cnhubert:{tmp / 'hubert'}", device=dev,
                                      threads=args.threads, sv_model=sv_model))
        t_ref, ref = timed(lambda: synth.reference(prompt))
        synth.synthesize("Warm up.", "en", ref, max_tokens=20)
        out = synth.synthesize(TEXT, "en", ref, seed=0, max_tokens=args.tokens)
        t = out.timings
        print(f"{label:<10} {t_ref:9.3f} {t['frontend']:9.3f} {t['gpt']:7.2f} {t['sovits']:7.3f} {t['vocoder']:8.2f} "
              f"{out.duration_s:6.1f}s  {out.rtf:.3f}")
    print("(reference: content features from a shrunk HuBERT, so not a real reference's time; "
          f"it includes the {version} timbre vector)")
    shutil.rmtree(tmp, ignore_errors=True)


def reference_clip():
    """5 s of a voice-like signal (a 120 Hz buzz with formant-ish partials and noise), 32 and 16 kHz."""
    import numpy as np

    from clonebench.core.audio import resample

    t = np.arange(5 * 32000) / 32000
    rng = np.random.default_rng(0)
    x = sum(np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 30)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    x = (0.1 * x / np.abs(x).max() + 0.003 * rng.standard_normal(len(t))).astype(np.float32)
    return x, resample(x, 32000, 16000)


if __name__ == "__main__":
    main()
