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
        choice = store.chosen_checkpoint(run_name)
        epochs = _scored_epochs(store, ckpts, evals)
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
    chosen = choice.epoch if choice else None
    choosing = None
    if epochs:
        names = sorted({s for e in epochs.values() for s in e["speakers"]})
        curves = [plots.epochs({label: [(k, *_fig(e, label, m)) for k, e in sorted(epochs.items()) if _fig(e, label, m)]
                                for label in ["all", *names]}, title, chosen)
                  for m, title in (("sim", "speaker similarity (SIM) per epoch"), ("wer", "WER per epoch"))]
        choosing = {"curves": curves, "table": sorted(epochs.items()), "listen": _listen(epochs, out.parent),
                    "choice": choice.summary if choice else None, "rule": choice.rule if choice else None,
                    "chosen": chosen}
    return render("training.html.j2", out, run=run, config=run.config, charts=charts,
                  checkpoints=ckpts, evals=evals, final=final, choosing=choosing)


def _scored_epochs(store: Store, ckpts, evals) -> dict[int, dict]:
    """The newest evaluation of each GPT epoch the run exported: its figures and items."""
    gpt_epoch = {c.sha256: c.epoch for c in ckpts if c.kind == "gpt"}
    out: dict[int, dict] = {}
    for e in sorted(evals, key=lambda e: str(e.created_at)):
        if e.gpt_sha256 in gpt_epoch and e.mode == "model":
            out[gpt_epoch[e.gpt_sha256]] = {"run_id": e.run_id, "overall": e.summary.get("overall", {}),
                                            "speakers": e.summary.get("speakers", {}), "items": store.eval_items(e.run_id)}
    return out


def _fig(scored: dict, label: str, metric: str) -> tuple[float, float, float] | None:
    f = (scored["overall"] if label == "all" else scored["speakers"].get(label, {})).get(metric)
    return (f["value"], f["lo"], f["hi"]) if f else None


def _listen(epochs: dict[int, dict], folder: Path) -> dict[str, dict]:
    """Per speaker, one sentence every epoch said (the first such), with its audio at each epoch."""
    from .html import audio_src

    out = {}
    scored = sorted(epochs.items())
    speakers = sorted({i.speaker for _, e in scored for i in e["items"]})
    for speaker in speakers:
        keys = [{i.item_key: i for i in e["items"] if i.speaker == speaker and i.path} for _, e in scored]
        common = sorted(set.intersection(*(set(k) for k in keys))) if keys else []
        if not common:
            continue
        key = common[0]
        out[speaker] = {"text": keys[0][key].text, "audio": [
            (epoch, audio_src(k[key].path, folder, False) if Path(k[key].path).is_file() else None)
            for (epoch, _), k in zip(scored, keys)]}
    return out
