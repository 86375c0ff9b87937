"""The regression gate: `--fail-on "sim<-0.02,wer>+0.01"`.

Each rule names a metric, a direction and a threshold on the *difference* new - baseline of the
overall figure (or of every speaker's figure with `--gate-scope speaker`). A rule fails when
the comparison verdict is `worse` (the 95 % interval of the difference excludes zero) **and**
the estimated difference is beyond the threshold. A large but noisy drop does not fail, and
neither does a significant drop smaller than what you said you tolerate. A rule that cannot be
checked (the metric was not compared) fails the gate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clonebench.core.errors import UserError

from .aggregate import BY_NAME
from .figures import Comparison

_RULE = re.compile(r"^\s*([a-z_]+)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class GateRule:
    metric: str
    op: str  # "<": fail when the difference falls below threshold; ">": rises above it
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:+g}"


@dataclass(frozen=True)
class GateFailure:
    """A rule that failed, where (overall or one speaker), and the difference that failed it."""
    rule: str
    scope: str
    delta: float
    lo: float
    hi: float

    def to_json(self) -> dict:
        return {"rule": self.rule, "scope": self.scope, "delta": self.delta, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class GateVerdict:
    """The gate's outcome: it passes when no rule failed and every rule could be checked."""
    passed: bool
    rules: tuple[str, ...]
    scope: str                        # 'overall' | 'speaker'
    failures: tuple[GateFailure, ...] = ()
    unchecked: tuple[str, ...] = ()   # rules that could not be checked, with the reason

    def to_json(self) -> dict:
        return {"passed": self.passed, "rules": list(self.rules), "scope": self.scope,
                "failures": [f.to_json() for f in self.failures], "unchecked": list(self.unchecked)}

    @classmethod
    def from_json(cls, doc: dict) -> GateVerdict:
        return cls(doc["passed"], tuple(doc["rules"]), doc["scope"], tuple(GateFailure(**f) for f in doc["failures"]),
                   tuple(doc["unchecked"]))


def parse_rules(spec: str) -> list[GateRule]:
    rules = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        m = _RULE.match(part)
        if not m:
            raise UserError(f"--fail-on: cannot read {part!r}; write e.g. \"sim<-0.02,wer>+0.01\"")
        name, op, value = m.group(1), m.group(2), float(m.group(3))
        metric = BY_NAME.get(name)
        if metric is None:
            raise UserError(f"--fail-on: unknown metric {name!r}; known: {', '.join(BY_NAME)}")
        worse_op = "<" if metric.higher_is_better else ">"
        if op != worse_op:
            raise UserError(f"--fail-on: {part!r} would fail on an improvement; "
                            f"{name} gets worse as it {'falls' if metric.higher_is_better else 'rises'}, use {name}{worse_op}…")
        rules.append(GateRule(name, op, value))
    if not rules:
        raise UserError("--fail-on: no rules given")
    return rules


def apply(rules: list[GateRule], comparison: Comparison, scope: str = "overall") -> GateVerdict:
    """Check each rule on the overall difference (and every speaker's with scope 'speaker')."""
    scopes = [("overall", comparison.overall)]
    if scope == "speaker":
        scopes += [(f"speaker {s}", figs) for s, figs in comparison.speakers.items()]
    failures, unchecked = [], []
    for rule in rules:
        if rule.metric in comparison.not_compared:
            unchecked.append(f"{rule}: {comparison.not_compared[rule.metric]}")
            continue
        for where, figs in scopes:
            d = figs.get(rule.metric)
            if d is None:
                if where == "overall":
                    unchecked.append(f"{rule}: no paired items have {rule.metric}")
                continue
            beyond = d.value < rule.threshold if rule.op == "<" else d.value > rule.threshold
            if d.verdict == "worse" and beyond:
                failures.append(GateFailure(str(rule), where, d.value, d.lo, d.hi))
    # A rule that could not be checked fails too: a gate that passes whenever the comparison is
    # impossible (another encoder, no paired items) would hide exactly the runs that need a look.
    return GateVerdict(not failures and not unchecked, tuple(str(r) for r in rules), scope, tuple(failures),
                       tuple(unchecked))
