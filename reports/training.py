"""The training report: loss curves per stage, learning rate, throughput, validation figures,
and the checkpoints the run exported with the evaluation runs made on them."""

from __future__ import annotations

from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.store import Store

from . import plots
from .html import render


def default_out(db: Path, run_name: str) -> Path:
    from clonebench.core.config import data_root_for

    return data_root_for(db) / "reports" / f"training-{run_name}.html"


def training_report(db: Path, run_name: str, out: Path | None = None) -> Path:
    out = Path(out) if out else default_out(db, run_name)
    with Store(db, read_only=True) as store:
        run = store.train_run(run_name)
        if run is None:
            raise UserError(f"training run {run_name!r} is not in {db} (see the train_runs table)")
        steps = store.train_steps(run_name)
        ckpts = store.checkpoints(run_name)
        evals = store.eval_runs(complete_only=True, checkpoints=[c.sha256 for c in ckpts])
    by_stage: dict[str, list[dict]] = {}
    for r in steps:
        by_stage.setdefault(r.stage, []).append({"step": r.step, "epoch": r.epoch, "losses": r.losses, "lr": r.lr,
                                                 "samples_per_s": r.samples_per_s})
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
    evals = [{"run_id": e.run_id, "label": e.label, "created_at": e.created_at,
              "figures": {m: f["value"] for m, f in e.summary.get("overall", {}).items()
                          if m in ("sim", "wer", "cer", "dnsmos_ovrl", "rtf")}} for e in evals]
    final = {stage: rows[-1] for stage, rows in by_stage.items()}
    return render("training.html.j2", out, run=run, config=run.config, charts=charts,
                  checkpoints=ckpts, evals=evals, final=final)
