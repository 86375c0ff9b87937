"""The evaluation report: one run's figures with 95 % intervals, the comparison with a baseline
as a forest plot with the gate verdict, the worst items with word diffs and players for the
reference, the baseline and the new audio side by side, and the environment."""

from __future__ import annotations

from pathlib import Path

from clonebench.core.config import data_root_for
from clonebench.core.errors import UserError
from clonebench.store import Store

from . import plots
from .html import audio_src, render
from .speaker import word_diff

# metric, label, digits; the order of every table and plot
SHOWN = [("sim", "SIM", 3), ("sim_o", "SIM-o", 3), ("wer", "WER (corpus)", 3), ("wer_utt_mean", "WER (mean per utt.)", 3),
         ("cer", "CER", 3), ("dnsmos_ovrl", "DNSMOS OVRL", 2), ("utmos", "UTMOS", 2), ("rtf", "RTF", 3),
         ("ttfa_s", "TTFA (s)", 3)]
WORST = 5


def default_out(db: Path, run_id: str, baseline: str | None) -> Path:
    name = f"eval-{run_id}" + (f"-vs-{baseline}" if baseline else "")
    return data_root_for(db) / "reports" / f"{name}.html"


def _figures(figures: dict) -> dict[str, dict]:
    """metric -> {value, lo, hi, n, label, digits}, in display order, for the metrics present."""
    return {m: {"label": label, "digits": d, **figures[m].to_json()} for m, label, d in SHOWN if figures.get(m)}


def eval_report(db: Path, run_id: str, baseline: str | None = None, out: Path | None = None,
                embed_audio: bool = False) -> Path:
    from clonebench.evaluate.aggregate import compare
    from clonebench.evaluate.result import item_json, load_result

    with Store(db, read_only=True) as store:
        result = load_result(store, run_id)
        baseline = baseline or (result.comparison.baseline_run if result.comparison else None)
        comparison, base_items = result.comparison, {}
        if baseline:
            base_run = store.eval_run(baseline)
            if not base_run or base_run.status != "complete":
                raise UserError(f"baseline run {baseline!r}: no finished run with that id (see `clonebench runs`)")
            base_items = {r.item_key: r for r in store.eval_items(baseline)}
            if not comparison or comparison.baseline_run != baseline:
                run = store.eval_run(run_id)
                comparison = compare(run, list(result.items), base_run, list(base_items.values()), run.n_boot, run.seed)
    out = Path(out) if out else default_out(db, run_id, baseline)

    forests = []
    if comparison:   # one small forest per metric, so each has its own scale: overall, then speakers
        for m, label, _ in SHOWN:
            rows = [(name, c.value, c.lo, c.hi, c.verdict)
                    for name, figures in [("overall", comparison.overall), *sorted(comparison.speakers.items())]
                    if (c := figures.get(m))]
            if rows:
                forests.append(plots.forest(rows, label))

    def item_view(r) -> dict:
        base = base_items.get(r.item_key)
        return {**item_json(r), "diff": word_diff(r.text, r.hyp_text or "", r.lang) if r.hyp_text is not None else [],
                "src": audio_src(r.path, out.parent, embed_audio) if r.path else None,
                "ref_src": audio_src(r.prompt_path, out.parent, embed_audio) if r.prompt_path else None,
                "base_src": audio_src(base.path, out.parent, embed_audio) if base and base.path else None,
                "base_wer": base.wer if base else None, "base_sim": base.sim if base else None}

    scored = [r for r in result.items if r.status != "error"]
    worst_wer = [item_view(r) for r in sorted((r for r in scored if r.wer is not None or r.cer is not None),
                                              key=lambda r: -(r.wer if r.wer is not None else r.cer))[:WORST]]
    worst_sim = [item_view(r) for r in sorted((r for r in scored if r.sim is not None), key=lambda r: r.sim)[:WORST]]
    return render(
        "evaluation.html.j2", out, run_id=run_id, doc=result, env=result.environment.to_json(),
        overall=_figures(result.overall).values(),
        speakers={s: _figures(f) for s, f in sorted(result.speakers.items())},
        comparison=comparison, baseline=baseline, forests=forests,
        gate=result.gate if comparison is result.comparison else None, worst_wer=worst_wer, worst_sim=worst_sim,
        shown=[s for s in SHOWN if any(s[0] in f for f in result.speakers.values())])
