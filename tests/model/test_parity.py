"""clonebench against what upstream GPT-SoVITS v2's own code computed (tests/fixtures/parity,
made by scripts/make_parity_fixtures.py): the same files, loaded through our normal path, must
give the same codes, spectrogram, style, waveform, logits, training loss, tokens and stop step."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest
import torch
from conftest import ROOT

from clonebench.instruments.references import PromptChoice
from clonebench.model import checkpoint
from clonebench.model.decode import SamplingParams
from clonebench.model.discriminator import kl_loss
from clonebench.model.gpt import Text2Semantic
from clonebench.model.sovits import SoVITS
from clonebench.model.spec import ModelSpec
from clonebench.model.spectrogram import linear_spectrogram
from clonebench.model.synthesize import Synthesizer
from clonebench.testing.toy_models import fill_posterior_

FIX = ROOT / "tests" / "fixtures" / "parity"


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("parity")
    with gzip.open(FIX / "sovits.pth.gz") as src, open(tmp / "sovits.pth", "wb") as dst:
        shutil.copyfileobj(src, dst)
    synth = Synthesizer(ModelSpec(FIX / "gpt.ckpt", tmp / "sovits.pth", content=f"cnhubert:{FIX / 'hubert'}"))
    return {"synth": synth, "inp": torch.load(FIX / "inputs.pt", weights_only=True),
            "up": torch.load(FIX / "upstream.pt", weights_only=True)}


def test_sovits_codes_style_and_waveform(parity):
    synth, inp, up = parity["synth"], parity["inp"], parity["up"]
    codes = synth.sovits.extract_latent(inp["ssl"].float())
    assert torch.equal(codes, up["codes"])
    spec = linear_spectrogram(inp["clip32"].float())
    assert spec.shape == up["refer"].shape and rel_l2(spec, up["refer"]) < 1e-4
    ge = synth.sovits.style(spec)
    assert rel_l2(ge, up["ge"]) < 1e-4
    wav = synth.sovits.decode(codes, inp["phones"], ge, noise_scale=0.0)
    assert wav.shape == up["wav"].shape and rel_l2(wav, up["wav"]) < 1e-4


def test_the_reference_pipeline_feeds_what_upstream_feeds(parity):
    """The prompt's content features see the clip plus a 0.6 s pause, un-normalised, and the
    style comes from the clip at 32 kHz (not from the 16 kHz clip upsampled)."""
    synth, inp, up = parity["synth"], parity["inp"], parity["up"]
    x16 = inp["x16"].float().numpy()
    padded = np.concatenate([x16, np.zeros(9600, np.float32)])
    feats = synth.content.encode(padded)
    assert feats.shape == up["hubert"].shape[1:] and rel_l2(feats, up["hubert"][0]) < 1e-4
    ref = synth.reference(PromptChoice(x16, inp["clip32"].float()[0].numpy(), inp["clip_text"], "en", "fixture"))
    assert torch.equal(ref.tokens, up["prompt_codes"][0, 0])
    assert rel_l2(ref.ge, up["ge"]) < 1e-4


def test_gpt_logits_training_loss_and_greedy_tokens(parity):
    gpt, inp, up = parity["synth"].gpt, parity["inp"], parity["up"]
    x, bert, y = inp["gpt_x"], inp["gpt_bert"].float(), inp["gpt_y"]
    lens = (torch.tensor([x.shape[1]]), torch.tensor([y.shape[1]]))
    with torch.no_grad():
        logits, _, _ = gpt.teacher_forced(x, lens[0], bert, y, lens[1])
        loss, _ = gpt(x, lens[0], bert, y, lens[1])
    assert rel_l2(logits, up["logits"]) < 1e-4
    assert float(loss) == pytest.approx(float(up["loss"]), rel=1e-4)   # the first code is a target too
    tokens = gpt.generate([x[0]], [bert[0]], inp["prompt"][0], SamplingParams(top_k=1, repetition_penalty=1.35),
                          max_tokens=up["greedy"].shape[1])[0]
    assert torch.equal(tokens, up["greedy"][0])


def test_the_stop_rule_reads_the_penalised_logits():
    inp, up = torch.load(FIX / "inputs.pt", weights_only=True), torch.load(FIX / "upstream.pt", weights_only=True)
    config, state, _ = checkpoint.load_gpt(FIX / "gpt-stop.ckpt")
    gpt = Text2Semantic(config).eval()
    checkpoint.load_into(gpt, state, FIX / "gpt-stop.ckpt")
    x, bert = inp["gpt_x"][0], inp["gpt_bert"].float()[0]
    lengths = [len(gpt.generate([x], [bert], inp["stop_prompt"][0], SamplingParams(top_k=15), seed=seed)[0])
               for seed in range(20)]
    assert lengths == up["stop_lengths"].tolist()


# -- v2Pro / v2ProPlus (tests/fixtures/parity/v2pro*, eres2netv2.*) ----------------------------

def _gunzip(src, dst):
    with gzip.open(src) as a, open(dst, "wb") as b:
        shutil.copyfileobj(a, b)
    return dst


@pytest.fixture(scope="module")
def sv_model(tmp_path_factory):
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    return ERes2NetV2Encoder(_gunzip(FIX / "eres2netv2.ckpt.gz", tmp_path_factory.mktemp("sv") / "eres2netv2.ckpt"))


def test_eres2netv2_timbre_and_embedding_equal_upstreams(sv_model):
    """compute_embedding3 as 2-get-sv.py runs it on a real clip (32 kHz -> 16 kHz -> fbank ->
    forward3), and the pooled speaker embedding, from a reduced network upstream's class built."""
    from clonebench.instruments.eres2net import fbank

    up = torch.load(FIX / "eres2netv2.pt", weights_only=True)
    clip32 = up["clip32"].float()[0]
    import torchaudio.functional as AF

    feats = fbank(AF.resample(clip32[None], 32000, 16000))
    assert feats.shape == up["fbank"].shape and rel_l2(feats, up["fbank"]) < 1e-5
    timbre = sv_model.timbre(clip32.numpy())
    assert timbre.shape == up["timbre"].shape[1:] and sv_model.timbre_dim == timbre.shape[0]
    assert rel_l2(timbre, up["timbre"][0]) < 1e-4
    ours = sv_model._encode([AF.resample(clip32[None], 32000, 16000)[0].numpy()])[0]
    theirs = up["embedding"][0] / up["embedding"][0].norm()
    assert rel_l2(torch.from_numpy(ours), theirs) < 1e-4


@pytest.mark.parametrize("version", ["v2Pro", "v2ProPlus"])
def test_pro_sovits_reads_upstreams_file_and_decodes_and_trains_the_same(version, tmp_path):
    folder = FIX / version.lower()
    path = _gunzip(folder / "sovits.pth.gz", tmp_path / "sovits.pth")
    config, state, _ = checkpoint.load_sovits(path)
    assert config.version == version and config.is_pro and config.sv_dim == 20480
    assert checkpoint.read_version_tag(path) == version
    model = SoVITS(config).eval()
    checkpoint.load_into(model, state, path, ignore_prefixes=("enc_q.",))
    inp = torch.load(folder / "inputs.pt", weights_only=True)
    up = torch.load(folder / "upstream.pt", weights_only=True)
    ssl, phones, sv = inp["ssl"].float(), inp["phones"], inp["sv"].float()
    clip32 = torch.load(FIX / "eres2netv2.pt", weights_only=True)["clip32"].float()[:, : 174 * 640]
    spec = linear_spectrogram(clip32)
    with torch.no_grad():
        codes = model.extract_latent(ssl)
        assert torch.equal(codes, up["codes"])
        ge = model.style(spec, sv=sv)
        wav = model.decode(codes, phones, ge, noise_scale=0.0)
    assert wav.shape == up["wav"].shape and rel_l2(wav, up["wav"]) < 1e-4


@pytest.mark.parametrize("version", ["v2Pro", "v2ProPlus"])
def test_pro_training_forward_equals_upstreams(version, tmp_path):
    """The training pass with the same seed: the same slice, generated audio and KL loss. enc_q
    is not in inference files: it is drawn here as the fixture script drew it."""
    folder = FIX / version.lower()
    path = _gunzip(folder / "sovits.pth.gz", tmp_path / "sovits.pth")
    config, state, _ = checkpoint.load_sovits(path)
    model = SoVITS(config).eval()
    checkpoint.load_into(model, state, path, ignore_prefixes=("enc_q.",))
    fill_posterior_(model, 1234)
    inp = torch.load(folder / "inputs.pt", weights_only=True)
    up = torch.load(folder / "upstream.pt", weights_only=True)
    clip32 = torch.load(FIX / "eres2netv2.pt", weights_only=True)["clip32"].float()[:, : 174 * 640]
    spec = linear_spectrogram(clip32)
    torch.manual_seed(1234)
    with torch.no_grad():
        audio, starts, commit, y_mask, (z_p, m_p, logs_p, logs_q) = model(
            inp["ssl"].float(), spec, torch.tensor([spec.shape[2]]), inp["phones"], torch.tensor([inp["phones"].shape[1]]),
            inp["sv"].float())
    assert torch.equal(starts, up["ids_slice"])
    assert audio.shape == up["o"].shape and rel_l2(audio, up["o"]) < 1e-4
    assert float(kl_loss(z_p, logs_q, m_p, logs_p, y_mask)) == pytest.approx(float(up["kl"]), rel=1e-4)
