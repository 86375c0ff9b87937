"""The voice service's report, from the request log (`<store folder>/serve-log.duckdb`): latency
and time to first audio over wall-clock time, streamed and whole requests apart; a summary table;
refusals by status and endpoint; requests per speaker; the checkpoints that served them.

Definitions (the page says them too):

- time axis: minutes since the log's first request (`received_at`);
- over time: fixed bins of wall-clock time, the narrowest of `BIN_WIDTHS_S` (10 s, 15 s, 30 s,
  1 min, ...) that cuts the log into at most `MAX_BINS` = 30 bins; each point is the p50 or p95 of
  the served requests received in its bin, drawn at the bin's centre; a bin with none has no point;
- latency: from receipt to the last byte (`latency_s`; a log written before it was recorded
  gives queue wait + synthesis, which leaves out admission: the front end and voice look-up);
- time to first audio (TTFA): from receipt to the first audio bytes of a streamed request;
- streamed: the log's `streamed` column is true; every other served request counts as whole;
- percentiles: numpy's default (linear interpolation).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clonebench.core.config import data_root_for

from . import plots
from .html import render

BIN_WIDTHS_S = (10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_BINS = 30
PERCENTILES = (50, 95, 99)


def default_out(db: Path) -> Path:
    return data_root_for(db) / "reports" / "serve.html"


def latency_s(r) -> float | None:
    """From receipt to the last byte; a log from before that was recorded gives queue wait +
    synthesis. None when the request never reached the worker."""
    if r.latency_s is not None and r.queue_wait_s is not None:
        return r.latency_s
    if r.queue_wait_s is None or r.synth_s is None:
        return None
    return r.queue_wait_s + r.synth_s


def bin_width_s(span_s: float) -> float:
    """The narrowest of `BIN_WIDTHS_S` that cuts `span_s` into at most `MAX_BINS` bins."""
    fits = [w for w in BIN_WIDTHS_S if int(span_s // w) + 1 <= MAX_BINS]
    return float(fits[0] if fits else BIN_WIDTHS_S[-1] * (int(span_s // (BIN_WIDTHS_S[-1] * MAX_BINS)) + 1))


def percentiles(values: list[float]) -> dict[str, float | None]:
    """{'p50': .., 'p95': .., 'p99': ..}; None for each when there is no value."""
    if not values:
        return {f"p{p}": None for p in PERCENTILES}
    return {f"p{p}": float(v) for p, v in zip(PERCENTILES, np.percentile(np.asarray(values, float), PERCENTILES))}


def _binned(points: list[tuple[float, float]], width: float, qs: tuple[int, ...] = (50, 95)
            ) -> dict[int, tuple[list[float], list[float]]]:
    """(seconds since the first request, value) -> {q: (bin centres in minutes, q-th percentile)}."""
    bins: dict[int, list[float]] = {}
    for t, v in points:
        bins.setdefault(int(t // width), []).append(v)
    out: dict[int, tuple[list[float], list[float]]] = {q: ([], []) for q in qs}
    for k in sorted(bins):
        values = np.percentile(np.asarray(bins[k], float), qs)
        for q, v in zip(qs, values):
            out[q][0].append((k + 0.5) * width / 60)
            out[q][1].append(float(v))
    return out


def serve_report(db: Path, out: Path | None = None) -> Path:
    from clonebench.store.servelog import ServeLog

    out = Path(out) if out else default_out(db)
    log = ServeLog(data_root_for(db) / "serve-log.duckdb", read_only=True)
    try:
        rows = log.records()
    finally:
        log.close()
    ok = [r for r in rows if r.status == 200]
    streamed = [r for r in ok if r.streamed is True]
    whole = [r for r in ok if r.streamed is not True]
    refused = [r for r in rows if r.status != 200]

    t_first = min((r.received_at for r in rows), default=None)

    def seconds(r) -> float:
        return (r.received_at - t_first).total_seconds()

    span = max((seconds(r) for r in rows), default=0.0)
    width = bin_width_s(span)
    xlabel = "minutes since the first request"

    charts = []
    if rows:
        for label, group in (("whole", whole), ("streamed", streamed)):
            b = _binned([(seconds(r), latency_s(r)) for r in group if latency_s(r) is not None], width)
            charts.append(plots.lines({"p50": b[50], "p95": b[95]}, f"latency, {label} requests (s)", xlabel,
                                      empty=f"no {label} request served"))
        b = _binned([(seconds(r), r.ttfa_s) for r in streamed if r.ttfa_s is not None], width)
        charts.append(plots.lines({"p50": b[50], "p95": b[95]}, "time to first audio, streamed (s)", xlabel,
                                  empty="no streamed request served"))
        b = _binned([(seconds(r), r.rtf) for r in ok if r.rtf is not None], width)
        charts.append(plots.lines({"p50": b[50], "p95": b[95]}, "real-time factor (synthesis s / audio s)",
                                  xlabel, empty="no RTF logged"))
        n_bins = int(span // width) + 1
        centres = [(k + 0.5) * width / 60 for k in range(n_bins)]
        per_status: dict[int, list[int]] = {}
        for r in refused:
            per_status.setdefault(r.status, [0] * n_bins)[int(seconds(r) // width)] += 1
        charts.append(plots.lines({str(s): (centres, per_status[s]) for s in sorted(per_status)},
                                  f"requests not served, per {width:.0f} s", xlabel, empty="none refused"))
        batches = Counter(str(r.batch_size) for r in ok if r.batch_size is not None)
        charts.append(plots.bars(dict(batches), "served requests by largest batch", "requests") if batches
                      else plots.lines({}, "served requests by largest batch", "", empty="no batch logged"))

    summary = []
    for label, group in (("streamed", streamed), ("whole", whole)):
        summary.append({"kind": label, "served": len(group),
                        "latency": percentiles([v for v in map(latency_s, group) if v is not None]),
                        "ttfa": percentiles([r.ttfa_s for r in group if r.ttfa_s is not None])})

    by_status = Counter((r.status, r.endpoint) for r in refused)
    last_error = {(r.status, r.endpoint): r.error for r in refused}
    refusals = [{"status": s, "endpoint": e, "count": n, "error": last_error[(s, e)]}
                for (s, e), n in sorted(by_status.items(), key=lambda kv: (kv[0][0], str(kv[0][1])))]

    by_speaker: dict[str, dict] = {}
    for r in rows:
        s = by_speaker.setdefault(r.speaker or "?", {"speaker": r.speaker or "?", "ok": 0, "refused": 0, "audio_s": 0.0})
        if r.status == 200:
            s["ok"] += 1
            s["audio_s"] += r.audio_s or 0.0
        else:
            s["refused"] += 1
    statuses = Counter(r.status for r in rows)
    failures = refused[-50:]
    audio = sum(r.audio_s or 0.0 for r in ok)
    return render("serve.html.j2", out, rows=rows, ok=len(ok), statuses=sorted(statuses.items()), charts=charts,
                  summary=summary, refusals=refusals, bin_s=width, span_min=span / 60,
                  started=t_first, speakers=sorted(by_speaker.values(), key=lambda s: s["speaker"]),
                  failures=failures, audio_s=audio,
                  checkpoints=sorted({(r.gpt_sha256[:12], r.sovits_sha256[:12]) for r in rows}))

