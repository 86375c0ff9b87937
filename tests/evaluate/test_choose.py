"""The stated rule that chooses a run's checkpoint, on scored items made here: the earliest
checkpoint passing the ceilings that no later one beats significantly; why, and by how much."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clonebench.core.errors import UserError
from clonebench.evaluate.aggregate import aggregate
from clonebench.evaluate.choose import ChoiceRule, ScoredCheckpoint, choose
from clonebench.store import EvalItem, EvalRun


def scored(epoch: int, sim: float, errors: int, speakers=("ann", "bob"), n=12, noise=0.01, seed=0) -> ScoredCheckpoint:
    """A checkpoint whose items have SIM about `sim` and `errors` word errors in 10 words each."""
    rng = np.random.default_rng([epoch, seed])
    run = EvalRun(f"run-e{epoch}", "complete", "model", encoder="resemblyzer", asr_model="whisper-tiny", device="cpu")
    items = [EvalItem(run.run_id, f"{s}-{k}", s, "en", hits=10 - errors, subs=errors, dels=0, ins=0,
                      sim=float(sim + noise * rng.standard_normal()))
             for s in speakers for k in range(n)]
    return ScoredCheckpoint(epoch, epoch * 10, Path(f"e{epoch}.ckpt"), Path("s2.pth"), run, tuple(items),
                            aggregate(items, 500, 0))


def test_rules_parse_and_refuse_in_one_line():
    rule = ChoiceRule.parse(" sim , wer<0.1, utmos>=3.5")
    assert rule.primary == "sim" and rule.ceilings == (("wer", "<", 0.1), ("utmos", ">=", 3.5))
    assert str(rule) == "sim,wer<0.1,utmos>=3.5"
    for bad, words in (("", "start with the metric"), ("loudness", "start with the metric"),
                       ("sim,wer<<0.1", "is not METRIC<VALUE"), ("sim,bogus<1", "is not METRIC<VALUE")):
        with pytest.raises(UserError, match=words):
            ChoiceRule.parse(bad)


def test_the_earliest_checkpoint_no_later_one_beats_is_chosen():
    runs = [scored(1, 0.50, 0), scored(2, 0.70, 0), scored(3, 0.701, 0), scored(4, 0.699, 0)]
    c = choose(runs, ChoiceRule.parse("sim,wer<0.1"), n_boot=500)
    assert c.chosen.epoch == 2                       # 3 and 4 are no better than 2 within the noise
    rows = {r["epoch"]: r for r in c.table}
    assert rows[1]["beaten_by"] == [2, 3, 4] and rows[2]["beaten_by"] == []
    assert c.runner_up.epoch == 3 and c.margin.verdict == "no_significant_change"
    assert c.why.startswith("epoch 2: the earliest of the 4 checkpoint(s) passing wer<0.1 that no later one beats on sim")
    assert "against the next best, epoch 3" in c.why


def test_a_ceiling_leaves_out_what_misreads_and_nothing_passing_chooses_nothing():
    runs = [scored(1, 0.60, 0), scored(2, 0.80, 3), scored(3, 0.62, 0)]
    c = choose(runs, ChoiceRule.parse("sim,wer<0.1"), n_boot=500)
    assert c.chosen.epoch == 3 and {r["epoch"]: r["passes"] for r in c.table} == {1: True, 2: False, 3: True}
    assert {r["epoch"]: r["failed"] for r in c.table}[2] == ["wer 0.3 is not < 0.1"]
    none = choose(runs, ChoiceRule.parse("sim,sim>0.9"), n_boot=500)
    assert none.chosen is None and none.why.startswith("no checkpoint passes sim>0.9 (best: sim 0.8); nothing chosen")


def test_a_speaker_still_moving_at_the_end_is_flagged():
    a, b = scored(1, 0.6, 0), scored(2, 0.6, 0)
    moved = [dataclass_replace_sim(b, "bob", +0.2)]
    c = choose([a, *moved], ChoiceRule.parse("sim"), n_boot=500)
    assert list(c.unsettled) == ["bob"] and c.unsettled["bob"].startswith("sim still rises from epoch 1 to 2: +0.2")


def dataclass_replace_sim(c: ScoredCheckpoint, speaker: str, delta: float) -> ScoredCheckpoint:
    import dataclasses

    items = tuple(dataclasses.replace(i, sim=i.sim + delta) if i.speaker == speaker else i for i in c.items)
    return dataclasses.replace(c, items=items, figures=aggregate(list(items), 500, 0))


def test_the_command_line_refuses_a_bad_rule_or_run_in_one_line(tmp_path):
    from conftest import run_cli

    from clonebench.testing.review_store import build

    db = build(tmp_path / "store", speakers=("ann",), clips=2)
    for args, words in ((("evaluate", "--run", "nope"), "no training run 'nope'"),
                        (("evaluate", "--run", "nope", "--choose", "sim,wer<<1"), "is not METRIC<VALUE"),
                        (("evaluate", "--run", "nope", "--gpt", "x.ckpt"), "leave out --audio-dir, --gpt and --sovits"),
                        (("serve", "--run", "nope"), "no training run 'nope'"),
                        (("serve",), "give --gpt and --sovits, or --run NAME")):
        code, _, err = run_cli(*args, "--db", str(db), check_json=False)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, (args, err)
