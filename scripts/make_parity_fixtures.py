"""Write tests/fixtures/parity/: what upstream GPT-SoVITS v2, v2Pro and v2ProPlus's own code
computes, for CI to hold clonebench to.

    python scripts/make_parity_fixtures.py --upstream /path/to/GPT-SoVITS [--out tests/fixtures/parity]
    python scripts/make_parity_fixtures.py --upstream /path/to/GPT-SoVITS --check-ours FILE.pth

The second form loads a SoVITS file clonebench wrote into upstream's own `SynthesizerTrn`, the
way upstream's inference does (version from the file's tag, sizes from its config), and fails
unless every weight upstream expects is there with its shape.

Nothing of upstream is copied into this repository: this script imports upstream's modules from
the checkout you name, builds its v2 SoVITS and GPT at reduced sizes (the sizes upstream does not
hard-code are shrunk), writes them with upstream's own save code, runs upstream's own inference
steps on fixed inputs and keeps the inputs and outputs. `tests/model/test_parity.py` then loads
the upstream-format files through clonebench's normal loading path and asserts the same outputs.

Upstream's v2 path needs none of its v3 (`f5_tts`) or UI translation (`tools.i18n`) code, so
this script puts empty stand-ins for those two imports in `sys.modules` before importing.

Random weights are drawn from {-s, 0, +s} (three levels per tensor, half of them zero; weight-norm
directions from {-s, +s}, gains at their mean size, so that a signal crosses the vocoder), so that
the SoVITS file, whose hard-coded 768-d content path and 512-d style path keep it at 12 M
parameters, compresses to a few MB; any fixed weights test the same arithmetic.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SEED = 1234
N_FRAMES = 100            # 2 s of 50 Hz content features -> 50 semantic codes
GREEDY_TOKENS = 50
STOP_TOKEN = 77           # the crafted stop case: a token the prompt repeats
HUBERT_DIM = 768          # upstream's SoVITS hard-codes 768-d content features


def stub_modules() -> None:
    """Empty stand-ins for imports the v2 path never uses."""
    f5 = types.ModuleType("f5_tts")
    f5_model = types.ModuleType("f5_tts.model")
    f5_model.DiT = None
    f5.model = f5_model
    tools = types.ModuleType("tools")
    i18n_pkg = types.ModuleType("tools.i18n")
    i18n = types.ModuleType("tools.i18n.i18n")
    i18n.I18nAuto = lambda *a, **k: (lambda text: text)
    sys.modules.update({"f5_tts": f5, "f5_tts.model": f5_model, "tools": tools, "tools.i18n": i18n_pkg,
                        "tools.i18n.i18n": i18n})


def ternary_(module: torch.nn.Module, seed: int, skip: tuple[str, ...] = (), nonzero: int = 2) -> None:
    """Overwrite every floating tensor of the state dict (parameters and buffers) with values
    from {-s, 0, +s}, s = the tensor's own standard deviation (1 for constant tensors); one
    value in `nonzero` is not zero (weight-norm directions: all)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict(keep_vars=True).items():
            if not t.is_floating_point() or name.startswith(skip):
                continue
            scale = float(t.float().std()) if t.numel() > 1 else 1.0
            scale = scale if np.isfinite(scale) and scale > 0 else 1.0
            levels = torch.randint(0, 2, t.shape, generator=g) * 2 - 1
            if name.endswith("weight_g"):       # a weight-norm gain is a norm: keep its size, not its spread
                levels, scale = levels.abs(), float(t.float().abs().mean())
            elif not name.endswith("weight_v"):   # a weight-norm direction must not be all zero
                levels = levels * (torch.randint(0, nonzero, t.shape, generator=g) == nonzero - 1)
            t.copy_((levels * scale).to(t.dtype).half().float())


def codebook_ready_(vq) -> None:
    """The random fill may have zeroed the codebook's `inited` flag: set, or it would re-draw itself."""
    with torch.no_grad():
        for name, buf in vq.named_buffers():
            if name.endswith("_codebook.inited"):
                buf.fill_(1.0)


def s2_hparams(utils) -> object:
    """Upstream's s2 config with the sizes it does not hard-code shrunk."""
    config = {
        "train": {"segment_size": 20480, "text_low_lr_rate": 0.4, "c_mel": 45, "c_kl": 1.0},
        "data": {"max_wav_value": 32768.0, "sampling_rate": 32000, "filter_length": 2048, "hop_length": 640,
                 "win_length": 2048, "n_mel_channels": 128, "mel_fmin": 0.0, "mel_fmax": None, "add_blank": True,
                 "n_speakers": 300, "cleaned_text": True},
        "model": {"inter_channels": 192, "hidden_channels": 192, "filter_channels": 256, "n_heads": 2,
                  "n_layers": 2, "kernel_size": 3, "p_dropout": 0.1, "resblock": "1",
                  "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]],
                  "upsample_rates": [10, 8, 2, 2, 2], "upsample_initial_channel": 64,
                  "upsample_kernel_sizes": [16, 16, 8, 2, 2], "n_layers_q": 3, "use_spectral_norm": False,
                  "gin_channels": 512, "semantic_frame_rate": "25hz", "freeze_quantizer": True, "version": "v2"},
        "s2_ckpt_dir": "", "content_module": "cnhubert",
    }
    return utils.HParams(**config)


def s1_config() -> dict:
    return {"train": {"seed": SEED, "epochs": 1, "batch_size": 1, "precision": "32"},
            "optimizer": {"lr": 0.01, "lr_init": 1e-5, "lr_end": 1e-4, "warmup_steps": 2000, "decay_steps": 40000},
            "data": {"max_eval_sample": 8, "max_sec": 54, "num_workers": 1, "pad_val": 1024},
            "model": {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 64, "hidden_dim": 64,
                      "head": 4, "linear_units": 128, "n_layer": 2, "dropout": 0, "EOS": 1024, "random_bert": 0},
            "inference": {"top_k": 15}}


def save_gpt(model, config: dict, path: Path, process_ckpt) -> None:
    """The GPT file exactly as upstream's s1 training writes it (`s1_train.py`, half weights)."""
    weights = {f"model.{k}": v.half() for k, v in model.state_dict().items()}
    process_ckpt.my_save({"weight": weights, "config": config, "info": "GPT-e1"}, str(path))


def real_clip() -> tuple[np.ndarray, str]:
    """An English Asterisk prompt (Debian package) at 32 kHz, 3.5 s, and its text."""
    sys.path.insert(0, str(ROOT))
    from clonebench.core.audio import resample
    from clonebench.testing import corpus

    p = next(p for p in corpus.prompts("en") if 3.2 <= len(corpus.load_prompt(p)) / 16000 <= 6)
    x16 = corpus.load_prompt(p)[: int(3.5 * 16000)]
    # fp16-exact, so the inputs file (fp16) holds exactly what upstream was given
    return resample(x16, 16000, 32000).astype(np.float16).astype(np.float32), p.text


def tiny_hubert(folder: Path) -> None:
    """A random transformers HuBERT with upstream's 768-d output and no transformer layers (the
    conv feature encoder, projection and positional convolution remain): a few hundred kB."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

    torch.manual_seed(SEED)
    cfg = HubertConfig(hidden_size=HUBERT_DIM, num_hidden_layers=0, num_attention_heads=12, intermediate_size=64,
                       conv_dim=(32,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=64,
                       feat_extract_norm="group", do_stable_layer_norm=False)
    HubertModel(cfg).eval().half().save_pretrained(str(folder))   # fp16 on disk; both sides load it as fp32
    # chinese-hubert-base's feature extractor says do_normalize: upstream ignores it
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=False).save_pretrained(str(folder))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", type=Path, required=True, help="a GPT-SoVITS checkout (the folder holding GPT_SoVITS/)")
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "parity")
    ap.add_argument("--upstream-commit", default=None, help="the checkout's commit, when it is not a git work tree")
    ap.add_argument("--check-ours", type=Path, default=None, help="a SoVITS file clonebench wrote: load it in upstream's code")
    ap.add_argument("--only-pro", action="store_true", help="write only the v2Pro/v2ProPlus fixtures")
    args = ap.parse_args()
    src = args.upstream / "GPT_SoVITS"
    if not (src / "module" / "models.py").is_file():
        sys.exit(f"{args.upstream}: not a GPT-SoVITS checkout (no GPT_SoVITS/module/models.py)")
    stub_modules()
    sys.path.insert(0, str(src))
    if args.check_ours:
        check_ours(args.check_ours)
        return
    commit = args.upstream_commit or subprocess.run(["git", "-C", str(args.upstream), "rev-parse", "HEAD"],
                                                    capture_output=True, text=True).stdout.strip() or "unknown"
    pro_fixtures(src, args.out, commit)
    if args.only_pro:
        return
    import process_ckpt
    import utils
    from AR.models.t2s_model import Text2SemanticDecoder
    from AR.models.utils import sample
    from feature_extractor.cnhubert import CNHubert
    from module import commons
    from module.mel_processing import spectrogram_torch
    from module.models import SynthesizerTrn

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    facts: dict = {}

    # -- SoVITS: codes, decode at noise 0, the reference spectrogram and style ----------------
    hps = s2_hparams(utils)
    vq = SynthesizerTrn(hps.data.filter_length // 2 + 1, hps.train.segment_size // hps.data.hop_length,
                        n_speakers=hps.data.n_speakers, **hps.model).eval()
    ternary_(vq, SEED, skip=("enc_q.",))
    codebook_ready_(vq)
    hps.save_weight_dir = str(out)
    status = process_ckpt.savee(vq.state_dict(), "sovits", 1, 10, hps)
    if status != "Success.":
        sys.exit(status)
    with open(out / "sovits.pth", "rb") as f, gzip.open(out / "sovits.pth.gz", "wb", compresslevel=9) as z:
        z.write(f.read())
    (out / "sovits.pth").unlink()   # the weights were made fp16-exact, so the file holds what `vq` computes with

    ssl = torch.randn(1, HUBERT_DIM, N_FRAMES, generator=g).half().float()
    phones = torch.randint(1, 732, (1, 40), generator=g)
    clip32, clip_text = real_clip()
    wav32 = torch.from_numpy(clip32)[None]
    with torch.no_grad():
        codes = vq.extract_latent(ssl)                                    # [1, 1, 50]
        refer = spectrogram_torch(wav32, 2048, 32000, 640, 2048, center=False)
        refer_mask = torch.unsqueeze(commons.sequence_mask(torch.LongTensor([refer.size(2)]), refer.size(2)), 1)
        ge = vq.ref_enc(refer[:, :704] * refer_mask, refer_mask)
        wav = vq.decode(codes, phones, refer, noise_scale=0.0)

    # -- GPT: teacher-forced logits, the training loss, greedy tokens ---------------------------
    config = s1_config()
    gpt = Text2SemanticDecoder(config, top_k=3).eval()
    save_gpt(gpt, config, out / "gpt.ckpt", process_ckpt)
    gpt.load_state_dict({k: v.half().float() for k, v in gpt.state_dict().items()})
    x = torch.randint(1, 732, (1, 30), generator=g)
    bert = torch.randn(1, 1024, 30, generator=g).half().float()
    y = codes[0, :, :20].long()
    x_lens, y_lens = torch.LongTensor([30]), torch.LongTensor([20])
    with torch.no_grad():
        xy_pos, xy_mask, _ = gpt.make_input_data(x, x_lens, y, y_lens, bert)
        xy_dec, _ = gpt.h((xy_pos, None), mask=xy_mask)
        logits = gpt.ar_predict_layer(xy_dec[:, x_lens.max() - 1:])       # the first code from the last phone
        loss, _ = gpt.forward_old(x, x_lens, y, y_lens, bert)
        prompt = codes[0, :, :12].long()
        greedy = _run_panel(gpt, x, prompt, bert, top_k=1, early_stop_num=GREEDY_TOKENS - 1)

    # -- the stop rule on a crafted GPT ---------------------------------------------------------
    stop_gpt = Text2SemanticDecoder(config, top_k=3).eval()
    stop_gpt.load_state_dict(gpt.state_dict())
    _craft_stop(stop_gpt)
    stop_gpt.load_state_dict({k: v.half().float() for k, v in stop_gpt.state_dict().items()})
    save_gpt(stop_gpt, config, out / "gpt-stop.ckpt", process_ckpt)
    stop_prompt = torch.full((1, 8), STOP_TOKEN, dtype=torch.long)
    stop_lengths = []
    with torch.no_grad():
        for seed in range(20):
            torch.manual_seed(seed)
            stop_lengths.append(int(_run_panel(stop_gpt, x, stop_prompt, bert, top_k=15).shape[1]))
        # upstream's sampler penalises in place: its argmax afterwards is what the stop rule reads
        crafted = stop_gpt.ar_predict_layer(stop_gpt.h.layers[-1].norm2.bias[None])
        torch.manual_seed(0)
        sample(crafted, stop_prompt, top_k=15, top_p=1.0, repetition_penalty=1.35, temperature=1.0)
        facts["crafted_argmax_after_penalty"] = int(crafted.argmax(-1))

    # -- content features: upstream's CNHubert on the reference plus its 0.6 s pause -----------
    hubert_dir = out / "hubert"
    tiny_hubert(hubert_dir)
    cnhubert = CNHubert(str(hubert_dir)).eval()
    x16 = torch.from_numpy(np.ascontiguousarray(clip32[::2]))            # any 16 kHz signal will do
    pause = torch.zeros(int(hps.data.sampling_rate * 0.3))
    with torch.no_grad():
        hubert = cnhubert.model(torch.cat([x16, pause])[None])["last_hidden_state"].transpose(1, 2)
        prompt_codes = vq.extract_latent(hubert)                          # the GPT's prompt, as upstream makes it

    torch.save({"ssl": ssl.half(), "phones": phones, "clip32": wav32.half(), "clip_text": clip_text,
                "gpt_x": x, "gpt_bert": bert.half(), "gpt_y": y, "prompt": prompt, "stop_prompt": stop_prompt,
                "x16": x16.half()}, out / "inputs.pt")
    torch.save({"codes": codes, "refer": refer, "ge": ge, "wav": wav, "logits": logits, "loss": loss,
                "greedy": greedy, "stop_lengths": torch.tensor(stop_lengths), "hubert": hubert,
                "prompt_codes": prompt_codes}, out / "upstream.pt")
    facts.update({"upstream_commit": commit, "torch": torch.__version__, "seed": SEED,
                  "stop_token": STOP_TOKEN, "greedy_tokens": GREEDY_TOKENS})
    (out / "facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps(facts))


def _run_panel(gpt, x, prompt, bert, top_k: int, early_stop_num: int = -1) -> torch.Tensor:
    """Upstream's single-sentence decoding (`infer_panel_naive`): the new tokens, without EOS."""
    out = None
    for y, idx in gpt.infer_panel_naive(x, torch.LongTensor([x.shape[1]]), prompt, bert, top_k=top_k, top_p=1.0,
                                        early_stop_num=early_stop_num, temperature=1.0, repetition_penalty=1.35):
        out = y
    return out[:, prompt.shape[1]:]


def _craft_stop(gpt) -> None:
    """Make every step's logits the same: STOP_TOKEN at 5, EOS at 4, the rest at 0. The last
    layer's output LayerNorm is set to weight 0, bias b, so its output is b whatever the input,
    and the output layer maps b to those logits. A prompt of STOP_TOKEN then penalises it to
    5 / 1.35 < 4: EOS leads the penalised logits from the first step EOS is allowed."""
    layer = gpt.h.layers[-1]
    d = layer.norm2.weight.shape[0]
    b = torch.linspace(-1, 1, d)
    target = torch.zeros(gpt.ar_predict_layer.weight.shape[0])
    target[STOP_TOKEN], target[gpt.EOS] = 5.0, 4.0
    with torch.no_grad():
        layer.norm2.weight.zero_()
        layer.norm2.bias.copy_(b)
        gpt.ar_predict_layer.weight.copy_(torch.outer(target, b) / b.dot(b))


# -- v2Pro / v2ProPlus ---------------------------------------------------------------------------

PRO_SIZES = {  # reduced; the 20480-d sv_emb input and the 512-d MRTE are hard-coded upstream
    "v2Pro": {"gin_channels": 128, "upsample_initial_channel": 64, "upsample_kernel_sizes": [16, 16, 8, 2, 2]},
    "v2ProPlus": {"gin_channels": 128, "upsample_initial_channel": 96, "upsample_kernel_sizes": [20, 16, 8, 2, 2]},
}
ERES_SIZES = {"m_channels": 8, "num_blocks": [1, 1, 1, 1], "baseWidth": 24, "scale": 4, "expansion": 4,
              "embedding_size": 16}


def random_batchnorm_(module: torch.nn.Module, seed: int) -> None:
    """BatchNorm running statistics a trained network could have (positive variances), fp16-exact."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_((torch.rand(m.running_mean.shape, generator=g) - 0.5).half().float())
                m.running_var.copy_((0.5 + torch.rand(m.running_var.shape, generator=g)).half().float())


def pro_fixtures(src: Path, out: Path, commit: str) -> None:
    """ERes2NetV2 (reduced) on a real clip, as upstream's 2-get-sv.py computes it; then v2Pro and
    v2ProPlus SoVITS files written by upstream's `savee(..., model_version=)`, their `decode`
    with a timbre vector, and the training forward with its KL loss and generated slice."""
    import torchaudio

    import utils
    from clonebench.testing.toy_models import fill_posterior_
    sys.path.insert(0, str(src / "eres2net"))
    import kaldi
    import process_ckpt
    from ERes2NetV2 import ERes2NetV2
    from module import commons
    from module.losses import kl_loss
    from module.mel_processing import mel_spectrogram_torch, spectrogram_torch
    from module.models import SynthesizerTrn

    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(SEED + 1)
    clip32, _ = real_clip()
    wav32 = torch.from_numpy(clip32[: 174 * 640])[None]     # 174 spectrogram frames: even, as content frames are

    # -- the speaker-verification network, as 2-get-sv.py runs it -------------------------------
    sv = ERes2NetV2(**ERES_SIZES).eval()
    ternary_(sv, SEED + 2, skip=tuple(n for n, m in sv.named_modules()
                                      if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and n))
    random_batchnorm_(sv, SEED + 3)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in sv.state_dict().items()}
    torch.save(state, out / "eres2netv2.ckpt")    # upstream's file is a plain state dict too
    with open(out / "eres2netv2.ckpt", "rb") as f, gzip.open(out / "eres2netv2.ckpt.gz", "wb", compresslevel=9) as z:
        z.write(f.read())
    (out / "eres2netv2.ckpt").unlink()
    sv.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    with torch.no_grad():
        wav16 = torchaudio.transforms.Resample(32000, 16000)(wav32)
        feat = torch.stack([kaldi.fbank(w.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0)
                            for w in wav16])
        timbre = sv.forward3(feat)
        pooled = sv(feat - feat.mean(dim=1, keepdim=True))         # 3D-Speaker's own inference: mean-normalised
    torch.save({"clip32": wav32.half(), "fbank": feat, "timbre": timbre, "embedding": pooled}, out / "eres2netv2.pt")

    for version, sizes in PRO_SIZES.items():
        folder = out / version.lower()
        folder.mkdir(exist_ok=True)
        hps = s2_hparams(utils)
        for k, v in sizes.items():
            setattr(hps.model, k, v)
        hps.model.version, hps.model.p_dropout = version, 0.0
        hps.save_weight_dir = str(folder)
        torch.manual_seed(SEED)
        vq = SynthesizerTrn(hps.data.filter_length // 2 + 1, hps.train.segment_size // hps.data.hop_length,
                            n_speakers=hps.data.n_speakers, **hps.model).eval()
        ternary_(vq, SEED, skip=("enc_q.",))
        with torch.no_grad():   # a PReLU slope of zero or less would hide half its input
            vq.prelu.weight.copy_(torch.full_like(vq.prelu.weight, 0.25))
        codebook_ready_(vq)
        status = process_ckpt.savee(vq.state_dict(), "sovits", 1, 10, hps, model_version=version)
        if status != "Success.":
            sys.exit(status)
        with open(folder / "sovits.pth", "rb") as f, gzip.open(folder / "sovits.pth.gz", "wb", compresslevel=9) as z:
            z.write(f.read())
        (folder / "sovits.pth").unlink()
        fill_posterior_(vq, SEED)   # enc_q is not in the file: the test fills ours the same way
        ssl = torch.randn(1, HUBERT_DIM, 174, generator=g).half().float()
        phones = torch.randint(1, 732, (1, 40), generator=g)
        sv_in = torch.randn(1, 20480, generator=g).half().float()     # the SoVITS side takes any 20480-d vector
        with torch.no_grad():
            codes = vq.extract_latent(ssl)
            refer = spectrogram_torch(wav32, 2048, 32000, 640, 2048, center=False)
            wav = vq.decode(codes, phones, refer, noise_scale=0.0, sv_emb=sv_in)
            spec_len = torch.LongTensor([refer.shape[2]])
            torch.manual_seed(SEED)
            o, commit_loss, ids_slice, _, z_mask, (z, z_p, m_p, logs_p, m_q, logs_q), _ = vq(
                ssl, refer, spec_len, phones, torch.LongTensor([phones.shape[1]]), sv_emb=sv_in)
            kl = kl_loss(z_p, logs_q, m_p, logs_p, z_mask)
            real = commons.slice_segments(wav32[:, None], ids_slice * 640, hps.train.segment_size)
            mel = lambda x: mel_spectrogram_torch(x.squeeze(1), 2048, 128, 32000, 640, 2048, 0, None)  # noqa: E731
            mel_l1 = torch.nn.functional.l1_loss(mel(o), mel(real))
        torch.save({"ssl": ssl.half(), "phones": phones, "sv": sv_in.half()}, folder / "inputs.pt")
        torch.save({"codes": codes, "wav": wav, "o": o, "ids_slice": ids_slice, "kl": kl, "mel_l1": mel_l1,
                    "commit": commit_loss}, folder / "upstream.pt")
    facts = {"upstream_commit": commit, "torch": torch.__version__, "seed": SEED, "eres2netv2": ERES_SIZES,
             "sovits": PRO_SIZES}
    (out / "pro-facts.json").write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps(facts))


def check_ours(path: Path) -> None:
    """Load a clonebench-written SoVITS file the way upstream's TTS.init_vits_weights does."""
    import process_ckpt
    from module.models import SynthesizerTrn

    with open(path, "rb") as f:
        head = f.read(2)
    _, model_version, _ = process_ckpt.head2version[head] if head != b"PK" else ("v2", "v2", False)
    dict_s2 = process_ckpt.load_sovits_new(str(path))
    hps = dict_s2["config"]
    kwargs = dict(hps["model"])
    kwargs["version"] = model_version
    kwargs["semantic_frame_rate"] = "25hz"
    model = SynthesizerTrn(hps["data"]["filter_length"] // 2 + 1,
                           hps["train"]["segment_size"] // hps["data"]["hop_length"],
                           n_speakers=hps["data"]["n_speakers"], **kwargs)
    result = model.load_state_dict(dict_s2["weight"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("enc_q.")]
    if missing or result.unexpected_keys:
        sys.exit(f"{path}: upstream {model_version} SynthesizerTrn: missing {missing[:3]}, "
                 f"unexpected {result.unexpected_keys[:3]}")
    print(f"{path}: loads in upstream's {model_version} SynthesizerTrn: "
          f"{len(dict_s2['weight'])} tensors, none missing or unexpected (enc_q is left out, as upstream's files)")


if __name__ == "__main__":
    main()
