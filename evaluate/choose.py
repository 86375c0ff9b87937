"""Which checkpoint to ship: a stated rule over a training run's scored checkpoints.

The rule (`ChoiceRule`, written as `--choose "sim,wer<0.1"`) names a primary metric and
ceilings. Among the checkpoints whose overall figures pass every ceiling, the choice is the
earliest one that no later one beats significantly on the primary metric (paired bootstrap over
the items both scored, 95 %). Later is not better by default: a checkpoint earns its place
only by a difference the evaluation can tell apart from noise. Earliest, because the voices
of later epochs over-fit their prompts while the losses keep falling.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.store import EvalItem, EvalRun

from .aggregate import BY_NAME, compare
from .figures import Figure, RunFigures

DEFAULT_RULE = "sim,wer<0.1"
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_CEILING = re.compile(r"^([a-z_]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)$")


@dataclass(frozen=True)
class ChoiceRule:
    primary: str
    ceilings: tuple[tuple[str, str, float], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "ChoiceRule":
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts or parts[0] not in BY_NAME:
            raise UserError(f"--choose {text!r}: start with the metric to maximise or minimise, one of {', '.join(BY_NAME)}")
        ceilings = []
        for p in parts[1:]:
            m = _CEILING.match(p)
            if not m or m.group(1) not in BY_NAME:
                raise UserError(f"--choose {text!r}: {p!r} is not METRIC<VALUE (or <=, >, >=) with a metric of "
                                f"{', '.join(BY_NAME)}")
            ceilings.append((m.group(1), m.group(2), float(m.group(3))))
        return cls(parts[0], tuple(ceilings))

    def __str__(self) -> str:
        return ",".join([self.primary, *(f"{m}{op}{v:g}" for m, op, v in self.ceilings)])

    def failed(self, overall: dict[str, Figure]) -> list[str]:
        """The ceilings a checkpoint's overall figures miss ('wer 0.31 is not < 0.1')."""
        out = []
        for metric, op, value in self.ceilings:
            fig = overall.get(metric)
            if fig is None:
                out.append(f"{metric} was not measured")
            elif not _OPS[op](fig.value, value):
                out.append(f"{metric} {fig.value:.3g} is not {op} {value:g}")
        if self.primary not in overall:
            out.append(f"{self.primary} was not measured")
        return out


@dataclass(frozen=True)
class ScoredCheckpoint:
    """One checkpoint pair of a run and its evaluation."""
    epoch: int
    step: int
    gpt: Path
    sovits: Path
    run: EvalRun
    items: tuple[EvalItem, ...]
    figures: RunFigures

    def to_json(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "gpt": str(self.gpt), "sovits": str(self.sovits),
                "eval_run": self.run.run_id}


@dataclass(frozen=True)
class Choice:
    rule: ChoiceRule
    chosen: ScoredCheckpoint | None
    why: str
    runner_up: ScoredCheckpoint | None = None
    margin: Figure | None = None                 # primary metric, chosen - runner-up, paired, with its verdict
    table: tuple[dict, ...] = ()                 # per checkpoint: epoch, figures, passes, failed, beaten_by
    unsettled: dict[str, str] = field(default_factory=dict)   # speaker -> why their curve has not settled

    def to_json(self) -> dict:
        return {"rule": str(self.rule), "chosen": self.chosen.to_json() if self.chosen else None, "why": self.why,
                "runner_up": self.runner_up.to_json() if self.runner_up else None,
                "margin": self.margin.to_json() if self.margin else None, "table": list(self.table),
                "unsettled": dict(self.unsettled)}


def _diff(new: ScoredCheckpoint, base: ScoredCheckpoint, n_boot: int, seed: int):
    return compare(new.run, list(new.items), base.run, list(base.items), n_boot, seed)


def choose(scored: list[ScoredCheckpoint], rule: ChoiceRule, n_boot: int = 2000, seed: int = 0) -> Choice:
    """The rule applied to checkpoints (any order; judged in epoch order)."""
    scored = sorted(scored, key=lambda c: (c.epoch, c.step))
    primary = BY_NAME[rule.primary]
    table, passing = [], []
    for c in scored:
        failed = rule.failed(c.figures.overall)
        if not failed:
            passing.append(c)
        table.append({"epoch": c.epoch, "step": c.step, "eval_run": c.run.run_id, "passes": not failed, "failed": failed,
                      "figures": {m: f.to_json() for m, f in c.figures.overall.items()
                                  if m in {rule.primary, *(x[0] for x in rule.ceilings), "sim", "wer", "cer"}},
                      "beaten_by": []})
    unsettled = _unsettled(scored, rule.primary, n_boot, seed)
    if not scored:
        return Choice(rule, None, "no checkpoint of the run was scored", table=tuple(table))
    if not passing:
        pick = {"<": min, "<=": min, ">": max, ">=": max}
        best = {m: pick[op]((c.figures.overall[m].value for c in scored if m in c.figures.overall), default=None)
                for m, op, _ in rule.ceilings}
        return Choice(rule, None, f"no checkpoint passes {', '.join(f'{m}{op}{v:g}' for m, op, v in rule.ceilings)}"
                      f" (best: {', '.join(f'{m} {v:.3g}' for m, v in best.items() if v is not None)}); "
                      "nothing chosen: loosen the rule with --choose, or train longer", table=tuple(table),
                      unsettled=unsettled)
    row = {r["epoch"]: r for r in table}
    chosen = None
    for i, c in enumerate(passing):
        for later in passing[i + 1:]:
            fig = _diff(later, c, n_boot, seed).overall.get(rule.primary)
            if fig is not None and fig.verdict == "better":
                row[c.epoch]["beaten_by"].append(later.epoch)
        if not row[c.epoch]["beaten_by"] and chosen is None:
            chosen = c
    chosen = chosen or passing[-1]   # the last cannot be beaten by a later one
    sign = 1 if primary.higher_is_better else -1
    others = [c for c in passing if c is not chosen]
    runner_up = max(others, key=lambda c: sign * c.figures.overall[rule.primary].value) if others else None
    margin = _diff(chosen, runner_up, n_boot, seed).overall.get(rule.primary) if runner_up else None
    fig = chosen.figures.overall[rule.primary]
    why = (f"epoch {chosen.epoch}: the earliest of the {len(passing)} checkpoint(s) passing "
           f"{', '.join(f'{m}{op}{v:g}' for m, op, v in rule.ceilings) or 'no ceiling'} that no later one beats on "
           f"{rule.primary} (paired bootstrap, 95 %); {rule.primary} {fig.value:.3g} [{fig.lo:.3g}, {fig.hi:.3g}]")
    if runner_up is not None and margin is not None:
        why += (f"; against the next best, epoch {runner_up.epoch}: {margin.value:+.3g} [{margin.lo:+.3g}, {margin.hi:+.3g}]"
                f" ({margin.verdict.replace('_', ' ')})")
    return Choice(rule, chosen, why, runner_up, margin, tuple(table), unsettled)


def _unsettled(scored: list[ScoredCheckpoint], metric: str, n_boot: int, seed: int) -> dict[str, str]:
    """Speakers whose figure still moves significantly between the last two checkpoints."""
    if len(scored) < 2:
        return {}
    last, before = scored[-1], scored[-2]
    out = {}
    for speaker, figs in _diff(last, before, n_boot, seed).speakers.items():
        fig = figs.get(metric)
        if fig is not None and fig.verdict in ("better", "worse"):
            out[speaker] = (f"{metric} still {'rises' if fig.value > 0 else 'falls'} from epoch {before.epoch} to "
                            f"{last.epoch}: {fig.value:+.3g} [{fig.lo:+.3g}, {fig.hi:+.3g}]")
    return out
