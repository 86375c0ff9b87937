"""The dataset overview: every speaker's enrolment status, accepted and rejected seconds, accept
rate, and how often each rejection reason occurred, with links to the speaker reports."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from clonebench.core.config import data_root_for
from clonebench.store import Store

from . import plots
from .html import render


def default_out(db: Path) -> Path:
    return data_root_for(db) / "reports" / "dataset.html"


def dataset_report(db: Path, out: Path | None = None) -> Path:
    from clonebench.curate.rules import ADVICE, RuleSet

    out = Path(out) if out else default_out(db)
    with Store(db, read_only=True) as store:
        # speaker reports live beside this one by default
        reviewed = store.review_counts()
        speakers = [{**asdict(t), "accept_rate": t.accepted / t.clips if t.clips else None, "report": f"{t.speaker}.html",
                     **{k: reviewed.get(t.speaker, {}).get(k, 0) for k in ("reviewed", "overruled")}}
                    for t in store.speaker_totals()]
        reasons = store.reason_totals()
    names = {k: v[0] for k, v in ADVICE.items()}
    chart = plots.bars({r["reason"]: r["clips"] for r in reasons}, "rejected clips per reason", "clips") if reasons else None
    totals = {"speakers": len(speakers), "ready": sum(s["status"] == "ready" for s in speakers),
              "clips": sum(s["clips"] for s in speakers), "accepted_s": sum(s["accepted_s"] for s in speakers),
              "rejected_s": sum(s["rejected_s"] for s in speakers), "reviewed": sum(s["reviewed"] for s in speakers),
              "overruled": sum(s["overruled"] for s in speakers)}
    return render("dataset.html.j2", out, speakers=speakers, reasons=reasons, reason_names=names, chart=chart,
                  totals=totals, goal_s=RuleSet.load().enrolment.min_accepted_s)
