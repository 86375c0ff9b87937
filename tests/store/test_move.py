"""A store's folder moves whole: it records the files inside it relative to itself, so from the new
place its clips are found again and export, training, synthesis and the voice service all work."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import soundfile as sf
from conftest import allison_takes, run_cli, start_server

from clonebench.core.gsvlist import read_list
from clonebench.store import Store


@pytest.fixture(scope="module")
def moved(tmp_path_factory) -> dict:
    """One speaker (~40 s of Allison's prompts, with transcripts) vetted into `old/`, then the whole
    folder moved to `new/`."""
    root = tmp_path_factory.mktemp("move")
    allison_takes(root / "audio", root / "t.tsv", 40)
    old = root / "old" / "clonebench.duckdb"
    code, _, err = run_cli("vet", str(root / "audio"), "--speaker", "allison", "--transcripts", str(root / "t.tsv"),
                           "--db", str(old), "--max-clip", "10", "--no-report", "--json")
    assert code == 0, err
    with Store(old, read_only=True) as store:
        before = [(c.clip_id, c.path_32k, c.path_16k) for c in store.clips("allison")]
    shutil.move(str(root / "old"), str(root / "new"))
    assert not (root / "old").exists()
    return {"root": root, "db": root / "new" / "clonebench.duckdb", "before": before}


@pytest.fixture(scope="module")
def trained(moved) -> dict:
    """A tiny model trained for one epoch from the new place, into a run folder inside it."""
    out = moved["db"].parent / "runs" / "tiny-move"
    code, run, err = run_cli("train", "--speakers", "allison", "--preset", "tiny", "--s2-epochs", "1", "--s1-epochs", "1",
                             "--out", str(out), "--db", str(moved["db"]), "--no-report", "--json")
    assert code == 0, err
    return run


def test_the_clips_are_found_again_at_the_new_place(moved):
    db, folder = moved["db"], moved["db"].parent.resolve()
    with Store(db, read_only=True) as store:
        raw = store.query("SELECT path_32k, path_16k FROM clips")
        clips = store.clips("allison")
        source = store.clip_views("allison")[0].source
    assert raw and all(r["path_32k"].startswith("clips/allison/") and r["path_16k"].startswith("clips/allison/")
                       for r in raw)
    # reads give absolute paths under the new folder, naming files that are there
    assert [c.clip_id for c in clips] == [c for c, _, _ in moved["before"]]
    for c, (_, p32, p16) in zip(clips, moved["before"]):
        assert Path(p32).parent.parent.parent.name == "old"
        assert c.path_32k == str(folder / "clips" / "allison" / Path(p32).name) and Path(c.path_32k).is_file()
        assert c.path_16k == str(folder / "clips" / "allison" / Path(p16).name) and Path(c.path_16k).is_file()
    # the recordings were outside the folder: they stay absolute
    assert source == str(moved["root"].resolve() / "audio" / Path(source).name)


def test_export_works_from_the_new_place(moved, tmp_path):
    code, doc, err = run_cli("export", "--format", "gpt-sovits", "--out", str(tmp_path / "exp"), "--db", str(moved["db"]),
                             "--json")
    assert code == 0, err
    entries = read_list(Path(doc["list"]))
    assert len(entries) == doc["clips"] > 0 and all(sf.info(e.path).samplerate == 32000 for e in entries)


def test_training_and_synthesis_work_from_the_new_place(moved, trained, tmp_path):
    db, folder = moved["db"], moved["db"].parent.resolve()
    with Store(db, read_only=True) as store:
        raw = [r["path"] for r in store.query("SELECT path FROM checkpoints")]
        checkpoints = store.checkpoints("tiny-move")
        run = store.train_run("tiny-move")
    # the run folder is inside the store's folder: recorded relative, read back absolute
    assert sorted(raw) == sorted(f"runs/tiny-move/{Path(trained[k]).name}" for k in ("gpt", "sovits"))
    assert sorted(c.path for c in checkpoints) == sorted(str(folder / p) for p in raw)
    assert all(Path(c.path).is_file() for c in checkpoints) and run.out_dir == str(folder / "runs" / "tiny-move")
    code, said, err = run_cli("synth", "--gpt", trained["gpt"], "--sovits", trained["sovits"], "--speaker", "allison",
                              "--text", "Please hold the line.", "--db", str(db), "--out", str(tmp_path / "hello.wav"),
                              "--json")
    assert code == 0, err
    assert said["reference"].startswith(str(db.parent.resolve() / "clips" / "allison"))
    assert sf.info(str(tmp_path / "hello.wav")).samplerate == 32000 and said["tokens"] > 0


def test_the_voice_service_serves_from_the_new_place(moved, trained, tmp_path):
    import httpx

    gpt, sovits = trained["gpt"], trained["sovits"]
    (tmp_path / "keys.txt").write_text("test-key-0123456789\n")
    proc, base = start_server("--gpt", gpt, "--sovits", sovits, "--db", str(moved["db"]), "--api-keys",
                              str(tmp_path / "keys.txt"))
    try:
        r = httpx.post(f"{base}/v1/tts", json={"text": "Please hold the line.", "speaker": "allison"},
                       headers={"Authorization": "Bearer test-key-0123456789"}, timeout=300)
        assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
