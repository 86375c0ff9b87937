"""Test data made from real speech (Debian's Asterisk prompts) with known defects added."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from clonebench.testing import corpus, degrade, mixtures

os.environ["HF_HUB_OFFLINE"] = "1"
SR = 16000
ROOT = Path(__file__).resolve().parent.parent


def start_server(*args: str, command: str = "serve") -> tuple[subprocess.Popen, str]:
    """A real `clonebench serve ARGS` (or another server command) on a free loopback port, once
    its /healthz answers: (the process, its base URL). The caller terminates it."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLONEBENCH_MODEL_CACHE": str(ROOT / "datasets" / "models")}
    proc = subprocess.Popen([sys.executable, "-m", "clonebench.cli", command, *args, "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 300
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else "no start"
        time.sleep(0.5)


def run_cli(*args: str, check_json: bool = True, timeout: int = 1200) -> tuple[int, dict | None, str]:
    """Run the real `clonebench` command; return (exit code, parsed stdout JSON, stderr)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLONEBENCH_MODEL_CACHE": str(ROOT / "datasets" / "models")}
    proc = subprocess.run([sys.executable, "-m", "clonebench.cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)
    doc = json.loads(proc.stdout) if check_json and proc.stdout.strip() else None
    return proc.returncode, doc, proc.stderr


def one(store, sql: str, params=()):
    """The first value of the first row of an ad-hoc query (tests looking inside a store)."""
    rows = store.query(sql, params)
    return next(iter(rows[0].values())) if rows else None


@pytest.fixture(scope="session")
def en_utterances() -> list[np.ndarray]:
    """Pairs of English prompts (Allison), each 3-8 s: one clean clip per pair."""
    _, audio = corpus.take_seconds(corpus.prompts("en"), 150)
    pairs = []
    i = 0
    while i + 1 < len(audio) and len(pairs) < 24:
        x = corpus.join(audio[i : i + 2], gap_s=0.25)
        if 3.5 <= len(x) / SR <= 12:
            pairs.append(x)
        i += 2
    return pairs


def write(path: Path, x: np.ndarray, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return path


def allison_takes(folder: Path, tsv: Path, seconds: float, prompts: int | None = None) -> None:
    """Allison's English prompts (those of 4 words or more; the first `prompts` of them), two to a
    file `a<k>.wav` in `folder`, until `seconds` of audio; their texts in `tsv` (name<TAB>text)."""
    chosen = [p for p in corpus.prompts("en") if len(p.text.split()) >= 4][:prompts]
    lines, total, k = [], 0.0, 0
    while total < seconds and 2 * k + 1 < len(chosen):
        pair = chosen[2 * k:2 * k + 2]
        x = corpus.join([corpus.load_prompt(p) for p in pair], gap_s=0.3)
        write(folder / f"a{k}.wav", x)
        lines.append(f"a{k}.wav\t{' '.join(p.text for p in pair)}")
        total, k = total + len(x) / SR, k + 1
    tsv.write_text("\n".join(lines) + "\n")


def vetted_training_store(root: Path) -> Path:
    """A store with two vetted speakers to train on: Allison's real prompts (~70 s) and an
    espeak-ng voice (~40 s), with transcripts (the training tests and `bench_choose.py`)."""
    db = root / "store.duckdb"
    allison_takes(root / "allison", root / "allison.tsv", 70, prompts=30)
    prompts = [p for p in corpus.prompts("en") if len(p.text.split()) >= 4][:30]
    lines, total, k = [], 0.0, 0
    while total < 40:
        p = prompts[k]
        x = corpus.espeak(p.text, "en+m3")
        write(root / "robo" / f"r{k}.wav", np.concatenate([np.zeros(4000, np.float32), x, np.zeros(4000, np.float32)]))
        lines.append(f"r{k}.wav\t{p.text}")
        total, k = total + len(x) / SR, k + 1
    (root / "robo.tsv").write_text("\n".join(lines) + "\n")
    for name in ("allison", "robo"):
        code, _, err = run_cli("vet", str(root / name), "--speaker", name, "--transcripts", str(root / f"{name}.tsv"),
                               "--db", str(db), "--max-clip", "10", "--no-report", "--json")
        assert code == 0, err
    return db


@pytest.fixture(scope="session")
def defect_set(tmp_path_factory, en_utterances) -> dict:
    """10 clean clips and one file per defect, all one speaker; vetted once for all tests."""
    root = tmp_path_factory.mktemp("defects")
    clips = en_utterances
    files = {}
    for k in range(10):
        files[f"clean_{k:02d}"] = write(root / "audio" / f"clean_{k:02d}.wav", clips[k])
    music = corpus.music(20, index=3)
    voice2 = corpus.espeak("Please enter the number of the person you wish to call, then press pound.", "en+m3")
    defects = {
        "noise": degrade.add_white_noise(clips[10], 0.0, seed=3),
        "music": degrade.mix_at_snr(clips[11], music, 0.0),
        "reverb": degrade.add_reverb(clips[12], SR, 1.2, seed=4),
        "fast": degrade.time_stretch(clips[13], SR, 1.8),
        "clipping": degrade.hard_clip(clips[14], 14.0),
        "bandwidth": degrade.telephone_band(clips[15], SR),
        "two_voices": np.concatenate([clips[16], voice2]),  # a turn with no pause: one clip, two voices
        "overlap": mixtures.make(mixtures.TUNE, "overlap", 0).audio,  # a second voice at 0 dB, the whole clip
        "babble": mixtures.make(mixtures.TUNE, "babble", 3).audio,  # six talkers 3 dB under the voice
        "slow": mixtures.make(mixtures.TUNE, "slow", 1).audio,  # read at 0.55x
        "unintelligible": clips[18][::-1].copy(),  # speech played backwards: no language at all
    }
    for name, x in defects.items():
        files[name] = write(root / "audio" / f"defect_{name}.wav", x)
    db = root / "store" / "clonebench.duckdb"
    code, doc, err = run_cli("vet", str(root / "audio"), "--speaker", "alice", "--db", str(db), "--json")
    assert code == 0, err
    by_source = {}
    for c in doc["clips"]:
        by_source.setdefault(Path(c["source"]).stem, []).append(c)
    boundaries = {"two_voices": len(clips[16]) / SR}
    return {"root": root, "db": db, "boundaries": boundaries, "doc": doc, "by_source": by_source, "files": files, "stderr": err}
