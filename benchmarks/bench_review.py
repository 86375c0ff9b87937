"""The review page at 500 clips (and more): server time, first paint, the table drawn, filtering,
sorting and one review's round trip, in headless Chromium. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_review.py [--clips 500 2000] [--loads 5] [--acts 20]

A store built by `testing.review_store` (one speaker, 1 s clips cut from one recording, a fifth
rejected by the rules), a real `clonebench review` server, Debian's chromium through selenium.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import browser  # noqa: E402
from conftest import start_server  # noqa: E402

from clonebench.testing.review_store import build  # noqa: E402

TIMING = """
    var nav = performance.getEntriesByType('navigation')[0], paint = performance.getEntriesByName('first-contentful-paint')[0],
        drawn = performance.getEntriesByName('rows-drawn')[0];
    return {response_end: nav.responseEnd, fcp: paint ? paint.startTime : null, drawn: drawn ? drawn.startTime : null,
            loaded: nav.loadEventEnd, rows: document.querySelectorAll('#rows tr').length, bytes: nav.transferSize};"""


def med(xs):
    return statistics.median(xs)


def one_size(n: int, loads: int, acts: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        db = build(Path(tmp) / "store", speakers=("many",), clips=n, reject_every=5, clip_s=1.0)
        built = time.perf_counter() - t0
        proc, base = start_server("--db", str(db), command="review")
        d = browser()
        try:
            server = []
            for _ in range(loads):
                t = time.perf_counter()
                html = httpx.get(f"{base}/speakers/many", timeout=60)
                server.append(time.perf_counter() - t)
            pages = []
            for _ in range(loads):
                d.get("about:blank")
                d.get(f"{base}/speakers/many")
                for _ in range(200):
                    got = d.execute_script(TIMING)
                    if got["fcp"] is not None and got["drawn"] is not None and got["loaded"]:
                        break
                    time.sleep(0.05)
                assert got["rows"] == n, got
                pages.append(got)
            filters = {}
            for name in ("rejected", "unreviewed", "lowconf", ""):
                ms = []
                for _ in range(5):
                    d.execute_script("window.__review.filter(arguments[0])", name)
                    ms.append(d.execute_script("return window.__lastFilterMs"))
                filters[name or "all"] = med(ms)
            sort_ms = []
            for _ in range(4):
                t = d.execute_script("var t = performance.now(); document.querySelector(\"th[data-key='snr_db']\").click();"
                                     "return performance.now() - t;")
                sort_ms.append(t)
            version, round_trips = 0, []
            for k in range(acts):
                body = {"action": "reject", "reason": "noise", "version": version} if k % 2 == 0 else \
                    {"action": "undo", "version": version}
                t = time.perf_counter()
                r = httpx.post(f"{base}/api/clips/many-0001/review", json=body, timeout=60)
                round_trips.append(time.perf_counter() - t)
                assert r.status_code == 200, r.text
                version = r.json()["clip"]["version"]
        finally:
            d.quit()
            proc.terminate()
            proc.wait(10)
    return {"clips": n, "build_s": built, "html_kb": len(html.content) / 1024, "server_ms": 1000 * med(server),
            "response_end_ms": med([p["response_end"] for p in pages]), "fcp_ms": med([p["fcp"] for p in pages]),
            "drawn_ms": med([p["drawn"] for p in pages]), "load_ms": med([p["loaded"] for p in pages]),
            "filter_ms": filters, "sort_ms": med(sort_ms), "act_ms": 1000 * med(round_trips),
            "act_p95_ms": 1000 * sorted(round_trips)[int(0.95 * (len(round_trips) - 1))]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, nargs="+", default=[500, 2000])
    ap.add_argument("--loads", type=int, default=5)
    ap.add_argument("--acts", type=int, default=20)
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_version()}, {__import__('os').cpu_count()} cores")
    print("| clips | page KB | server ms | first paint ms | table drawn ms | load ms | filter ms (rejected / unreviewed / "
          "low conf / all) | sort ms | review round trip ms (median / p95) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in a.clips:
        r = one_size(n, a.loads, a.acts)
        f = r["filter_ms"]
        print(f"| {n} | {r['html_kb']:.0f} | {r['server_ms']:.0f} | {r['fcp_ms']:.0f} | {r['drawn_ms']:.0f} | "
              f"{r['load_ms']:.0f} | {f['rejected']:.1f} / {f['unreviewed']:.1f} / {f['lowconf']:.1f} / {f['all']:.1f} | "
              f"{r['sort_ms']:.0f} | {r['act_ms']:.0f} / {r['act_p95_ms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
