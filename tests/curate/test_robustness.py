"""Bad input gets one clear line and loses nothing; re-runs add nothing; a killed run resumes."""

import os
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import duckdb
import numpy as np
import pytest
from conftest import ROOT, SR, run_cli, write


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, en_utterances):
    root = tmp_path_factory.mktemp("bad")
    audio = root / "audio"
    write(audio / "good_a.wav", en_utterances[0])
    write(audio / "good_b.flac", en_utterances[1])
    # 3 channels, 24-bit, 44.1 kHz: valid, unusual; must be decoded, not rejected
    from clonebench.core.audio import resample
    y = resample(en_utterances[2], SR, 44100)
    write(audio / "three_channel_24bit.wav", np.stack([y, 0.5 * y, 0.25 * y], axis=1), 44100, subtype="PCM_24")
    (audio / "empty.wav").write_bytes(b"")
    (audio / "notes.wav").write_text("this is a text file, not audio\n")
    good = (audio / "good_a.wav").read_bytes()
    (audio / "corrupt.wav").write_bytes(good[:12] + os.urandom(2000))  # RIFF/WAVE, then garbage chunks
    (audio / "truncated.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x10" + os.urandom(64))
    # one hour of 8 kHz 8-bit silence: the header says 60 min, over the 20 min default limit
    with wave.open(str(audio / "one_hour.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        block = b"\x80" * 8000 * 60
        for _ in range(60):
            w.writeframes(block)
    return root


def test_bad_files_are_listed_and_the_run_goes_on(bad_inputs):
    db = bad_inputs / "store.duckdb"
    code, doc, err = run_cli("vet", str(bad_inputs / "audio"), "--speaker", "bob", "--db", str(db), "--json")
    assert code == 4, err                       # finished, with refused inputs
    errors = {Path(e["source"]).name: e["error"] for e in doc["errors"]}
    assert set(errors) == {"empty.wav", "notes.wav", "corrupt.wav", "truncated.mp3", "one_hour.wav"}
    for name, msg in errors.items():
        assert "\n" not in msg and name in msg and "Traceback" not in msg
    assert "empty" in errors["empty.wav"]
    assert "min limit" in errors["one_hour.wav"]
    assert "Traceback" not in err
    sources = {Path(c["source"]).name for c in doc["clips"]}
    assert {"good_a.wav", "good_b.flac", "three_channel_24bit.wav"} <= sources
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT channels, sample_rate FROM recordings WHERE source LIKE '%three_channel%'").fetchone() == (3, 44100)
    assert con.execute("SELECT count(*) FROM ingest_errors").fetchone()[0] == 5
    con.close()


def test_rerun_adds_nothing_and_reuses_work(bad_inputs):
    db = bad_inputs / "store.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("recordings", "clips", "metrics", "words", "verdicts", "clip_stages")}
    stamps = con.execute("SELECT clip_id, stage, done_at FROM clip_stages ORDER BY 1, 2").fetchall()
    con.close()
    code, doc, err = run_cli("vet", str(bad_inputs / "audio"), "--speaker", "bob", "--db", str(db), "--json")
    assert code == 4, err
    con = duckdb.connect(str(db), read_only=True)
    after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}
    assert after == before
    assert con.execute("SELECT clip_id, stage, done_at FROM clip_stages ORDER BY 1, 2").fetchall() == stamps  # nothing redone
    con.close()
    assert len(doc["errors"]) == 5  # still reported


def test_a_recording_of_another_speaker_is_refused_with_its_own_exit_status(bad_inputs):
    """Exit 4, not 0: the run finished, but a script must notice that an input was refused."""
    db = bad_inputs / "store.duckdb"
    code, doc, err = run_cli("vet", str(bad_inputs / "audio" / "good_a.wav"), "--speaker", "carl", "--db", str(db), "--json")
    assert code == 4 and "already enrolled for speaker 'bob'" in doc["errors"][0]["error"], err


def test_store_in_use_is_a_clear_error(bad_inputs, tmp_path):
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen([sys.executable, "-c",
                               f"from store import Store; s = Store({str(db)!r}); print('ready', flush=True); import time; time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, _, err = run_cli("vet", str(bad_inputs / "audio" / "good_a.wav"), "--speaker", "bob", "--db", str(db), check_json=False)
        assert code == 2
        assert "store is in use" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "x" * 70, ""])
def test_speaker_names_cannot_escape_the_data_root(tmp_path, name):
    code, _, err = run_cli("vet", str(tmp_path), "--speaker", name, "--db", str(tmp_path / "s.duckdb"), check_json=False)
    assert code == 2
    assert "invalid speaker name" in err


def test_usage_errors_exit_2(tmp_path):
    code, _, err = run_cli("vet", str(tmp_path), "--speaker", "ok", "--lang", "klingon", "--db", str(tmp_path / "s.duckdb"), check_json=False)
    assert code == 2 and "unsupported --lang" in err
    code, _, _ = run_cli("vet", "--speaker", "ok", check_json=False)
    assert code == 2  # missing argument


def test_killed_run_resumes_without_duplicates(tmp_path, en_utterances):
    audio = tmp_path / "audio"
    for k in range(8):
        write(audio / f"utt_{k}.wav", en_utterances[k + 2])
    killed_db, clean_db = tmp_path / "killed" / "s.duckdb", tmp_path / "clean" / "s.duckdb"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "clonebench.cli", "vet", str(audio), "--speaker", "kim", "--db", str(killed_db)],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    # wait until some recordings are committed, then SIGKILL mid-run
    seen = 0
    deadline = time.time() + 600
    while seen < 4 and time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += ": 1 clips" in line or " clips" in line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert seen >= 4
    code, resumed, err = run_cli("vet", str(audio), "--speaker", "kim", "--db", str(killed_db), "--json")
    assert code == 0, err
    code, fresh, err = run_cli("vet", str(audio), "--speaker", "kim", "--db", str(clean_db), "--json")
    assert code == 0, err
    def key(d):
        return sorted((c["clip_id"], c["status"], tuple(c["reasons"])) for c in d["clips"])

    assert key(resumed) == key(fresh)
    con = duckdb.connect(str(killed_db), read_only=True)
    assert con.execute("SELECT count(*), count(DISTINCT sha256) FROM recordings").fetchone() == (8, 8)
    assert con.execute("SELECT count(*) FROM clips").fetchone()[0] == len(fresh["clips"])
    assert con.execute("SELECT count(*) FROM verdicts").fetchone()[0] == len(fresh["clips"])
    con.close()
