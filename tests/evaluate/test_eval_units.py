"""Evaluation maths and text rules: bootstrap coverage, gate logic, normalizers, eval sets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from clonebench.core import textnorm
from clonebench.core.errors import UserError
from clonebench.evaluate import aggregate, gate
from clonebench.evaluate.figures import Comparison, Figure
from clonebench.evaluate.items import BUILTIN_SETS, builtin_set, read_manifest
from clonebench.evaluate.stats import ratio_bootstrap, verdict
from clonebench.store import EvalItem, EvalRun


def test_bootstrap_interval_covers_a_known_difference():
    """Paired items whose true mean difference is -0.03: the 95 % interval should contain it
    in about 95 % of repeated experiments, and find the drop most of the time."""
    rng = np.random.default_rng(7)
    true_delta, covered, detected, trials = -0.03, 0, 0, 300
    for t in range(trials):
        base = rng.normal(0.85, 0.05, 60)
        new = base + true_delta + rng.normal(0, 0.04, 60)
        est = ratio_bootstrap(new - base, np.ones(60), n_boot=1000, seed=t)
        covered += est.lo <= true_delta <= est.hi
        detected += verdict(est, higher_is_better=True) == "worse"
    assert 0.90 <= covered / trials <= 0.99
    assert detected / trials > 0.95


def test_no_difference_is_rarely_called_significant():
    rng = np.random.default_rng(3)
    calls = [verdict(ratio_bootstrap(rng.normal(0, 0.05, 40), np.ones(40), n_boot=1000, seed=s), True)
             for s in range(200)]
    false_alarms = sum(c != "no_significant_change" for c in calls) / len(calls)
    assert false_alarms < 0.10


def _item(key, speaker, sim, errs, ref_len):
    return EvalItem("r", key, speaker, status="ok", sim=sim, hits=ref_len - errs, subs=errs, dels=0, ins=0)


def test_overall_interval_resamples_speakers():
    """Speakers that disagree make the overall interval wide even with many items each."""
    items = [_item(f"a{i}", "a", 0.9, 0, 10) for i in range(50)] + [_item(f"b{i}", "b", 0.5, 5, 10) for i in range(50)]
    agg = aggregate.aggregate(items, n_boot=1000, seed=0)
    assert agg.speakers["a"]["sim"].hi - agg.speakers["a"]["sim"].lo == 0
    overall = agg.overall["sim"]
    assert overall.value == pytest.approx(0.7) and overall.n == 2
    assert overall.lo <= 0.5 + 1e-9 and overall.hi >= 0.9 - 1e-9
    assert agg.overall["wer"].value == pytest.approx(0.25)  # 250 errors / 1000 words


def test_overall_interval_keeps_item_noise_with_few_speakers():
    """Two speakers with nearly equal means but noisy items: resampling speakers alone would
    give an interval only as wide as the gap between the two means (0.01)."""
    rng = np.random.default_rng(0)
    items = [_item(f"{s}{i}", s, float(mu + rng.normal(0, 0.1)), 0, 10)
             for s, mu in [("a", 0.80), ("b", 0.81)] for i in range(20)]
    overall = aggregate.aggregate(items, n_boot=2000, seed=0).overall["sim"]
    assert overall.hi - overall.lo > 0.04


def test_paired_corpus_wer_difference():
    base = [_item(f"k{i}", "a", 0.8, 1, 10) for i in range(40)]
    new = [_item(f"k{i}", "a", 0.8, 3, 10) for i in range(40)]
    run = EvalRun("x", "complete", "audio", asr_model="m", encoder="e", device="d")
    cmp = aggregate.compare(run, new, replace(run, run_id="b"), base, n_boot=500, seed=0)
    assert cmp.overall["wer"].value == pytest.approx(0.2) and cmp.overall["wer"].verdict == "worse"
    assert cmp.overall["sim"].verdict == "no_significant_change"
    other = aggregate.compare(run, new, replace(run, run_id="b", encoder="ecapa"), base, n_boot=500, seed=0)
    assert "sim" not in other.overall and "encoder differs" in other.not_compared["sim"]


def test_gate_rules():
    rules = gate.parse_rules("sim<-0.02, wer>+0.01")
    assert [str(r) for r in rules] == ["sim<-0.02", "wer>+0.01"]
    for bad, msg in [("sim<<1", "cannot read"), ("mos<-1", "unknown metric"), ("wer<-0.01", "improvement"), ("", "no rules")]:
        with pytest.raises(UserError, match=msg):
            gate.parse_rules(bad)
    cmp = Comparison("b", 40, {}, {"sim": Figure(-0.05, -0.08, -0.02, 40, "worse"),
                                   "wer": Figure(0.03, -0.01, 0.07, 40, "no_significant_change")}, {})
    g = gate.apply(rules, cmp)
    assert not g.passed and [f.rule for f in g.failures] == ["sim<-0.02"]
    cmp.overall["sim"] = Figure(-0.01, -0.015, -0.005, 40, "worse")  # significant but small
    assert gate.apply(rules, cmp).passed
    cmp.not_compared["wer"] = "asr_model differs"
    g = gate.apply(rules, cmp)
    assert not g.passed and "asr_model differs" in g.unchecked[0]


def test_wer_agrees_with_plain_jiwer_and_whisper_normalizer():
    import jiwer
    from whisper.normalizers import EnglishTextNormalizer

    norm = EnglishTextNormalizer()
    pairs = [("Please enter your password, followed by the pound key.", "please enter you password followed by pound key"),
             ("The total is $42.75, including a 15% tip.", "the total is forty two dollars seventy five including a fifteen percent tip"),
             ("Dr. Nguyen read the thorough report.", "doctor win read the through report aloud"),
             ("I can't do it", "i cannot do it"), ("Good morning.", "")]
    refs, hyps, counts = [], [], []
    for ref, hyp in pairs:
        unit, _ = textnorm.error_counts(ref, hyp, "en")
        counts.append(unit)
        r, h = norm(ref), norm(hyp)
        refs.append(r)
        hyps.append(h)
        if h:
            assert unit.rate == pytest.approx(jiwer.wer(r, h))
        else:
            assert unit.rate == 1.0
    nonempty = [(r, h) for r, h in zip(refs, hyps) if h]
    corpus = sum(c.errors for c, h in zip(counts, hyps) if h) / sum(c.ref_len for c, h in zip(counts, hyps) if h)
    assert corpus == pytest.approx(jiwer.wer([r for r, _ in nonempty], [h for _, h in nonempty]))


def test_chinese_and_mixed_normalization():
    # traditional -> simplified, punctuation stripped, one token per character
    assert textnorm.tokens("歡迎致電，客服中心！", "zh") == list("欢迎致电客服中心")
    # numerals read out; long digit runs read digit by digit
    assert textnorm.normalize("2024年3月5日", "zh") == textnorm.normalize("二零二四年三月五日", "zh")
    assert textnorm.normalize("电话4008123456", "zh").replace(" ", "") == "电话四零零八一二三四五六"
    # mixed: Latin words are English words, Han characters are characters
    assert textnorm.tokens("Hello，欢迎致电客服中心", "zh-en") == ["hello", *"欢迎致电客服中心"]
    unit, chars = textnorm.error_counts("我明天要去 office 开会", "我明天要去 offices 开会", "zh-en")
    assert (unit.substitutions, unit.ref_len) == (1, 8) and chars.insertions == 1
    assert textnorm.unit_for("zh") == "char" and textnorm.unit_for("zh-en") == "mixed" and textnorm.unit_for("en") == "word"


def test_builtin_eval_sets_cover_lengths_numbers_and_hard_cases():
    for lang in BUILTIN_SETS:
        rows = builtin_set(lang)
        assert {"short", "medium", "long", "numbers", "hard"} <= {r.category for r in rows}
        assert len({r.sentence_id for r in rows}) == len(rows)
        for r in rows:
            unit, _ = textnorm.error_counts(r.text, r.text, lang)
            assert unit.ref_len > 0 and unit.errors == 0
    assert any("Hello" in r.text for r in builtin_set("zh-en"))


def test_manifest_rows_pair_by_text_not_file_name(tmp_path):
    (tmp_path / "m.tsv").write_text("a.wav\talice\ten\tHi there.\nb.wav\talice\ten\tHi there.\nc.wav\talice\ten\tBye.\tref.wav\t1.5\n"
                                    "d.wav\talice\ten\tOops.\t\tslow\n")
    items = read_manifest(tmp_path / "m.tsv", tmp_path)
    assert [i.item_key for i in items[:3]] == ["alice|en|Hi there.", "alice|en|Hi there.#2", "alice|en|Bye."]
    assert items[2].prompt == tmp_path / "ref.wav" and items[2].synth_s == 1.5
    assert items[3].error and "synth_s must be a positive number" in items[3].error


def test_result_document_is_what_the_store_holds(tmp_path):
    """A finished run's result prints the documented keys, its summary reads back from the store
    unchanged, and `runs --json` prints the history lines' documents."""
    import json

    from conftest import run_cli

    from clonebench.evaluate.result import RunSummary, load_result
    from clonebench.evaluate.run import finish_run, list_runs
    from clonebench.store import Store

    db = tmp_path / "s.duckdb"
    with Store(db) as store:
        for run_id, errs in (("base", 1), ("new", 3)):
            store.start_eval_run(EvalRun(run_id, "running", "audio", encoder="e", asr_model="m", device="d", seed=0,
                                         n_boot=200))
            store.put_eval_items([replace(_item(f"{s}{i}", s, 0.8 + 0.01 * i, errs, 10), run_id=run_id)
                                  for s in "ab" for i in range(6)]
                                 + [EvalItem(run_id, "!m:3", "?", status="error", error="m:3: empty text")])
        finish_run(store, "base", None, None, "overall", [])
        result = finish_run(store, "new", store.eval_run("base"), gate.parse_rules("wer>+0.01"), "speaker", ["a note"])
        stored = store.eval_run("new").summary
        assert load_result(store, "new") == result
    doc = json.loads(json.dumps(result.to_json()))
    assert list(doc) == ["run_id", "store", "environment", "items", "speakers", "overall", "comparison", "gate",
                         "errors"]
    assert RunSummary.from_json(stored).to_json() == stored
    shared = ("speakers", "overall", "comparison", "gate")
    assert {k: doc[k] for k in shared} == {k: stored[k] for k in shared}
    assert doc["gate"]["failures"][0]["rule"] == "wer>+0.01" and not doc["gate"]["passed"]
    assert doc["errors"] == [{"item": "!m:3", "error": "m:3: empty text"}, {"item": None, "error": "a note"}]
    assert doc["items"][0]["flags"] == [] and "run_id" not in doc["items"][0] and len(doc["items"]) == 13
    assert list(result.with_report(None).to_json())[-1] == "report"   # shown once asked for, even when not written
    code, runs, err = run_cli("runs", "--db", str(db), "--json")
    assert code == 0, err
    assert runs == [r.to_json() for r in list_runs(db)] and [r["gate"] for r in runs] == ["failed", None]
