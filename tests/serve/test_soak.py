"""Two minutes of mixed, partly hostile traffic against a real `clonebench serve` (benchmarks/soak_serve.py):
every request is one row of the request log, memory levels off, no 5xx, no empty audio, every hostile
request refused with its status."""

from __future__ import annotations

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import soak_serve  # noqa: E402


def test_a_two_minute_soak_is_clean(tmp_path):
    out = tmp_path / "soak.json"
    summary = soak_serve.main(["--minutes", "2", "--clients", "8", "--preset", "tiny", "--json", str(out)])
    assert soak_serve.check(summary) == []
    ran = {kind: sum(statuses.values()) for kind, statuses in summary.counts.items()}
    assert set(ran) == set(soak_serve.KINDS) and min(ran.values()) >= 1, ran
    assert summary.log["rows"] == summary.log["sent"] == len(summary.outcomes)
    assert summary.modes["streamed"]["n"] > 0 and summary.modes["whole"]["n"] > 0
    assert summary.modes["streamed"]["ttfa"]["p50"] <= summary.modes["streamed"]["latency"]["p50"]
    doc = json.loads(out.read_text())
    assert doc["log"]["rows"] == summary.log["rows"] and len(doc["outcomes"]) == len(summary.outcomes)
    assert doc["rss"]["plateau"] is True and len(doc["rss"]["samples"]) >= 20      # a sample every 5 s
