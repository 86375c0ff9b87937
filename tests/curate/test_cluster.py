"""`vet --ray` on a real two-node Ray cluster on this machine (`ray start`, two CPUs a node):
the same store as plain `vet`, a corrupt file as one error, and no loss or duplicate when a worker
or the driver is killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from clonebench.testing import corpus
from conftest import ROOT, run_cli, write

RAY = Path(sys.executable).parent / "ray"
# Every table a vetting run writes, with the columns that do not hold a path of the run's own
# folder or a time: two runs over the same corpus must agree on all of them, value for value.
FACTS = {
    "recordings": "sha256, speaker, source, format, sample_rate, channels, duration_s, decoder",
    "clips": "clip_id, recording_sha256, speaker, start_s, end_s, duration_s, slicer",
    "given_transcripts": "recording_sha256, text, source, lang",
    "metrics": "clip_id, name, value, producer",
    "clip_stages": "clip_id, stage, producer",
    "transcripts": "clip_id, kind, text, language, language_prob, lid_scope, avg_logprob, producer, alignment_score",
    "words": "clip_id, idx, word, start_s, end_s, probability, producer",
    "clip_embeddings": "clip_id, encoder, vector",
    "clip_frames": "clip_id, name, producer, hop_s, \"values\"",
    "verdicts": "clip_id, rule_set, status, reasons, flags",
    "enrolments": "speaker, rule_set, status, accepted_s, rejected_s, advice",
    "speakers": "speaker, lang",
    "speaker_embeddings": "speaker, encoder, vector, n_clips",
    "rule_sets": "version, thresholds, source",
    "ingest_errors": "source, speaker, error",
}


def facts(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: sorted(con.execute(f"SELECT {cols} FROM {t}").fetchall(), key=repr) for t, cols in FACTS.items()}
    finally:
        con.close()


SECOND_NODE: dict[str, int] = {}     # the joined node's raylet port, to find its process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(address: str) -> int:
    """A second node process on this machine joined to the cluster, two CPUs: its raylet's port."""
    port = _free_port()
    subprocess.run([str(RAY), "start", "--address", address, "--num-cpus", "2", "--node-manager-port", str(port),
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180)
    return port


@pytest.fixture(scope="module")
def cluster():
    """A two-node Ray cluster on this machine for this module: a head and a second node process,
    two CPUs each, so that two workers of two threads take one node each. Stopped with every Ray
    process at the end. Ray's token authentication is off for this throwaway cluster (`ray start`
    and its clients here would need the same token file)."""
    port = _free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_MODE", "disabled")       # for the clonebench processes the tests start
        mp.setenv("CLONEBENCH_THREADS", "2")         # two workers of two threads, on any machine
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        subprocess.run([str(RAY), "start", "--head", "--port", str(port), "--num-cpus", "2",
                        "--include-dashboard", "false", "--disable-usage-stats"],
                       check=True, capture_output=True, timeout=180)
        address = f"127.0.0.1:{port}"
        try:
            SECOND_NODE["port"] = _join(address)
            yield address
        finally:
            subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def corpus_list(tmp_path_factory) -> Path:
    """Two speakers (Allison's prompts and an espeak-ng voice, ~40 s), a corrupt file, and the
    first speaker's last file given again as the second's first (hashed at the same time: the
    first given owns it, as in one process), in a .list."""
    root = tmp_path_factory.mktemp("raycorpus")
    prompts = [p for p in corpus.prompts("en") if len(p.text.split()) >= 5][:8]
    lines = []
    for k, p in enumerate(prompts):
        write(root / "allison" / f"a{k}.wav", corpus.load_prompt(p))
        lines.append(f"allison/a{k}.wav|allison|en|{p.text}")
    (root / "robo").mkdir()
    shutil.copy(root / "allison" / "a7.wav", root / "robo" / "copy.wav")
    lines.append("robo/copy.wav|robo|en|" + prompts[7].text)
    for k, p in enumerate(prompts[:6]):
        write(root / "robo" / f"r{k}.wav", corpus.espeak(p.text, "en+m3"))
        lines.append(f"robo/r{k}.wav|robo|en|{p.text}")
    (root / "robo" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio")
    lines.append("robo/broken.wav|robo|en|Nothing to hear.")
    (root / "corpus.list").write_text("\n".join(lines) + "\n")
    return root / "corpus.list"


@pytest.fixture(scope="module")
def plain(corpus_list, tmp_path_factory) -> tuple[dict, dict]:
    db = tmp_path_factory.mktemp("plain") / "store.duckdb"
    code, doc, err = run_cli("vet", "--list", str(corpus_list), "--db", str(db), "--no-report", "--json")
    assert code == 4, err      # the corrupt file is refused; the run goes on
    return doc, facts(db)


def _ray_vet(corpus_list: Path, db: Path, address: str) -> list[str]:
    return [sys.executable, "-m", "clonebench.cli", "vet", "--list", str(corpus_list), "--db", str(db),
            "--ray", address, "--ray-workers", "2", "--no-report", "--json"]


def test_ray_vet_writes_what_one_process_writes(cluster, corpus_list, plain, tmp_path):
    db = tmp_path / "store.duckdb"
    code, doc, err = run_cli("vet", "--list", str(corpus_list), "--db", str(db), "--ray", cluster, "--ray-workers", "2",
                             "--no-report", "--json")
    assert code == 4, err
    plain_doc, plain_facts = plain
    assert facts(db) == plain_facts          # metrics, transcripts, words, embeddings, verdicts: value for value
    assert [e["error"] for e in doc["errors"]] == [e["error"] for e in plain_doc["errors"]]
    assert [Path(e["source"]).name for e in doc["errors"]] == ["copy.wav", "broken.wav"]
    assert "allison" in doc["errors"][0]["error"]           # already vetted under the first speaker
    run = doc["ray"]
    clips = len(plain_facts["clips"])
    assert run["workers"] == 2 and run["files"] == 16 and run["clips"] == clips
    assert {k: v for k, v in run["measured"].items() if k != "asr"} == {"ingest": 16, "signal": clips, "embed": clips,
                                                                         "overlap": 0}
    assert run["measured"]["asr"] >= 2                                  # a batch per speaker at least
    assert run["audio_h"] > 0.005 and run["wall_s"] > 0 and run["worker_s"]["signal"] > 0
    # again: everything is done, nothing is measured or written twice
    code, doc, err = run_cli(*_ray_vet(corpus_list, db, cluster)[3:], check_json=True)
    assert code == 4, err
    assert doc["ray"]["measured"] == {"ingest": 16, "signal": 0, "embed": 0, "overlap": 0, "asr": 0}
    assert facts(db) == plain_facts


def _pids(text: str) -> list[int]:
    """Processes whose command line (or title, as Ray's workers set it) holds `text`."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                line = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in line:
                found.append(int(proc.name))
    return found


def test_a_worker_killed_mid_run_loses_and_repeats_nothing(cluster, corpus_list, plain, tmp_path):
    db = tmp_path / "store.duckdb"
    proc = subprocess.Popen(_ray_vet(corpus_list, db, cluster), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 600
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        busy = _pids("ray::ClipWorker.measure")
        if busy:
            os.kill(busy[0], signal.SIGKILL)
            killed = busy[0]
        time.sleep(0.1)
    out, err = proc.communicate(timeout=900)
    assert killed is not None, "no worker was seen measuring"
    assert proc.returncode == 4, err
    assert facts(db) == plain[1]
    doc = json.loads(out)
    assert doc["ray"]["measured"]["signal"] == len(plain[1]["clips"])   # the killed call counted once


def test_a_killed_driver_resumes_without_redoing_finished_speakers(cluster, corpus_list, plain, tmp_path):
    db = tmp_path / "store.duckdb"
    proc = subprocess.Popen(_ray_vet(corpus_list, db, cluster), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    judged = None
    for line in proc.stderr:
        if ": judged" in line:
            judged = line
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert judged is not None and proc.returncode == -signal.SIGKILL
    first = judged.split(": judged")[0].split()[-1]
    done_clips = sum(1 for c in plain[1]["clips"] if c[2] == first)
    code, doc, err = run_cli(*_ray_vet(corpus_list, db, cluster)[3:], check_json=True)
    assert code == 4, err
    assert facts(db) == plain[1]
    # the speaker judged before the kill is not measured again
    assert doc["ray"]["measured"]["signal"] <= len(plain[1]["clips"]) - done_clips
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_an_address_nothing_answers_at_and_workers_that_do_not_fit_are_one_line_errors(cluster, corpus_list, tmp_path):
    closed = _free_port()
    code, _, err = run_cli("vet", "--list", str(corpus_list), "--db", str(tmp_path / "a.duckdb"), "--ray",
                           f"127.0.0.1:{closed}", "--no-report", check_json=False, timeout=120)
    assert code == 2 and "nothing answers there" in err and not (tmp_path / "a.duckdb").exists()
    code, _, err = run_cli("vet", "--list", str(corpus_list), "--db", str(tmp_path / "b.duckdb"), "--ray", cluster,
                           "--ray-workers", "3", "--no-report", check_json=False, timeout=300)
    assert code == 2 and "3 worker(s) of 2 CPUs do not fit" in err and "room for 2" in err
    code, _, err = run_cli("vet", "--list", str(corpus_list), "--db", str(tmp_path / "c.duckdb"), "--ray", cluster,
                           "--asr", "openai-whisper:/nowhere/large.pt", "--no-report", check_json=False, timeout=120)
    assert code == 2 and err.strip().splitlines()[-1] == "error: --asr openai-whisper:/nowhere/large.pt: no such file or folder"
    broken = tmp_path / "large.pt"
    broken.write_bytes(b"not a checkpoint")          # there, but no model: the workers say so, in one line at the end
    code, _, err = run_cli("vet", "--list", str(corpus_list), "--db", str(tmp_path / "d.duckdb"), "--ray", cluster,
                           "--asr", f"openai-whisper:{broken}", "--no-report", check_json=False, timeout=600)
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: a Ray worker could not load its models: "), err


def test_a_node_that_leaves_has_its_work_rerun_elsewhere(cluster, corpus_list, plain, tmp_path):
    """The second node's raylet is killed while its worker measures (a machine lost): the worker
    cannot come back, the driver drops it and hands its calls to the worker left. The same store
    as plain `vet`. Last in the module: the cluster has one node after it."""
    db = tmp_path / "store.duckdb"
    proc = subprocess.Popen(_ray_vet(corpus_list, db, cluster), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and len(_pids("ray::ClipWorker.measure")) < 2:
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before both workers measured"
    second = _pids(f"--node_manager_port={SECOND_NODE['port']}")
    assert len(second) == 1
    os.kill(second[0], signal.SIGKILL)           # the node is gone, with its worker
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 4, err
    assert "Ray worker" in err and "lost" in err
    assert facts(db) == plain[1]
    assert json.loads(out)["ray"]["measured"]["signal"] == len(plain[1]["clips"])

