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

_RULE = re.compile(r"^\s*([a-z_]+)\s*([<>])\s*([+-]?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class GateRule:
    metric: str
    op: str  # "<": fail when the difference falls below threshold; ">": rises above it
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:+g}"


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


def apply(rules: list[GateRule], comparison: dict, scope: str = "overall") -> dict:
    """{"passed", "rules", "failures": [{"rule", "scope", "delta", "lo", "hi"}], "unchecked"}."""
    scopes = [("overall", comparison["overall"])]
    if scope == "speaker":
        scopes += [(f"speaker {s}", figs) for s, figs in comparison["speakers"].items()]
    failures, unchecked = [], []
    for rule in rules:
        if rule.metric in comparison.get("not_compared", {}):
            unchecked.append(f"{rule}: {comparison['not_compared'][rule.metric]}")
            continue
        for where, figs in scopes:
            d = figs.get(rule.metric)
            if d is None:
                if where == "overall":
                    unchecked.append(f"{rule}: no paired items have {rule.metric}")
                continue
            beyond = d["value"] < rule.threshold if rule.op == "<" else d["value"] > rule.threshold
            if d["verdict"] == "worse" and beyond:
                failures.append({"rule": str(rule), "scope": where, "delta": d["value"], "lo": d["lo"], "hi": d["hi"]})
    # A rule that could not be checked fails too: a gate that passes whenever the comparison is
    # impossible (another encoder, no paired items) would hide exactly the runs that need a look.
    return {"passed": not failures and not unchecked, "rules": [str(r) for r in rules], "scope": scope,
            "failures": failures, "unchecked": unchecked}
