"""The trend report: each metric across finished evaluation runs in time order (overall, or one
speaker), with 95 % intervals, so a slow drift over many checkpoints is visible."""

from __future__ import annotations

from pathlib import Path

from clonebench.core.config import data_root_for
from clonebench.core.errors import UserError
from clonebench.store import Store

from . import plots
from .evaluation import SHOWN
from .html import render


def trend_report(db: Path, speaker: str | None = None, mode: str = "all", out: Path | None = None) -> Path:
    if mode not in ("all", "model", "audio"):
        raise UserError(f"--mode {mode!r}: use all, model or audio")
    out = Path(out) if out else data_root_for(db) / "reports" / (f"trend-{speaker}.html" if speaker else "trend.html")
    from clonebench.evaluate.result import RunSummary

    with Store(db, read_only=True) as store:
        runs = store.eval_runs(complete_only=True, mode=mode)
    rows = []
    for run in runs:
        summary = RunSummary.from_json(run.summary)
        figures = summary.speakers.get(speaker) if speaker else summary.overall
        if figures:
            rows.append({"run": run, "figures": figures, "name": run.label or run.run_id})
    if not rows:
        raise UserError("no finished evaluation runs" + (f" with speaker {speaker!r}" if speaker else "") +
                        f" in {db}: run `clonebench evaluate` first")
    charts = []
    for m, label, _ in SHOWN:
        pts = [(r["name"][:24], f.value, f.lo, f.hi) for r in rows if (f := r["figures"].get(m))]
        if pts:
            charts.append(plots.trend(pts, label))
    shown = [s for s in SHOWN if any(s[0] in r["figures"] for r in rows)]
    return render("trend.html.j2", out, rows=rows, charts=charts, speaker=speaker, mode=mode, shown=shown)
