"""The voice service's report: latency, time to first audio and RTF over time, requests per
speaker, refusals and errors, from the request log (`<store folder>/serve-log.duckdb`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from clonebench.core.config import data_root_for

from . import plots
from .html import render


def default_out(db: Path) -> Path:
    return data_root_for(db) / "reports" / "serve.html"


def serve_report(db: Path, out: Path | None = None) -> Path:
    from clonebench.store.servelog import ServeLog

    out = Path(out) if out else default_out(db)
    log = ServeLog(data_root_for(db) / "serve-log.duckdb", read_only=True)
    try:
        rows = log.records()
    finally:
        log.close()
    ok = [r for r in rows if r.status == 200]
    charts = []
    if ok:
        x = list(range(1, len(ok) + 1))
        queue = [r.queue_wait_s or 0.0 for r in ok]
        total = [(r.queue_wait_s or 0.0) + (r.synth_s or 0.0) for r in ok]
        charts.append(plots.lines({"queue wait + synthesis": (x, total), "queue wait": (x, queue)},
                                  "latency per request (s)", xlabel="request"))
        charts.append(plots.lines({"time to first audio": (x, [r.ttfa_s or 0.0 for r in ok])},
                                  "time to first audio (s)", xlabel="request"))
        rtf = [(i, r.rtf) for i, r in zip(x, ok) if r.rtf is not None]
        if rtf:
            charts.append(plots.lines({"RTF": ([i for i, _ in rtf], [v for _, v in rtf])}, "real-time factor",
                                      xlabel="request"))
        charts.append(plots.bars(dict(Counter(str(r.batch_size) for r in ok)), "requests by largest batch", "requests"))
    by_speaker: dict[str, dict] = {}
    for r in rows:
        s = by_speaker.setdefault(r.speaker or "?", {"speaker": r.speaker or "?", "ok": 0, "refused": 0, "audio_s": 0.0})
        if r.status == 200:
            s["ok"] += 1
            s["audio_s"] += r.audio_s or 0.0
        else:
            s["refused"] += 1
    statuses = Counter(r.status for r in rows)
    failures = [r for r in rows if r.status != 200][-50:]
    audio = sum(r.audio_s or 0.0 for r in ok)
    return render("serve.html.j2", out, rows=rows, ok=len(ok), statuses=sorted(statuses.items()), charts=charts,
                  speakers=sorted(by_speaker.values(), key=lambda s: s["speaker"]), failures=failures,
                  audio_s=audio, checkpoints=sorted({(r.gpt_sha256[:12], r.sovits_sha256[:12]) for r in rows}))
