"""What an evaluation run leaves: the summary stored with the run (`eval_runs.summary`), the
result a finished run returns (`evaluate --json` is its `to_json()`), and its line in the run
history (`clonebench runs`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from clonebench.core.errors import UserError
from clonebench.store import EvalItem, EvalRun, Store

from .figures import (Comparison, Figures, RunFigures, figures_from_json, figures_json, speakers_from_json,
                      speakers_json)
from .gate import GateVerdict


@dataclass(frozen=True)
class RunSummary:
    """The aggregates, comparison, gate verdict and run-level problems of a run, as stored with it.
    A run that failed before scoring has only `messages`."""
    speakers: dict[str, Figures]
    overall: Figures
    comparison: Comparison | None = None
    gate: GateVerdict | None = None
    messages: tuple[str, ...] = ()

    @classmethod
    def of(cls, figures: RunFigures, comparison: Comparison | None, gate: GateVerdict | None,
           messages: list[str]) -> RunSummary:
        return cls(figures.speakers, figures.overall, comparison, gate, tuple(messages))

    def to_json(self) -> dict:
        return {"speakers": speakers_json(self.speakers), "overall": figures_json(self.overall),
                "comparison": self.comparison.to_json() if self.comparison else None,
                "gate": self.gate.to_json() if self.gate else None, "messages": list(self.messages)}

    @classmethod
    def from_json(cls, doc: dict) -> RunSummary:
        comparison = Comparison.from_json(doc["comparison"]) if doc.get("comparison") else None
        gate = GateVerdict.from_json(doc["gate"]) if doc.get("gate") else None
        return cls(speakers_from_json(doc.get("speakers", {})), figures_from_json(doc.get("overall", {})), comparison,
                   gate, tuple(doc.get("messages", ())))


@dataclass(frozen=True)
class RunEnvironment:
    """What made and scored the audio, so two runs can be judged comparable."""
    mode: str
    label: str | None
    source: str | None
    manifest_sha256: str | None
    gpt_sha256: str | None
    sovits_sha256: str | None
    encoder: str | None
    asr_model: str | None
    utmos_model: str | None
    normalizer: str | None
    seed: int | None
    n_boot: int | None
    device: str | None
    threads: int | None

    @classmethod
    def of(cls, run: EvalRun) -> RunEnvironment:
        return cls(*(getattr(run, f.name) for f in dataclasses.fields(cls)))

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ItemError:
    """A problem of one item (`item` is its key), or of the run as a whole (`item` None)."""
    item: str | None
    error: str

    def to_json(self) -> dict:
        return {"item": self.item, "error": self.error}


def item_json(item: EvalItem) -> dict:
    """An item as the result document shows it: every column but the run id."""
    doc = dataclasses.asdict(item)
    doc.pop("run_id")
    doc["flags"] = list(item.flags)
    return doc


@dataclass(frozen=True)
class EvaluationResult:
    """A finished run: its items, figures, comparison with the baseline run, gate verdict and errors."""
    run_id: str
    store: str
    environment: RunEnvironment
    items: tuple[EvalItem, ...]
    speakers: dict[str, Figures]
    overall: Figures
    comparison: Comparison | None
    gate: GateVerdict | None
    errors: tuple[ItemError, ...]
    # model mode: the run of the baseline checkpoints (a failed one too), None without them
    baseline: str | None = None
    # the run's HTML report: its path, or None when it failed to render; only shown once asked for
    report: str | None = None
    report_asked: bool = False

    def with_report(self, path: str | None) -> EvaluationResult:
        return dataclasses.replace(self, report=path, report_asked=True)

    def to_json(self) -> dict:
        doc = {"run_id": self.run_id, "store": self.store, "environment": self.environment.to_json(),
               "items": [item_json(it) for it in self.items],
               "speakers": speakers_json(self.speakers), "overall": figures_json(self.overall),
               "comparison": self.comparison.to_json() if self.comparison else None,
               "gate": self.gate.to_json() if self.gate else None, "errors": [e.to_json() for e in self.errors]}
        if self.environment.mode == "model":
            doc["baseline"] = self.baseline
        if self.report_asked:
            doc["report"] = self.report
        return doc


def load_result(store: Store, run_id: str) -> EvaluationResult:
    """A finished run as stored: its items and summary."""
    run = store.eval_run(run_id)
    if not run or run.status != "complete":
        raise UserError(f"run {run_id!r}: no finished run with that id (see `clonebench runs`)")
    items = store.eval_items(run_id)
    summary = RunSummary.from_json(run.summary)
    errors = [*(ItemError(it.item_key, it.error) for it in items if it.error),
              *(ItemError(None, m) for m in summary.messages)]
    return EvaluationResult(run_id, str(store.path), RunEnvironment.of(run), tuple(items), summary.speakers,
                            summary.overall, summary.comparison, summary.gate, tuple(errors))


# the overall figures a history line shows
LISTED = ("sim", "sim_o", "wer", "cer", "dnsmos_ovrl", "rtf")


@dataclass(frozen=True)
class RunListing:
    """One run in the history: what it scored, how it ended, its headline figures and gate outcome."""
    run_id: str
    created_at: str
    status: str
    mode: str
    label: str | None
    source: str | None
    n_items: int | None
    n_errors: int | None
    baseline_run: str | None
    encoder: str | None
    overall: dict[str, float]         # metric -> value, for the `LISTED` metrics the run has
    gate: str | None                  # 'passed' | 'failed' | None (not gated)

    @classmethod
    def of(cls, run: EvalRun) -> RunListing:
        summary = RunSummary.from_json(run.summary)
        gate = None if summary.gate is None else ("passed" if summary.gate.passed else "failed")
        return cls(run.run_id, str(run.created_at), run.status, run.mode, run.label, run.source, run.n_items,
                   run.n_errors, run.baseline_run, run.encoder,
                   {m: summary.overall[m].value for m in LISTED if m in summary.overall}, gate)

    def to_json(self) -> dict:
        return dataclasses.asdict(self)
