"""The figures a run reports: each metric's value with its 95 % interval, per speaker and overall,
and the paired differences against a baseline run with their verdicts.

They are what `eval_runs.summary` stores and what `evaluate --json` prints; `to_json` gives that
document and `from_json` reads it back from the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from .stats import Estimate


@dataclass(frozen=True)
class Figure:
    """A figure over `n` resampling units (items, or speakers overall), rounded as reported.
    A paired difference also carries its verdict: better, worse or no_significant_change."""
    value: float
    lo: float
    hi: float
    n: int
    verdict: str | None = None

    @classmethod
    def of(cls, est: Estimate, verdict: str | None = None) -> Figure:
        return cls(round(est.value, 6), round(est.lo, 6), round(est.hi, 6), est.n, verdict)

    def to_json(self) -> dict:
        doc = {"value": self.value, "lo": self.lo, "hi": self.hi, "n": self.n}
        if self.verdict is not None:
            doc["verdict"] = self.verdict
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> Figure:
        return cls(doc["value"], doc["lo"], doc["hi"], doc["n"], doc.get("verdict"))


Figures = dict[str, Figure]  # metric name -> figure, in `aggregate.METRICS` order


def figures_json(figures: Figures) -> dict:
    return {m: f.to_json() for m, f in figures.items()}


def figures_from_json(doc: dict) -> Figures:
    return {m: Figure.from_json(f) for m, f in doc.items()}


def speakers_json(speakers: dict[str, Figures]) -> dict:
    return {s: figures_json(f) for s, f in speakers.items()}


def speakers_from_json(doc: dict) -> dict[str, Figures]:
    return {s: figures_from_json(f) for s, f in doc.items()}


@dataclass(frozen=True)
class RunFigures:
    """One run's figures: per speaker (speakers sorted) and overall."""
    speakers: dict[str, Figures]
    overall: Figures


@dataclass(frozen=True)
class Comparison:
    """New - baseline on the items both runs scored; metrics whose producer differs between the
    runs are in `not_compared` with the reason."""
    baseline_run: str
    paired_items: int
    speakers: dict[str, Figures]
    overall: Figures
    not_compared: dict[str, str]

    def to_json(self) -> dict:
        return {"baseline_run": self.baseline_run, "paired_items": self.paired_items,
                "speakers": speakers_json(self.speakers), "overall": figures_json(self.overall),
                "not_compared": dict(self.not_compared)}

    @classmethod
    def from_json(cls, doc: dict) -> Comparison:
        return cls(doc["baseline_run"], doc["paired_items"], speakers_from_json(doc["speakers"]),
                   figures_from_json(doc["overall"]), dict(doc["not_compared"]))
