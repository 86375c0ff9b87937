"""The training report: loss curves per stage, learning rate, throughput, validation figures,
and the checkpoints the run exported with the evaluation runs made on them."""

from __future__ import annotations

import json
from pathlib import Path

from clonebench.errors import UserError
from clonebench.store import Store

from . import plots
from .html import render


def default_out(db: Path, run_name: str) -> Path:
    from clonebench.config import data_root_for

    return data_root_for(db) / "reports" / f"training-{run_name}.html"


def training_report(db: Path, run_name: str, out: Path | None = None) -> Path:
    out = Path(out) if out else default_out(db, run_name)
    with Store(db, read_only=True) as store:
        runs = store.rows("SELECT * FROM train_runs WHERE run_name = ?", [run_name])
        if not runs:
            raise UserError(f"training run {run_name!r} is not in {db} (see the train_runs table)")
        steps = store.rows("SELECT stage, step, epoch, losses, lr, samples_per_s FROM train_steps "
                           "WHERE run_name = ? ORDER BY stage, step", [run_name])
        ckpts = store.rows("SELECT * FROM checkpoints WHERE run_name = ? ORDER BY stage, step", [run_name])
        evals = store.rows(
            """SELECT e.run_id, e.label, e.created_at, e.summary, e.gpt_sha256, e.sovits_sha256 FROM eval_runs e
               WHERE e.status = 'complete' AND (list_contains(?, e.gpt_sha256) OR list_contains(?, e.sovits_sha256))
               ORDER BY e.created_at""", [[c["sha256"] for c in ckpts], [c["sha256"] for c in ckpts]])
    run = runs[0]
    by_stage: dict[str, list[dict]] = {}
    for r in steps:
        by_stage.setdefault(r["stage"], []).append({**r, "losses": json.loads(r["losses"])})
    charts = []
    for stage in ("s2", "s1"):
        rows = by_stage.get(stage, [])
        if not rows:
            continue
        x = [r["step"] for r in rows]
        for name in rows[0]["losses"]:
            series = {"train": (x, [r["losses"][name] for r in rows])}
            val = by_stage.get(f"{stage}-val", [])
            if val and name in val[0]["losses"]:
                series["validation"] = ([r["step"] for r in val], [r["losses"][name] for r in val])
            charts.append(plots.lines(series, f"{stage} {name}"))
        charts.append(plots.lines({"lr": (x, [r["lr"] for r in rows])}, f"{stage} learning rate"))
        charts.append(plots.lines({"samples/s": (x, [r["samples_per_s"] for r in rows])}, f"{stage} throughput"))
    for e in evals:
        overall = json.loads(e.pop("summary") or "{}").get("overall", {})
        e["figures"] = {m: overall[m]["value"] for m in ("sim", "wer", "cer", "dnsmos_ovrl", "rtf") if m in overall}
    final = {stage: rows[-1] for stage, rows in by_stage.items()}
    return render("training.html.j2", out, run=run, config=json.loads(run["config"] or "{}"), charts=charts,
                  checkpoints=ckpts, evals=evals, final=final)
