"""Bring-your-own models: openai-whisper `.pt`, speechbrain ECAPA, pyannote segmentation, UTMOS.

Each model is built here with its library's own classes, randomly initialised and saved in its
real on-disk layout (`testing.toy_models`), then loaded through the same code a user's folder goes
through. Outputs of random weights are meaningless, so the tests check shapes, determinism,
store rows and errors, never the text or the scores.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from conftest import SR, one, run_cli, write

from clonebench.core.errors import ModelError
from clonebench.curate.rules import RuleSet, SpeakerContext, judge_clip
from clonebench.instruments.local import Spec, content_sha256
from clonebench.store import Store
from clonebench.testing import toy_models as toy

pytest.importorskip("speechbrain")
pytest.importorskip("pyannote.audio")


@pytest.fixture(scope="module")
def toys(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("toys")
    return {
        "whisper": toy.whisper_pt(root / "whisper" / "tiny-random.pt"),
        "ecapa": toy.ecapa_folder(root / "spkrec-ecapa-random"),
        "pyannote": toy.pyannote_checkpoint(root / "segmentation-random"),
        "utmos": toy.utmos_folder(root / "utmos-random"),
    }


def flags(toys, *which: str) -> list[str]:
    given = {"asr": ["--asr", f"openai-whisper:{toys['whisper']}"],
             "ecapa": ["--speaker-encoder", f"ecapa:{toys['ecapa']}"],
             "overlap": ["--overlap", f"pyannote:{toys['pyannote']}"],
             "utmos": ["--utmos", str(toys["utmos"])]}
    return [a for w in which for a in given[w]]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("a model loader tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_models_lists_every_backend_with_hash_and_load(toys):
    code, rows, err = run_cli("models", "--json", *flags(toys, "asr", "ecapa", "overlap", "utmos"))
    assert code == 0, err
    local = {r["name"]: r for r in rows if r.get("configured")}
    assert set(local) == {"asr", "speaker-encoder", "overlap", "utmos"}
    assert all(r["status"] == "ok (loads)" for r in local.values()), local
    from clonebench.instruments.registry import sha256_file
    assert local["asr"]["sha256"] == sha256_file(toys["whisper"])
    assert local["overlap"]["sha256"] == sha256_file(toys["pyannote"] / "pytorch_model.bin")
    ecapa = toys["ecapa"]
    assert local["speaker-encoder"]["sha256"] == content_sha256(
        [ecapa / "hyperparams.yaml", ecapa / "classifier.ckpt", ecapa / "embedding_model.ckpt", ecapa / "label_encoder.txt"])
    assert local["speaker-encoder"]["model"].startswith("ecapa:spkrec-ecapa-random@")
    # the embedded models are still listed and verified
    assert {r["name"] for r in rows if "configured" not in r} >= {"whisper-tiny.en", "resemblyzer", "dnsmos-p835"}


def _copy(src: Path, dst: Path) -> Path:
    import shutil
    shutil.copytree(src, dst)
    return dst


def _evil_pickle(path: Path, marker: Path) -> None:
    import torch

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"weights": Evil()}, path)


def test_broken_models_get_one_line_and_run_nothing(toys, tmp_path):
    marker = tmp_path / "pwned"
    no_ckpt = _copy(toys["ecapa"], tmp_path / "no-ckpt")
    (no_ckpt / "embedding_model.ckpt").unlink()
    corrupt = _copy(toys["ecapa"], tmp_path / "corrupt")
    (corrupt / "embedding_model.ckpt").write_bytes(b"\x80\x02not a checkpoint")
    evil_ckpt = _copy(toys["ecapa"], tmp_path / "evil-ckpt")
    _evil_pickle(evil_ckpt / "embedding_model.ckpt", marker)
    evil_yaml = _copy(toys["ecapa"], tmp_path / "evil-yaml")
    with open(evil_yaml / "hyperparams.yaml", "a") as f:
        f.write(f"boom: !apply:os.system\n    - touch {marker}\n")
    evil_pyannote = tmp_path / "evil-pyannote"
    evil_pyannote.mkdir()
    _evil_pickle(evil_pyannote / "pytorch_model.bin", marker)
    evil_whisper = tmp_path / "evil.pt"
    _evil_pickle(evil_whisper, marker)
    not_whisper = tmp_path / "weights.pt"
    import torch
    torch.save({"something": torch.zeros(2)}, not_whisper)
    bad_utmos = _copy(toys["utmos"], tmp_path / "bad-utmos")
    (bad_utmos / "utmos.json").write_text("{not json")

    cases = [
        (["--speaker-encoder", f"ecapa:{tmp_path / 'missing'}"], "no such speechbrain ECAPA folder"),
        (["--speaker-encoder", f"ecapa:{no_ckpt}"], "missing embedding_model.ckpt"),
        (["--speaker-encoder", f"ecapa:{corrupt}"], "refused"),
        (["--speaker-encoder", f"ecapa:{evil_ckpt}"], "posix.system"),
        (["--speaker-encoder", f"ecapa:{evil_yaml}"], "os.system"),
        (["--overlap", f"pyannote:{evil_pyannote}"], "posix.system"),
        (["--overlap", f"pyannote:{tmp_path}"], "no pytorch_model.bin"),
        (["--asr", f"openai-whisper:{evil_whisper}"], "posix.system"),
        (["--asr", f"openai-whisper:{not_whisper}"], "not a whisper checkpoint"),
        (["--asr", "openai-whisper:large-v3"], "no such file"),
        (["--asr", "whisperx:/x"], "write one of"),
        (["--utmos", str(bad_utmos)], "not valid JSON"),
        (["--utmos", str(toys["ecapa"])], "missing utmos.json"),
    ]
    for args, expected in cases:
        code, rows, err = run_cli("models", "--json", *args)
        assert code == 1, (args, err)
        bad = [r for r in rows if r.get("configured")]
        assert len(bad) == 1 and expected in bad[0]["status"], (args, bad)
        assert "\n" not in bad[0]["status"] and "Traceback" not in err, (args, err)
    assert not marker.exists()
    # the same through a command that uses the model: exit 2, one line, nothing stored
    db = tmp_path / "store.duckdb"
    code, _, err = run_cli("vet", str(tmp_path), "--speaker", "x", "--db", str(db),
                           "--speaker-encoder", f"ecapa:{evil_ckpt}", check_json=False)
    assert code == 2 and err.strip().count("\n") == 0 and "posix.system" in err, err
    assert not marker.exists() and not db.exists()


def test_ecapa_embeds_real_speech_192d_deterministic(toys, en_utterances, no_network):
    from clonebench.instruments.ecapa import EcapaEncoder

    enc = EcapaEncoder(Spec("--speaker-encoder", "ecapa", toys["ecapa"]))
    a, b = en_utterances[0], en_utterances[1]
    ea, ea2, eb = enc.embedding(a), enc.embedding(a), enc.embedding(b)
    assert ea.shape == (192,) and np.isclose(np.linalg.norm(ea), 1.0, atol=1e-5)
    assert np.array_equal(ea, ea2)
    assert not np.allclose(ea, eb)
    whole, partials = enc.embed(a)
    assert np.array_equal(whole, ea)
    assert partials.shape == (int((len(a) / SR - 1.6) / 0.4) + 1, 192)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["PYANNOTE_METRICS_ENABLED"] == "false"


def test_wavlm_xvectors_from_a_transformers_folder(tmp_path, en_utterances, no_network):
    from clonebench.instruments import speaker_encoder

    folder = toy.wavlm_folder(tmp_path / "wavlm-sv-random")
    enc = speaker_encoder(f"wavlm:{folder}")
    a, b = en_utterances[0], en_utterances[1]
    ea = enc.embedding(a)
    assert ea.shape == (512,) and np.isclose(np.linalg.norm(ea), 1.0, atol=1e-5)
    assert np.array_equal(ea, enc.embedding(a)) and not np.allclose(ea, enc.embedding(b))
    assert enc.embed(a)[1].shape[1] == 512 and enc.name.startswith("wavlm:wavlm-sv-random@")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="missing model.safetensors"):
        speaker_encoder(f"wavlm:{folder}")


def test_overlap_and_whisper_outputs_are_shaped(toys, en_utterances, no_network):
    from clonebench.instruments.openai_whisper import OpenAIWhisper
    from clonebench.instruments.overlap import PyannoteOverlap

    det = PyannoteOverlap(Spec("--overlap", "pyannote", toys["pyannote"]))
    x = en_utterances[2]
    ev = det.evidence(x)
    assert ev.probs.shape == (int(np.ceil(len(x) / SR / ev.hop_s)),)
    assert 0.0 <= ev.probs.min() and ev.probs.max() <= 1.0 and 0.01 < ev.hop_s < 0.05
    assert np.array_equal(det.evidence(x).probs, ev.probs)
    asr = OpenAIWhisper(Spec("--asr", "openai-whisper", toys["whisper"]))
    out = asr.transcribe_each([x[: 3 * SR]], "en")[0]
    assert out.language == "en" and all(0.0 <= w.start_s <= w.end_s <= 3.0 for w in out.words)
    assert asr.producer("en") == asr.producer("fr") and asr.producer("en").startswith("openai-whisper:tiny-random.pt@")


def test_rules_per_encoder_and_overlap_evidence():
    rules = RuleSet.load()
    ecapa = rules.for_encoder("ecapa:spkrec@abc")
    assert ecapa.version.endswith("+ecapa") and ecapa.clip.min_centroid_cos < rules.clip.min_centroid_cos
    assert rules.for_encoder("resemblyzer==0.1.4") is rules
    assert rules.for_encoder("wavlm:sv@abc").clip.min_centroid_cos == rules.speaker["wavlm"].min_centroid_cos
    with pytest.raises(Exception, match=r"\[speaker.titanet\]"):
        rules.for_encoder("titanet:/x")
    ctx = SpeakerContext("en", None, None)
    assert judge_clip({"overlap_s": 1.2}, None, None, ctx, rules).reasons == ("multiple_speakers",)
    assert judge_clip({"overlap_s": 0.2}, None, None, ctx, rules).reasons == ()


def test_vet_and_evaluate_with_local_models(toys, en_utterances, tmp_path):
    audio = tmp_path / "audio"
    for k in range(4):
        write(audio / f"line_{k}.wav", en_utterances[k])
    db = tmp_path / "store" / "clonebench.duckdb"
    args = ("vet", str(audio), "--speaker", "bob", "--db", str(db), "--json", "--no-report",
            *flags(toys, "asr", "ecapa", "overlap"))
    code, doc, err = run_cli(*args)
    assert code == 0, err
    n = len(doc["clips"])  # the slicer may cut a file in two
    assert doc["rule_set"].endswith("+ecapa") and n >= 4

    def counts(store):
        return {t: one(store, f"SELECT count(*) FROM {t}") for t in
                ("clip_embeddings", "clip_frames", "transcripts", "words", "verdicts", "clip_stages")}

    with Store(db) as store:
        enc = one(store, "SELECT DISTINCT encoder FROM clip_embeddings WHERE encoder NOT LIKE '%/partials'")
        assert enc.startswith("ecapa:spkrec-ecapa-random@")
        dims = store.query("SELECT len(vector) AS n FROM clip_embeddings WHERE encoder = ?", [enc])
        assert [r["n"] for r in dims] == [192] * n
        partials = store.query("SELECT len(vector) AS n FROM clip_embeddings WHERE encoder = ?", [enc + "/partials"])
        assert len(partials) == n and all(r["n"] % 192 == 0 and r["n"] >= 192 for r in partials)
        frames = store.query("SELECT f.*, c.duration_s FROM clip_frames f JOIN clips c USING (clip_id)")
        assert len(frames) == n and all(f["name"] == "overlap_prob" and f["producer"].startswith("pyannote:") for f in frames)
        assert all(abs(len(f["values"]) * f["hop_s"] - f["duration_s"]) < 2 * f["hop_s"] for f in frames)
        assert one(store, "SELECT count(*) FROM metrics WHERE name = 'overlap_s'") == n
        producers = {r["producer"] for r in store.query("SELECT producer FROM transcripts")}
        assert len(producers) == 1 and producers.pop().startswith("openai-whisper:tiny-random.pt@")
        words = store.query("SELECT w.start_s, w.end_s, c.duration_s FROM words w JOIN clips c USING (clip_id)")
        assert all(0 <= w["start_s"] <= w["end_s"] <= w["duration_s"] + 1e-3 for w in words)  # ms precision
        assert one(store, "SELECT count(*) FROM metrics WHERE name = 'spk_consistency'") == n
        lib = store.query("SELECT * FROM speaker_embeddings WHERE encoder = ?", [enc])
        # a row per speaker; no vector when no clip was accepted (random toy models)
        assert len(lib) == 1 and all(len(r["vector"]) == 192 for r in lib if r["vector"] is not None)
        assert all((r["vector"] is None) == (r["n_clips"] == 0) for r in lib)
        before = counts(store)
    code, doc2, err = run_cli(*args)  # everything done: nothing added, same verdicts
    assert code == 0, err
    with Store(db) as store:
        assert counts(store) == before
    assert [c["status"] for c in doc2["clips"]] == [c["status"] for c in doc["clips"]]

    # evaluate: the same clips as "synthesized" audio, scored with the local encoder, ASR and UTMOS
    manifest = audio / "manifest.tsv"
    manifest.write_text("".join(f"line_{k}.wav\tbob\ten\tplease hold\n" for k in range(2)), encoding="utf-8")
    code, ev, err = run_cli("evaluate", "--audio-dir", str(audio), "--db", str(db), "--json", "--no-report",
                            "--reference", f"bob={audio / 'line_3.wav'}", "--n-boot", "200",
                            *flags(toys, "asr", "ecapa", "utmos"))
    assert code == 0, err
    with Store(db) as store:
        run = store.query("SELECT * FROM eval_runs WHERE run_id = ?", [ev["run_id"]])[0]
        assert run["encoder"] == enc
        assert run["asr_model"].startswith("openai-whisper:tiny-random.pt@")
        assert run["utmos_model"].startswith("utmos22-strong:utmos-random@")
        items = store.query("SELECT * FROM eval_items WHERE run_id = ?", [ev["run_id"]])
        assert len(items) == 2
        assert all(i["utmos"] is not None and np.isfinite(i["utmos"]) and -1 <= i["sim"] <= 1 for i in items)
    assert json.dumps(ev)  # the document is plain JSON


@pytest.fixture(scope="module")
def eres2netv2(tmp_path_factory) -> Path:
    """A reduced ERes2NetV2 state dict built by upstream's own class (the parity fixture: 8 channels,
    16-d embeddings): the layout upstream's release has, from upstream's code."""
    import gzip
    import shutil

    path = tmp_path_factory.mktemp("sv") / "eres2netv2-upstream.ckpt"
    with gzip.open(Path(__file__).parents[1] / "fixtures" / "parity" / "eres2netv2.ckpt.gz") as a, open(path, "wb") as b:
        shutil.copyfileobj(a, b)
    return path


def _sv_dim(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["seg_1.weight"].shape[0])


def test_eres2netv2_embeds_from_a_plain_state_dict(eres2netv2, en_utterances, no_network):
    from clonebench.instruments import speaker_encoder
    from clonebench.instruments.registry import sha256_file

    enc, dim = speaker_encoder(f"eres2netv2:{eres2netv2}"), _sv_dim(eres2netv2)
    a, b = en_utterances[0], en_utterances[1]
    ea = enc.embedding(a)
    assert ea.shape == (dim,) and np.isclose(np.linalg.norm(ea), 1.0, atol=1e-5)
    assert np.array_equal(ea, enc.embedding(a)) and not np.allclose(ea, enc.embedding(b))
    whole, partials = enc.embed(a)
    assert np.allclose(whole, ea, atol=1e-6)
    assert partials.shape == (int((len(a) / SR - 1.6) / 0.4) + 1, dim)
    assert enc.sha256 == sha256_file(eres2netv2) and enc.name == f"eres2netv2:eres2netv2-upstream@{enc.sha256[:12]}"
    assert enc.source == str(eres2netv2)
    from clonebench.instruments import backend_report

    row = next(r for r in backend_report({"--speaker-encoder": f"eres2netv2:{eres2netv2}"}) if r["configured"])
    assert row["status"] == "ok (loads)" and row["model"] == enc.name and row["sha256"] == enc.sha256
    rules = RuleSet.load().for_encoder(enc.name)
    assert rules.version.endswith("+eres2netv2")
    assert rules.clip.min_centroid_cos == RuleSet.load().speaker["eres2netv2"].min_centroid_cos
    with pytest.raises(ModelError, match="write one of"):
        speaker_encoder("eres2netv2:")  # a FILE is required


def test_vet_and_evaluate_with_eres2netv2(eres2netv2, en_utterances, tmp_path, monkeypatch):
    audio = tmp_path / "audio"
    for k in range(3):
        write(audio / f"line_{k}.wav", en_utterances[k])
    db = tmp_path / "store" / "clonebench.duckdb"
    # the environment variable names the encoder, as --speaker-encoder would. The embedded ASR, not
    # the random-weight whisper: that one decodes to its token limit and takes minutes here
    monkeypatch.setenv("CLONEBENCH_SPEAKER_ENCODER", f"eres2netv2:{eres2netv2}")
    code, doc, err = run_cli("vet", str(audio), "--speaker", "bob", "--db", str(db), "--json", "--no-report")
    assert code == 0, err
    n = len(doc["clips"])
    assert doc["rule_set"].endswith("+eres2netv2") and n >= 3
    with Store(db) as store:
        enc = one(store, "SELECT DISTINCT encoder FROM clip_embeddings WHERE encoder NOT LIKE '%/partials'")
        assert enc.startswith("eres2netv2:eres2netv2-upstream@")
        dim = _sv_dim(eres2netv2)
        dims = store.query("SELECT len(vector) AS n FROM clip_embeddings WHERE encoder = ?", [enc])
        assert [r["n"] for r in dims] == [dim] * n
        partials = store.query("SELECT len(vector) AS n FROM clip_embeddings WHERE encoder = ?", [enc + "/partials"])
        assert len(partials) == n and all(r["n"] % dim == 0 and r["n"] >= dim for r in partials)
        versions = {r["rule_set"] for r in store.query("SELECT DISTINCT rule_set FROM verdicts")}
        assert versions == {doc["rule_set"]}
        assert one(store, "SELECT count(*) FROM metrics WHERE name = 'spk_consistency'") == n

    monkeypatch.delenv("CLONEBENCH_SPEAKER_ENCODER")
    manifest = audio / "manifest.tsv"
    manifest.write_text("line_0.wav\tbob\ten\tplease hold\n", encoding="utf-8")
    code, ev, err = run_cli("evaluate", "--audio-dir", str(audio), "--db", str(db), "--json", "--no-report",
                            "--reference", f"bob={audio / 'line_2.wav'}", "--n-boot", "200",
                            "--speaker-encoder", f"eres2netv2:{eres2netv2}")
    assert code == 0, err
    with Store(db) as store:
        run = store.query("SELECT * FROM eval_runs WHERE run_id = ?", [ev["run_id"]])[0]
        assert run["encoder"] == enc
        items = store.query("SELECT * FROM eval_items WHERE run_id = ?", [ev["run_id"]])
        assert len(items) == 1 and -1 <= items[0]["sim"] <= 1


def test_broken_eres2netv2_files_get_one_line_and_run_nothing(tmp_path):
    import torch

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    _evil_pickle(evil, marker)
    other = tmp_path / "other.ckpt"
    torch.save({"foo": torch.zeros(3)}, other)
    cases = [
        (tmp_path / "missing.ckpt", ("--speaker-encoder eres2netv2", "no such file")),
        (other, ("--speaker-encoder eres2netv2", "not an ERes2NetV2 state dict")),
        (evil, ("--speaker-encoder eres2netv2", "refused", "posix.system")),
    ]
    write(tmp_path / "audio" / "a.wav", np.zeros(SR, np.float32))
    for path, expected in cases:
        db = tmp_path / f"{path.stem}.duckdb"
        code, _, err = run_cli("vet", str(tmp_path / "audio"), "--speaker", "x", "--db", str(db),
                               "--speaker-encoder", f"eres2netv2:{path}", check_json=False)
        assert code == 2 and err.strip().count("\n") == 0 and all(e in err for e in expected), (path, err)
        assert err.startswith("error: ") and "Traceback" not in err, err
        assert not db.exists(), path
    assert not marker.exists()
