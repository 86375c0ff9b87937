"""What `vet` returns: frozen records whose `to_json()` is the `--json` document the README
describes, key for key and in the same order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from clonebench.store import Enrolment

if TYPE_CHECKING:
    from .cluster import ClusterRun


@dataclass(frozen=True)
class SourceError:
    """An input that could not be used (a file, a transcript line, a list line), and why."""
    source: str
    error: str  # one line, naming the source

    def to_json(self) -> dict:
        return {"source": self.source, "error": self.error}


@dataclass(frozen=True)
class ClipResult:
    """One clip's verdict under the run's rule set, its metrics (rounded) and its text."""
    clip_id: str
    source: str
    start_s: float
    end_s: float
    status: str | None             # 'accepted' | 'rejected'; None while undecided
    reasons: tuple[str, ...]       # most likely cause first
    flags: tuple[str, ...]         # weak evidence for a person to check (`curate.rules.FLAGS`); not rejections
    metrics: dict[str, float | None]
    text: str
    text_source: str | None        # 'reviewed', 'given', 'asr' or None
    machine_status: str | None = None        # the rules' verdict; differs from `status` where a person overruled it
    machine_reasons: tuple[str, ...] = ()
    reviewed_by: str | None = None           # whose verdict `status` is (None: the rules')
    conflict: str | None = None              # the rules changed their verdict since the person decided

    def to_json(self) -> dict:
        return {"clip_id": self.clip_id, "source": self.source, "start_s": self.start_s, "end_s": self.end_s,
                "status": self.status, "reasons": list(self.reasons), "flags": list(self.flags),
                "metrics": dict(self.metrics),
                "text": self.text, "text_source": self.text_source, "machine_status": self.machine_status,
                "machine_reasons": list(self.machine_reasons), "reviewed_by": self.reviewed_by,
                "conflict": self.conflict}


@dataclass(frozen=True)
class VetResult:
    """One speaker's vetting: the store's state for the speaker after the run."""
    speaker: str
    rule_set: str
    enrollment: Enrolment
    clips: tuple[ClipResult, ...]
    warnings: tuple[str, ...]
    errors: tuple[SourceError, ...] | None  # None inside a `VetListResult`, which reports them once for all
    store: str
    reports: tuple[str, ...] | None = None  # None: no report was asked for
    cluster: "ClusterRun | None" = None     # a `--ray` run's summary

    def to_json(self) -> dict:
        e = self.enrollment
        doc = {"speaker": self.speaker, "rule_set": self.rule_set,
               "enrollment": {"status": e.status, "accepted_s": e.accepted_s, "rejected_s": e.rejected_s,
                              "advice": list(e.advice)},
               "clips": [c.to_json() for c in self.clips], "warnings": list(self.warnings)}
        if self.errors is not None:
            doc["errors"] = [x.to_json() for x in self.errors]
        doc["store"] = self.store
        if self.reports is not None:
            doc["reports"] = list(self.reports)
        if self.cluster is not None:
            doc["ray"] = self.cluster.to_json()
        return doc


@dataclass(frozen=True)
class VetListResult:
    """Every speaker of a GPT-SoVITS `.list`, vetted in one run."""
    speakers: tuple[VetResult, ...]
    errors: tuple[SourceError, ...]
    store: str
    reports: tuple[str, ...] | None = None
    cluster: "ClusterRun | None" = None     # a `--ray` run's summary

    def to_json(self) -> dict:
        doc = {"speakers": [s.to_json() for s in self.speakers], "errors": [x.to_json() for x in self.errors],
               "store": self.store}
        if self.reports is not None:
            doc["reports"] = list(self.reports)
        if self.cluster is not None:
            doc["ray"] = self.cluster.to_json()
        return doc
