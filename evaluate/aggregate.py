"""Per-speaker and overall figures with confidence intervals, and paired comparison with a
baseline run.

Items are `store.EvalItem` records (the rows of `eval_items`). A metric is either:
- `mean`: the mean of an item column (items where it is missing are left out), or
- `rate`: a corpus-level error rate, sum of errors over sum of reference tokens, from the
  stored alignment counts (`wer` from hits/subs/dels/ins, `cer` from the char_* counts).
`wer` is the corpus WER (what Seed-TTS-eval calls WER is the mean of per-utterance WERs: that is
`wer_utt_mean` here). The two differ when long utterances fare differently from short ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clonebench.store import EvalItem, EvalRun

from .figures import Comparison, Figure, RunFigures
from .stats import ratio_bootstrap, two_stage_bootstrap, verdict


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "mean" | "rate"
    higher_is_better: bool
    column: str  # item column (mean) or count-column prefix (rate: "" or "char_")
    depends_on: str | None = None  # run field that must match for two runs to be comparable


METRICS = [
    Metric("sim", "mean", True, "sim", "encoder"),
    Metric("sim_o", "mean", True, "sim_o", "encoder"),
    Metric("wer", "rate", False, "", "asr_model"),
    Metric("cer", "rate", False, "char_", "asr_model"),
    Metric("wer_utt_mean", "mean", False, "wer", "asr_model"),
    Metric("dnsmos_ovrl", "mean", True, "dnsmos_ovrl"),
    Metric("dnsmos_sig", "mean", True, "dnsmos_sig"),
    Metric("dnsmos_bak", "mean", True, "dnsmos_bak"),
    Metric("utmos", "mean", True, "utmos", "utmos_model"),
    Metric("rtf", "mean", False, "rtf", "device"),
    Metric("ttfa_s", "mean", False, "ttfa_s", "device"),
]
BY_NAME = {m.name: m for m in METRICS}


def _num_den(metric: Metric, items: list[EvalItem]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item numerator and denominator of the metric (items without the metric dropped)."""
    if metric.kind == "rate":
        p = metric.column
        rows = [r for r in items if getattr(r, p + "hits") is not None]
        num = [_errors(r, p) for r in rows]
        den = [_ref_len(r, p) for r in rows]
        return np.array(num, float), np.array(den, float)
    vals = [getattr(r, metric.column) for r in items if _present(getattr(r, metric.column))]
    return np.array(vals, float), np.ones(len(vals))


def _errors(r: EvalItem, p: str) -> int:
    return getattr(r, p + "subs") + getattr(r, p + "dels") + getattr(r, p + "ins")


def _ref_len(r: EvalItem, p: str) -> int:
    return getattr(r, p + "hits") + getattr(r, p + "subs") + getattr(r, p + "dels")


def _present(v) -> bool:
    return v is not None and not (isinstance(v, float) and np.isnan(v))


def _by_speaker(items: list[EvalItem]) -> dict[str, list[EvalItem]]:
    out: dict[str, list[EvalItem]] = {}
    for r in items:
        out.setdefault(r.speaker, []).append(r)
    return dict(sorted(out.items()))


def aggregate(items: list[EvalItem], n_boot: int, seed: int) -> RunFigures:
    """Each metric per speaker and overall, over the items that were scored."""
    ok = [r for r in items if r.status != "error"]
    speakers = _by_speaker(ok)
    by_speaker: dict[str, dict[str, Figure]] = {s: {} for s in speakers}
    overall: dict[str, Figure] = {}
    for m in METRICS:
        per = {s: _num_den(m, rows) for s, rows in speakers.items()}
        for s, (num, den) in per.items():
            est = ratio_bootstrap(num, den, n_boot, seed)
            if est:
                by_speaker[s][m.name] = Figure.of(est)
        est = two_stage_bootstrap(list(per.values()), n_boot, seed)  # speakers, then their items
        if est:
            overall[m.name] = Figure.of(est)
    return RunFigures(by_speaker, overall)


def _paired(metric: Metric, new: list[EvalItem], base: list[EvalItem]) -> tuple[np.ndarray, np.ndarray]:
    """Per-item numerator/denominator of the *difference* new - base over items both runs have."""
    if metric.kind == "rate":
        p = metric.column
        pairs = [(a, b) for a, b in zip(new, base)
                 if getattr(a, p + "hits") is not None and getattr(b, p + "hits") is not None]
        num = [_errors(a, p) - _errors(b, p) for a, b in pairs]
        # the same text gives the same reference length in both runs
        den = [_ref_len(a, p) for a, _ in pairs]
        return np.array(num, float), np.array(den, float)
    c = metric.column
    diffs = [getattr(a, c) - getattr(b, c) for a, b in zip(new, base)
             if _present(getattr(a, c)) and _present(getattr(b, c))]
    return np.array(diffs, float), np.ones(len(diffs))


def compare(new_run: EvalRun, new_items: list[EvalItem], base_run: EvalRun, base_items: list[EvalItem],
            n_boot: int, seed: int) -> Comparison:
    """Paired bootstrap of new - baseline on the items both runs scored (matched by item key).

    Metrics whose producer differs between the runs (another speaker encoder, ASR model, device)
    are not compared; they are listed under `not_compared` with the reason.
    """
    base_by_key = {r.item_key: r for r in base_items if r.status != "error"}
    pairs = [(r, base_by_key[r.item_key]) for r in new_items if r.status != "error" and r.item_key in base_by_key]
    by_spk: dict[str, list[tuple[EvalItem, EvalItem]]] = {}
    for a, b in pairs:
        by_spk.setdefault(a.speaker, []).append((a, b))
    by_spk = dict(sorted(by_spk.items()))
    speakers: dict[str, dict[str, Figure]] = {s: {} for s in by_spk}
    overall: dict[str, Figure] = {}
    not_compared: dict[str, str] = {}
    for m in METRICS:
        if m.depends_on and getattr(new_run, m.depends_on) != getattr(base_run, m.depends_on):
            not_compared[m.name] = (f"{m.depends_on} differs: {getattr(base_run, m.depends_on)!r} in the baseline, "
                                    f"{getattr(new_run, m.depends_on)!r} now")
            continue
        per = {}
        for s, ps in by_spk.items():
            per[s] = _paired(m, [a for a, _ in ps], [b for _, b in ps])
            est = ratio_bootstrap(*per[s], n_boot, seed)
            if est:
                speakers[s][m.name] = Figure.of(est, verdict(est, m.higher_is_better))
        est = two_stage_bootstrap(list(per.values()), n_boot, seed)  # speakers, then their items
        if est:
            overall[m.name] = Figure.of(est, verdict(est, m.higher_is_better))
    return Comparison(base_run.run_id, len(pairs), speakers, overall, not_compared)
