"""`clonebench report serve` from a real request log (a DuckDB file written by `ServeLog`): every
number on the page recomputed here with numpy, hostile text escaped, the figures counted."""

from __future__ import annotations

from datetime import datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest

from clonebench.reports.serving import serve_report
from clonebench.store.servelog import ServeLog, SynthesisRecord

T0 = datetime(2025, 3, 1, 9, 30, 0)
HOSTILE = "<script>window.__xss = 1</script>"
FIGURES = 6          # latency whole, latency streamed, TTFA, RTF, not served per bin, batch sizes


class Tables(HTMLParser):
    """The text of every cell of every <table id=...>: {id: [[cell, ...], ...]} (body rows only)."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._row = self._cell = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id")
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def tables(html: str) -> dict[str, list[list[str]]]:
    p = Tables()
    p.feed(html)
    return p.tables


def record(k: int, t_s: float, status: int = 200, streamed: bool | None = False, endpoint: str = "/v1/tts",
           speaker: str = "alice", queue: float | None = None, synth: float | None = None, ttfa: float | None = None,
           error: str | None = None) -> SynthesisRecord:
    served = status == 200
    return SynthesisRecord(
        request_id=f"r{k:04d}", received_at=T0 + timedelta(seconds=t_s), endpoint=endpoint, speaker=speaker,
        lang="en", chars=40, sentences=2 if served else 0, audio_s=2.5 if served else None,
        queue_wait_s=queue, synth_s=synth, rtf=synth / 2.5 if synth else None, ttfa_s=ttfa,
        batch_size=1 + k % 4 if served else None, status=status, error=error, gpt_sha256="a" * 64,
        sovits_sha256="b" * 64, streamed=streamed, format="pcm" if streamed else "wav", seed=k,
        latency_s=queue + synth + 0.04 * (k % 3) if served else 0.01)   # admission time on top of queue + synthesis


@pytest.fixture(scope="module")
def served_log(tmp_path_factory):
    """100 served requests (60 whole, 40 streamed) over five minutes, and 8 that were not."""
    root = tmp_path_factory.mktemp("servelog")
    db = root / "store" / "clonebench.duckdb"          # the report reads <folder of the store>/serve-log.duckdb
    rng = np.random.default_rng(7)
    rows = []
    for k in range(100):
        streamed = k % 5 in (1, 3)
        queue, synth = float(rng.uniform(0, 0.5)), float(rng.uniform(0.2, 3.0) + (k / 100))   # slower later on
        ttfa = float(queue + synth * rng.uniform(0.2, 0.5)) if streamed else queue + synth
        rows.append(record(k, t_s=3.0 * k, streamed=streamed, speaker="alice" if k % 3 else "bob",
                           queue=queue, synth=synth, ttfa=ttfa))
    refusals = [(401, "/v1/tts", None, "missing or wrong API key (send Authorization: Bearer KEY)"),
                (401, "/v1/tts", None, "missing or wrong API key (send Authorization: Bearer KEY)"),
                (401, "/v1/audio/speech", None, "missing or wrong API key (send Authorization: Bearer KEY)"),
                (413, "/v1/tts", None, "request body over 65536 bytes"),
                (413, "/v1/audio/speech", False, "text is 300 characters"),
                (422, "/v1/tts", None, "the body is not valid JSON"),
                (422, "/v1/tts", False, f"unreadable text {HOSTILE}"),
                (499, "/v1/tts", True, "client disconnected")]
    for j, (status, endpoint, streamed, error) in enumerate(refusals):
        rows.append(record(1000 + j, t_s=20.0 + 35.0 * j, status=status, streamed=streamed, endpoint=endpoint,
                           speaker=HOSTILE if j == 6 else "alice", error=error))
    log = ServeLog(db.parent / "serve-log.duckdb")
    for r in rows:
        log.write(r)
    log.close()
    out = serve_report(db, root / "serve.html")
    return {"rows": rows, "html": out.read_text(encoding="utf-8")}


def test_banner_and_figures(served_log):
    html = served_log["html"]
    assert "100 of 108 requests served" in html
    assert html.count("<figure>") == FIGURES
    assert "minutes since the first request" in html and "bin of 10 s" in html   # 297 s: 30 bins of 10 s
    assert "200: 100" in html and "401: 3" in html and "413: 2" in html and "422: 2" in html and "499: 1" in html


def test_summary_table_matches_numpy(served_log):
    rows = served_log["rows"]
    got = {r[0]: r[1:] for r in tables(served_log["html"])["summary"]}
    assert set(got) == {"streamed", "whole"}
    for kind in ("streamed", "whole"):
        group = [r for r in rows if r.status == 200 and (r.streamed is True) == (kind == "streamed")]
        latency = np.array([r.latency_s for r in group])
        ttfa = np.array([r.ttfa_s for r in group])
        expect = [str(len(group))] + [f"{np.percentile(latency, q):.3f}" for q in (50, 95, 99)]
        expect += [f"{np.percentile(ttfa, q):.3f}" for q in (50, 95, 99)] if kind == "streamed" else ["–"] * 3
        assert got[kind] == expect, kind
    assert got["streamed"][0] == "40" and got["whole"][0] == "60"


def test_refusals_by_status_and_endpoint(served_log):
    got = {(int(r[0]), r[1]): int(r[2]) for r in tables(served_log["html"])["refusals"]}
    assert got == {(401, "/v1/tts"): 2, (401, "/v1/audio/speech"): 1, (413, "/v1/tts"): 1,
                   (413, "/v1/audio/speech"): 1, (422, "/v1/tts"): 2, (499, "/v1/tts"): 1}
    failures = tables(served_log["html"])["failures"]
    assert len(failures) == 8 and [int(r[3]) for r in failures] == [401, 401, 401, 413, 413, 422, 422, 499]


def test_speakers_table(served_log):
    rows = served_log["rows"]
    got = {r[0]: r[1:] for r in tables(served_log["html"])["speakers"]}
    bob = [r for r in rows if r.speaker == "bob"]
    assert got["bob"] == [str(len(bob)), "0", f"{2.5 * len(bob):.1f}"]
    assert got[HOSTILE][:2] == ["0", "1"]                       # the parser unescapes: the page had it escaped


def test_hostile_text_is_escaped(served_log):
    html = served_log["html"]
    assert HOSTILE not in html and "<script>window" not in html
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html


def test_a_log_with_nothing_served(tmp_path):
    db = tmp_path / "store" / "clonebench.duckdb"
    log = ServeLog(db.parent / "serve-log.duckdb")
    for k in range(3):
        log.write(record(k, t_s=10.0 * k, status=401, streamed=None, error="missing or wrong API key"))
    log.close()
    html = serve_report(db, tmp_path / "serve.html").read_text(encoding="utf-8")
    assert "0 of 3 requests served" in html and html.count("<figure>") == FIGURES
    assert "no whole request served" in html and "no streamed request served" in html
    summary = {r[0]: r[1:] for r in tables(html)["summary"]}
    assert summary["whole"] == ["0", "–", "–", "–", "–", "–", "–"]
