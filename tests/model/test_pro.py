"""GPT-SoVITS v2ProPlus end to end on the CPU, from files upstream's own save code wrote
(tests/fixtures/parity: its v2ProPlus SoVITS and its s1 GPT, at reduced sizes): vet with
`--sv-model` (the timbre library), fine-tune, synthesize from both timbre sources, evaluate them
paired, serve; the presets at upstream's sizes; and the files refused with one line."""

from __future__ import annotations

import gzip
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import ROOT, allison_takes, run_cli, start_server, write

from clonebench.core.errors import ModelError
from clonebench.model import checkpoint
from clonebench.model.config import preset
from clonebench.model.sovits import SoVITS
from clonebench.store import TIMBRE_PREFIX, Store
from clonebench.testing import toy_models

FIX = ROOT / "tests" / "fixtures" / "parity"
KEY = "pro-test-key"
CONTENT = f"cnhubert:{FIX / 'hubert'}"   # the fixture's HuBERT, the features upstream's file was made for


def _gunzip(src: Path, dst: Path) -> Path:
    with gzip.open(src) as a, open(dst, "wb") as b:
        shutil.copyfileobj(a, b)
    return dst


@pytest.fixture(scope="module")
def pro(tmp_path_factory) -> dict:
    """Allison's prompts (~40 s, with transcripts) vetted with an ERes2NetV2 whose timbre vector
    is 20480-d, as the v2ProPlus file takes; then a one-epoch fine-tune from upstream's files."""
    root = tmp_path_factory.mktemp("pro")
    db = root / "store.duckdb"
    sv = toy_models.eres2netv2_file(root / "sv.ckpt", wide=True)
    allison_takes(root / "allison", root / "allison.tsv", 42, prompts=24)
    code, _, err = run_cli("vet", str(root / "allison"), "--speaker", "allison", "--transcripts", str(root / "allison.tsv"),
                           "--db", str(db), "--max-clip", "10", "--no-report", "--json", "--sv-model", str(sv))
    assert code == 0, err
    init_sovits = _gunzip(FIX / "v2proplus" / "sovits.pth.gz", root / "s2Gv2ProPlus.pth")
    out = root / "runs" / "pro-ft"
    code, doc, err = run_cli("train", "--speakers", "allison", "--preset", "tiny", "--out", str(out), "--db", str(db),
                             "--init-sovits", str(init_sovits), "--init-gpt", str(FIX / "gpt.ckpt"),
                             "--content", CONTENT, "--sv-model", str(sv),
                             "--s2-epochs", "1", "--s1-epochs", "1", "--no-report", "--json")
    assert code == 0, err
    return {"root": root, "db": db, "sv": sv, "init": init_sovits, "run": doc}


def test_vetting_with_an_sv_model_fills_the_timbre_library(pro):
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    with Store(pro["db"], read_only=True) as store:
        entry = store.newest_speaker_embedding("allison", TIMBRE_PREFIX)
        accepted = [v.clip for v in store.clip_views("allison") if v.status == "accepted"]
        assert store.newest_encoder("allison").startswith("resemblyzer")   # the screens' encoder, not the timbre
    assert entry is not None and entry[1].shape == (20480,)
    sv = ERes2NetV2Encoder(pro["sv"])
    assert entry[0] == TIMBRE_PREFIX + sv.name
    # the library entry is the mean of the clips' vectors, each cached where training finds it
    cached = {p.stem: torch.load(p, weights_only=True) for p in (pro["root"] / "features").glob("timbre-*/*.pt")}
    assert set(cached) == {c.clip_id for c in accepted}
    np.testing.assert_allclose(entry[1], torch.stack(list(cached.values())).mean(0).numpy(), rtol=1e-5, atol=1e-6)
    for c in accepted[:2]:   # and each is the clip's own vector
        torch.testing.assert_close(cached[c.clip_id], sv.timbre(sf.read(c.path_32k, dtype="float32")[0]))


def test_fine_tuning_from_upstreams_files_writes_a_tagged_v2proplus_file(pro):
    doc = pro["run"]
    path = Path(doc["sovits"])
    assert checkpoint.read_version_tag(path) == "v2ProPlus"          # upstream's loaders read the tag
    config, state, raw = checkpoint.load_sovits(path)
    assert config.version == "v2ProPlus" and raw["model"]["version"] == "v2ProPlus"
    _, init, _ = checkpoint.load_sovits(pro["init"])
    assert set(state) == set(init)                                    # upstream's keys, no more, no fewer
    for k in init:                                                    # the quantizer stays frozen
        if k.startswith(("quantizer.", "ssl_proj.")):
            assert torch.equal(state[k], init[k]), k
    assert not torch.equal(state["dec.conv_pre.weight"], init["dec.conv_pre.weight"])
    assert not torch.equal(state["sv_emb.weight"], init["sv_emb.weight"])   # the timbre path trains too
    # each clip's own timbre vector, cached with the other features (upstream's 2-get-sv.py)
    cached = sorted((pro["root"] / "features").glob("timbre-*/*.pt"))
    assert len(cached) >= doc["train_clips"] + doc["val_clips"]   # vetting made them (accepted clips); training reused them
    assert torch.load(cached[0], weights_only=True).shape == (20480,)


def _synth(pro, out: Path, *extra: str):
    doc = pro["run"]
    return run_cli("synth", "--gpt", doc["gpt"], "--sovits", doc["sovits"], "--speaker", "allison", "--db", str(pro["db"]),
                   "--text", "The weather is fine today.", "--lang", "en", "--out", str(out), "--content", CONTENT,
                   "--json", *extra)


def test_both_timbre_sources_synthesize_and_differ(pro, tmp_path):
    code, ref, err = _synth(pro, tmp_path / "ref.wav", "--sv-model", str(pro["sv"]))
    assert code == 0, err
    code, spk, err = _synth(pro, tmp_path / "spk.wav", "--timbre", "speaker")   # the library needs no sv model
    assert code == 0, err
    assert ref["model_version"] == spk["model_version"] == "v2ProPlus"
    a, sr = sf.read(tmp_path / "ref.wav", dtype="float32")
    b, _ = sf.read(tmp_path / "spk.wav", dtype="float32")
    assert sr == 32000 and len(a) > 0.3 * sr and np.isfinite(a).all()
    assert len(a) != len(b) or not np.allclose(a, b)


def test_a_pro_model_without_its_sv_model_is_one_line(pro, tmp_path):
    env = os.environ.pop("CLONEBENCH_SV_MODEL", None)
    try:
        code, _, err = _synth(pro, tmp_path / "x.wav")
    finally:
        if env is not None:
            os.environ["CLONEBENCH_SV_MODEL"] = env
    assert code == 2 and "--sv-model" in err and "pretrained_eres2netv2w24s4ep4.ckpt" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "x.wav").exists()


def test_evaluation_compares_the_two_timbre_sources_paired(pro, tmp_path):
    doc = pro["run"]
    items = tmp_path / "items.tsv"
    items.write_text("s1\ten\tThe weather is fine today.\ns2\ten\tPlease call me back tomorrow.\n")
    code, res, err = run_cli("evaluate", "--gpt", doc["gpt"], "--sovits", doc["sovits"], "--timbre", "speaker",
                             "--baseline-gpt", doc["gpt"], "--baseline-sovits", doc["sovits"],
                             "--baseline-timbre", "reference", "--sv-model", str(pro["sv"]), "--eval-set", str(items),
                             "--content", CONTENT,
                             "--speakers", "allison", "--db", str(pro["db"]), "--no-report", "--json")
    assert code == 0, err
    assert res["baseline"] and res["run_id"] != res["baseline"]
    assert len(res["items"]) == 2 and "sim" in res["comparison"]["overall"]
    folders = sorted(p.name for p in (pro["db"].parent / "eval_audio").iterdir())
    assert any(f.endswith("-speaker") for f in folders) and any("-reference-sv" in f for f in folders)


def test_the_server_says_the_version_and_speaks(pro):
    import httpx

    doc = pro["run"]
    (pro["root"] / "keys.txt").write_text(KEY + "\n")
    proc, base = start_server("--gpt", doc["gpt"], "--sovits", doc["sovits"], "--db", str(pro["db"]),
                              "--sv-model", str(pro["sv"]), "--api-keys", str(pro["root"] / "keys.txt"), "--content", CONTENT)
    try:
        health = httpx.get(f"{base}/healthz").json()
        assert health["model_version"] == "v2ProPlus" and health["timbre"] == "reference"
        headers = {"Authorization": f"Bearer {KEY}"}
        speakers = httpx.get(f"{base}/v1/speakers", headers=headers).json()
        assert [s["model_version"] for s in speakers] == ["v2ProPlus"]
        r = httpx.post(f"{base}/v1/audio/speech", headers=headers, timeout=300,
                       json={"model": "tts-1", "input": "Good morning.", "voice": "allison", "response_format": "wav"})
        assert r.status_code == 200, r.text
        audio, sr = sf.read(io.BytesIO(r.content), dtype="float32")
        assert sr == 24000 and len(audio) > 0.2 * sr                          # OpenAI's rate
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# -- the presets at upstream's sizes, and the files refused ------------------------------------

@pytest.mark.parametrize("name,version,up,kernel", [("v2pro", "v2Pro", 512, 16), ("v2proplus", "v2ProPlus", 768, 20)])
def test_presets_have_upstreams_released_shapes(name, version, up, kernel):
    """s2v2Pro.json / s2v2ProPlus.json: gin 1024, the 20480-d sv_emb, MRTE at 512, the vocoder."""
    s_config, _ = preset(name)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in SoVITS(s_config).state_dict().items()}
    assert s_config.version == version
    assert shapes["sv_emb.weight"] == (1024, 20480) and shapes["prelu.weight"] == (1024,)
    assert shapes["ge_to512.weight"] == (512, 1024) and shapes["enc_p.mrte.c_pre.weight"] == (512, 192, 1)
    assert shapes["ref_enc.fc.fc.weight"] == (1024, 128) and shapes["dec.cond.weight"] == (up, 1024, 1)
    assert shapes["dec.ups.0.weight_v"] == (up, up // 2, kernel)


def _retagged(src: Path, dst: Path, tag: bytes, drop: tuple[str, ...] = ()) -> Path:
    """A copy of a SoVITS file with another version tag, optionally without some weights."""
    _gunzip(src, dst)
    if drop:
        obj = checkpoint.safe_load(dst)
        obj["weight"] = {k: v for k, v in obj["weight"].items() if not k.startswith(drop)}
        torch.save(obj, dst)
    data = bytearray(dst.read_bytes())
    data[:2] = tag
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("case,says", [
    ("no_sv_emb", "a v2Pro file without sv_emb.weight"),
    ("proplus_with_pro_shapes", "tagged v2ProPlus but its vocoder has v2Pro's shapes"),
    ("v3", "GPT-SoVITS v3 SoVITS file: v2, v2Pro and v2ProPlus are supported"),
    ("v2_tagged_pro", "or a v2 file with a Pro tag"),
])
def test_bad_sovits_files_are_one_line_errors(case, says, tmp_path):
    pro_file = FIX / "v2pro" / "sovits.pth.gz"
    if case == "no_sv_emb":
        path = _retagged(pro_file, tmp_path / "s.pth", b"05", drop=("sv_emb.",))
    elif case == "proplus_with_pro_shapes":
        path = _retagged(pro_file, tmp_path / "s.pth", b"06")
    elif case == "v3":
        path = _retagged(pro_file, tmp_path / "s.pth", b"02")
    else:
        path = _retagged(FIX / "sovits.pth.gz", tmp_path / "s.pth", b"05")
    with pytest.raises(checkpoint.CheckpointError) as e:
        checkpoint.load_sovits(path)
    assert says in str(e.value) and "\n" not in str(e.value)
    ref = write(tmp_path / "ref.wav", 0.1 * np.sin(np.arange(64000) / 10).astype(np.float32))
    code, _, err = run_cli("synth", "--gpt", str(FIX / "gpt.ckpt"), "--sovits", str(path), "--text", "Hi.",
                           "--ref-audio", str(ref), "--prompt-text", "x", "--out", str(tmp_path / "o.wav"))
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/clonebench-pwned",))


@pytest.mark.parametrize("case,says", [
    ("missing", "no such file"),
    ("not_eres2net", "not an ERes2NetV2 state dict"),
    ("pickle", "refused"),
    ("wrong_width", "weights do not fit ERes2NetV2"),
])
def test_bad_sv_model_files_are_one_line_errors(case, says, tmp_path):
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    path = tmp_path / "sv.ckpt"
    if case == "not_eres2net":
        torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    elif case == "pickle":
        torch.save({"conv1.weight": _Boom()}, path)
    elif case == "wrong_width":
        toy_models.eres2netv2_file(path, wide=False)
        state = torch.load(path, weights_only=True)
        state["seg_1.weight"] = torch.zeros(8, 3)
        torch.save(state, path)
    with pytest.raises(ModelError) as e:
        ERes2NetV2Encoder(path)
    assert says in str(e.value) and "\n" not in str(e.value)
    assert not Path("/tmp/clonebench-pwned").exists()
