"""Model mode: synthesize the eval set with checkpoints, score it, compare with baseline checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli, write

from clonebench.instruments.registry import sha256_file
from clonebench.model.speak import init_model
from clonebench.testing import corpus

HOSTILE = 'Say <script>window.__xss = 1</script> and "><img src=x onerror=alert(1)> now.'


@pytest.fixture(scope="module")
def vetted(tmp_path_factory) -> dict:
    """One speaker vetted from two real recordings with transcripts; tiny random checkpoints."""
    root = tmp_path_factory.mktemp("model-eval")
    prompts = [p for p in corpus.prompts("en") if len(p.text.split()) >= 4][:4]
    lines = []
    for k in range(2):
        pair = prompts[2 * k:2 * k + 2]
        x = corpus.join([corpus.load_prompt(p) for p in pair], gap_s=0.3)
        write(root / "audio" / f"take{k}.wav", x)
        lines.append(f"take{k}.wav\t{' '.join(p.text for p in pair)}")
    (root / "transcripts.tsv").write_text("\n".join(lines) + "\n")
    db = root / "store.duckdb"
    code, doc, err = run_cli("vet", str(root / "audio"), "--speaker", "allison", "--transcripts",
                             str(root / "transcripts.tsv"), "--db", str(db), "--max-clip", "10", "--json")
    assert code == 0, err
    # vet writes the speaker's report and the dataset overview beside the store
    assert [Path(p).name for p in doc["reports"]] == ["allison.html", "dataset.html"]
    assert all(Path(p).is_file() and Path(p).parent == root / "reports" for p in doc["reports"])
    (root / "set.tsv").write_text(f"e1\ten\tGood morning, how are you?\nz1\tzh\t你好，欢迎光临。\nx1\ten\t{HOSTILE}\n",
                                  encoding="utf-8")
    return {"root": root, "db": db, "model": init_model("tiny", root / "ckpt", seed=0)}


def _evaluate(vetted, *extra):
    m = vetted["model"]
    return run_cli("evaluate", "--gpt", m["gpt"], "--sovits", m["sovits"], "--eval-set", str(vetted["root"] / "set.tsv"),
                   "--db", str(vetted["db"]), "--n-boot", "200", "--json", *extra)


def test_model_mode_scores_synthesized_items_with_timings(vetted):
    m = vetted["model"]
    code, doc, err = _evaluate(vetted, "--baseline-gpt", m["gpt"], "--baseline-sovits", m["sovits"],
                               "--fail-on", "sim<-0.02,wer>+0.01", "--label", "tiny")
    assert code == 0, err
    env = doc["environment"]
    assert env["mode"] == "model" and env["gpt_sha256"] == sha256_file(m["gpt"])
    assert env["sovits_sha256"] == sha256_file(m["sovits"]) and env["device"] == "cpu" and env["threads"] >= 1
    items = {it["text"]: it for it in doc["items"]}
    assert set(items) == {"Good morning, how are you?", "你好，欢迎光临。", HOSTILE}
    for it in items.values():
        assert it["status"] in ("ok", "partial") and it["duration_s"] > 0.4
        assert it["synth_s"] > 0 and it["rtf"] == pytest.approx(it["synth_s"] / it["duration_s"])
        assert 0 < it["ttfa_s"] <= it["synth_s"]
        assert it["sim"] is not None and it["prompt_path"]
    # the same checkpoints as baseline: same audio, so no difference and the gate passes
    assert doc["baseline"] and doc["gate"]["passed"]
    verdicts = {m["verdict"] for m in doc["comparison"]["overall"].values() if isinstance(m, dict) and "verdict" in m}
    assert verdicts <= {"no_significant_change", None}
    assert Path(doc["report"]).is_file()                        # evaluate writes its report too
    vetted["run"] = doc["run_id"]


def test_eval_report_renders_and_escapes(vetted, tmp_path):
    import re

    from browser import browser, check_in_browser

    run_id = vetted.get("run") or pytest.skip("needs the model-mode run")
    out = tmp_path / "eval.html"
    code, _, err = run_cli("report", "eval", run_id, "--db", str(vetted["db"]), "--out", str(out), check_json=False)
    assert code == 0, err
    html = out.read_text()
    assert "<script>window.__xss" not in html and "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html
    assert "gate passed" in html and sha256_file(vetted["model"]["sovits"]) in html
    assert html.count("<figure>") >= 3                       # one forest per compared metric
    # worst items: reference, baseline and new audio side by side, linked relatively
    assert html.count("<audio") == 3 * 6 and not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    d = browser()
    try:
        d.get(out.as_uri())
        assert d.find_element("id", "gate").text.startswith("GATE PASSED")
        assert len(d.find_elements("css selector", "#forest svg")) >= 3
    finally:
        d.quit()
    assert check_in_browser(out, "eval-report.png") == 18          # console clean, no script ran, players load


def test_trend_report_lists_the_model_runs(vetted, tmp_path):
    code, runs, _ = run_cli("runs", "--db", str(vetted["db"]), "--json")
    model_runs = [r for r in runs if r["status"] == "complete" and r["mode"] == "model"]
    out = tmp_path / "trend.html"
    code, _, err = run_cli("report", "trend", "--speaker", "allison", "--mode", "model", "--db", str(vetted["db"]),
                           "--out", str(out), check_json=False)
    assert code == 0, err
    html = out.read_text()
    assert html.count("<svg") >= 3 and html.count('href="eval-') == len(model_runs) >= 2
    from browser import check_in_browser

    check_in_browser(out, "trend-report.png")
    code, _, err = run_cli("report", "trend", "--speaker", "nobody", "--db", str(vetted["db"]), check_json=False)
    assert code == 2 and "nobody" in err


def test_a_checkpoint_that_is_not_a_checkpoint(vetted):
    junk = vetted["root"] / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    m = vetted["model"]
    # a bad baseline: the new pair is still evaluated, the gate cannot check and fails
    code, doc, err = _evaluate(vetted, "--baseline-gpt", str(junk), "--baseline-sovits", m["sovits"],
                               "--fail-on", "wer>+0.01")
    assert code == 3 and doc["items"] and not doc["gate"]["passed"]
    assert any("baseline not evaluated" in e["error"] and "junk.ckpt" in e["error"] for e in doc["errors"])
    # a bad model: one line, exit 2, and the failed attempt is in the history
    code, _, err = run_cli("evaluate", "--gpt", str(junk), "--sovits", m["sovits"], "--eval-set",
                           str(vetted["root"] / "set.tsv"), "--db", str(vetted["db"]), check_json=False)
    assert code == 2 and "junk.ckpt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, runs, _ = run_cli("runs", "--db", str(vetted["db"]), "--json")
    assert sum(r["status"] == "failed" for r in runs) == 2


def test_a_speaker_that_cannot_be_synthesized_is_reported(vetted):
    code, doc, err = _evaluate(vetted, "--speakers", "allison,ghost", "--no-report")
    assert code == 0, err
    assert {it["speaker"] for it in doc["items"]} == {"allison"}    # the finished audio is reused
    assert any("speaker ghost not synthesized" in e["error"] and "no accepted clips" in e["error"] for e in doc["errors"])
    assert "report" not in doc
