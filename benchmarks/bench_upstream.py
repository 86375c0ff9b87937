"""clonebench against upstream GPT-SoVITS v2 (or v2ProPlus), side by side in one run. Prints figures; asserts
nothing but that both sides computed the same thing.

    python benchmarks/bench_upstream.py --upstream /path/to/GPT-SoVITS [--tokens 250] [--rounds 3] [--threads 2]
        [--version v2|v2ProPlus]

Random weights at the released v2 sizes are written once by upstream's own save code (the
same way scripts/make_parity_fixtures.py does it); each side then loads the same two files its
own way and runs, alternating, round after round:
- GPT: prefill + greedy decoding of `--tokens` tokens with the KV cache (upstream
  `infer_panel_naive`, clonebench `Text2Semantic.generate`), tokens/s;
- SoVITS + vocoder: `decode` of the same codes at noise 0 (upstream `SynthesizerTrn.decode`,
  clonebench `SoVITS.decode` with its weight norm folded as `Synthesizer` does), seconds.
The median of the rounds is printed, with the machine and thread count.

`--version v2ProPlus` times upstream's v2ProPlus SoVITS instead (the sizes of its
configs/s2v2ProPlus.json: gin 1024, vocoder from 768 channels, kernels 20/16/8/2/2), random
weights written by upstream's `savee(..., model_version="v2ProPlus")` (the file starts with its
b"06" tag). Both sides load that one file their own way (upstream: `load_sovits_new`, the
version from the tag, `SynthesizerTrn` from the file's config, as its inference does; clonebench:
`checkpoint.load_sovits`, `SoVITS`, weight norm folded as `Synthesizer` does) and decode the
same codes with the same reference spectrogram and the same random 20480-d timbre vector
(`sv_emb`); the run fails unless the waveforms agree within relative L2 1e-3. The GPT of
v2ProPlus is upstream's s1v3, whose layout is v2's s1: the same GPT is timed as for v2.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from make_parity_fixtures import s1_config, s2_hparams, save_gpt, stub_modules  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", type=Path, required=True, help="a GPT-SoVITS checkout (the folder holding GPT_SoVITS/)")
    ap.add_argument("--tokens", type=int, default=250)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--version", choices=("v2", "v2ProPlus"), default="v2",
                    help="the SoVITS timed: upstream's v2 (default) or v2ProPlus (the GPT is the same)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    stub_modules()
    sys.path.insert(0, str(args.upstream / "GPT_SoVITS"))
    import process_ckpt
    import utils
    from AR.models.t2s_model import Text2SemanticDecoder
    from module.models import SynthesizerTrn

    from clonebench.model import checkpoint
    from clonebench.model.decode import SamplingParams
    from clonebench.model.gpt import Text2Semantic
    from clonebench.model.layers import fold_weight_norm
    from clonebench.model.sovits import SoVITS

    tmp = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    torch.manual_seed(0)
    pro = args.version != "v2"
    # released v2 sizes: upstream's s2.json / s1longer-v2.yaml
    hps = s2_hparams(utils)
    hps.model.filter_channels, hps.model.n_layers = 768, 6
    hps.model.resblock_kernel_sizes, hps.model.resblock_dilation_sizes = [3, 7, 11], [[1, 3, 5]] * 3
    hps.model.upsample_initial_channel = 512
    if pro:  # released v2ProPlus sizes: the model section of upstream's s2v2ProPlus.json
        released = json.loads((args.upstream / "GPT_SoVITS" / "configs" / f"s2{args.version}.json").read_text())
        for k, v in released["model"].items():
            setattr(hps.model, k, v)
        hps.model.version = args.version
    hps.save_weight_dir = str(tmp)
    up_sovits = SynthesizerTrn(1025, 32, n_speakers=300, **hps.model).eval()
    if pro:
        status = process_ckpt.savee(up_sovits.state_dict(), "sovits", 1, 1, hps, model_version=args.version)
        if status != "Success.":
            sys.exit(status)
        up_sovits = upstream_load(tmp / "sovits.pth", process_ckpt, SynthesizerTrn)
    else:
        process_ckpt.savee(up_sovits.state_dict(), "sovits", 1, 1, hps)
    config = s1_config()
    config["model"].update(embedding_dim=512, hidden_dim=512, head=16, n_layer=24, linear_units=2048)
    up_gpt = Text2SemanticDecoder(config, top_k=1).eval()
    save_gpt(up_gpt, config, tmp / "gpt.ckpt", process_ckpt)
    # both sides compute with the file's (fp16) weights
    if not pro:  # (the v2ProPlus side was loaded from the file)
        up_sovits.load_state_dict({k: v.half().float() for k, v in up_sovits.state_dict().items()})
    up_gpt.load_state_dict({k: v.half().float() for k, v in up_gpt.state_dict().items()})

    s_config, s_state, _ = checkpoint.load_sovits(tmp / "sovits.pth")
    ours_sovits = SoVITS(s_config).eval()
    checkpoint.load_into(ours_sovits, s_state, tmp / "sovits.pth", ("enc_q.",))
    fold_weight_norm(ours_sovits)
    g_config, g_state, _ = checkpoint.load_gpt(tmp / "gpt.ckpt")
    ours_gpt = Text2Semantic(g_config).eval()
    checkpoint.load_into(ours_gpt, g_state, tmp / "gpt.ckpt")

    g = torch.Generator().manual_seed(0)
    phones = torch.randint(1, 732, (1, 80), generator=g)
    bert = torch.zeros(1, 1024, 80)
    prompt = torch.randint(0, 1024, (1, 75), generator=g)
    codes = torch.randint(0, 1024, (1, 1, args.tokens), generator=g)
    text = torch.randint(1, 732, (1, 60), generator=g)
    refer = torch.rand(1, 1025, 200, generator=g)
    sv = torch.randn(1, 20480, generator=g) if pro else None   # a timbre vector, as ERes2NetV2's forward3 gives

    def upstream_gpt():
        y = None
        for y, _ in up_gpt.infer_panel_naive(phones, torch.LongTensor([80]), prompt, bert, top_k=1, top_p=1.0,
                                             early_stop_num=args.tokens - 1, temperature=1.0, repetition_penalty=1.35):
            pass
        return y[0, prompt.shape[1]:]

    import copy

    ours_gpt_fp16 = copy.deepcopy(ours_gpt).half_matrices()  # what `--precision fp16` does on a CPU

    def ours_gpt_run(gpt=ours_gpt):
        return gpt.generate([phones[0]], [bert[0]], prompt[0], SamplingParams(top_k=1), max_tokens=args.tokens)[0]

    def upstream_decode():
        if pro:
            return up_sovits.decode(codes, text, refer, noise_scale=0.0, sv_emb=sv)
        return up_sovits.decode(codes, text, refer, noise_scale=0.0)

    def ours_decode():
        return ours_sovits.decode(codes, text, ours_sovits.style(refer, sv=sv), noise_scale=0.0)

    times: dict[str, list[float]] = {k: [] for k in ("upstream gpt", "clonebench gpt", "clonebench-fp16 gpt", "upstream sovits",
                                                     "clonebench sovits")}
    lengths = {}
    with torch.inference_mode():
        upstream_gpt(), ours_gpt_run(), ours_gpt_run(ours_gpt_fp16), upstream_decode(), ours_decode()  # warm-up
        for _ in range(args.rounds):
            for name, fn in (("upstream gpt", upstream_gpt), ("clonebench gpt", ours_gpt_run),
                             ("clonebench-fp16 gpt", lambda: ours_gpt_run(ours_gpt_fp16)),
                             ("upstream sovits", upstream_decode), ("clonebench sovits", ours_decode)):
                t0 = time.perf_counter()
                out = fn()
                times[name].append(time.perf_counter() - t0)
                lengths[name] = out
    same_tokens = torch.equal(lengths["upstream gpt"], lengths["clonebench gpt"])
    wav_a, wav_b = lengths["upstream sovits"], lengths["clonebench sovits"]
    rel = float((wav_a - wav_b).norm() / wav_a.norm())
    n_tokens = len(lengths["clonebench gpt"])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, {args.threads} threads, torch {torch.__version__}")
    if pro:
        n_params = sum(v.numel() for v in s_state.values())   # the file's tensors: enc_q is not there
        print(f"SoVITS {args.version} ({s_config.version} from the file's tag; gin {s_config.gin_channels}, vocoder from "
              f"{s_config.upsample_initial_channel} channels, {n_params / 1e6:.1f} M parameters without enc_q); "
              "GPT: upstream's s1v3 has v2's s1 layout, the same GPT is timed")
    print(f"same tokens: {same_tokens} ({n_tokens} tokens); decode relative L2: {rel:.1e}")
    fp16_tokens = lengths["clonebench-fp16 gpt"]
    print(f"fp16 matrices: {int((fp16_tokens[:n_tokens] == lengths['clonebench gpt'][:len(fp16_tokens)]).sum())}"
          f"/{n_tokens} greedy tokens equal to fp32")
    med = {k: statistics.median(v) for k, v in times.items()}
    med["clonebench-fp16 sovits"] = med["clonebench sovits"]  # the decoder runs in fp32 either way
    total = {}
    for side in ("upstream", "clonebench", "clonebench-fp16"):
        gpt_s, sovits_s = med[f"{side} gpt"], med[f"{side} sovits"]
        total[side] = gpt_s + sovits_s
        print(f"{side:<15} GPT {n_tokens / gpt_s:6.1f} tokens/s ({gpt_s:.2f} s)   SoVITS + vocoder {sovits_s:.2f} s   "
              f"total {total[side]:.2f} s   {total[side] / total['upstream']:.2f}x upstream's time")
    if pro:
        print(f"SoVITS + vocoder alone: clonebench {med['clonebench sovits'] / med['upstream sovits']:.2f}x upstream's time")
        if not rel < 1e-3:
            sys.exit(f"FAIL: the two {args.version} decodes differ (relative L2 {rel:.1e} >= 1e-3)")


def upstream_load(path: Path, process_ckpt, synthesizer_cls):
    """A SoVITS file loaded as upstream's inference loads it (`inference_webui.change_sovits_weights`):
    the version from the file's 2-byte tag, the model from the file's own config, enc_q dropped."""
    with open(path, "rb") as f:
        _, model_version, _ = process_ckpt.head2version[f.read(2)]
    dict_s2 = process_ckpt.load_sovits_new(str(path))
    hps = dict_s2["config"]
    hps.model.semantic_frame_rate = "25hz"
    hps.model.version = model_version
    model = synthesizer_cls(hps.data.filter_length // 2 + 1, hps.train.segment_size // hps.data.hop_length,
                            n_speakers=hps.data.n_speakers, **hps.model)
    del model.enc_q
    result = model.load_state_dict(dict_s2["weight"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        sys.exit(f"{path}: upstream {model_version}: missing {result.missing_keys[:3]}, "
                 f"unexpected {result.unexpected_keys[:3]}")
    return model.eval()


if __name__ == "__main__":
    main()
