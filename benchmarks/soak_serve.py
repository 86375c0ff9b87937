"""Soak test of `clonebench serve`: minutes of mixed, partly hostile traffic against a real server,
then the request log checked against what was sent. Prints figures; `check(summary)` returns the
failures (the CI test, tests/serve/test_soak.py, asserts there are none).

    python benchmarks/soak_serve.py [--minutes 10] [--clients 16] [--preset tiny] [--db STORE]
                                    [--json OUT] [--seed 0]

A real server (`clonebench serve --api-keys FILE`) is started on a free loopback port with
random-weight `--preset` model files; without --db a store is made by vetting 75 s of a real voice
(`bench_serve.make_store`). Then:

1. warm-up: every request kind below once, one after another (so every kind runs);
2. load: `--clients` threads (8-32) for `--minutes`, each looping over a request kind drawn at
   random (one `random.Random(seed, client)` per client) with these weights, in percent:

   kind             %   what                                                           client expects
   tts_wav         22   POST /v1/tts, whole WAV                                        200
   tts_stream      22   POST /v1/tts stream=true, pcm (TTFA: time to first body byte)  200
   openai_pcm      10   OpenAI client, audio.speech streaming pcm (24 kHz)             200
   openai_sse       8   OpenAI client, stream_format="sse" (TTFA: first audio delta)   200
   v2_get           8   GET /tts?text=..&ref_audio_path=SPEAKER (api_v2), whole WAV    200
   v2_post          8   POST /tts, the same as JSON                                    200
   no_key           3   POST /v1/tts without Authorization                             401
   wrong_key        3   POST /v1/tts with a wrong key                                  401
   big_body         2   POST /v1/tts, 70 KB body with its Content-Length               413
   bad_json         2   POST /v1/tts, a body that is not JSON                          422
   unknown_speaker  2   POST /v1/tts, a speaker nobody enrolled                        404
   long_text        2   POST /v1/tts, 5000 characters (over --max-input-chars 4096)    413
   chunked_big      2   POST /v1/tts, chunked (no Content-Length), 80 KiB over raw TCP 413
   leave_stream     3   a streamed /v1/tts closed after its first chunk                200 (the head)
   leave_whole      3   a whole /v1/tts whose socket is closed after 0.3 s, unread     0 (no answer)

   Texts: 1-3 short English sentences drawn from `SENTENCES` (at most 150 characters in all,
   the server's --max-chars for one sentence).
   Per request: kind, status (0: no answer), latency (start to last byte), TTFA for streamed
   kinds, audio bytes, start wall-clock time, X-Request-Id when the client saw it.
3. RSS: the server process's resident memory (VmRSS of /proc/PID/status, plus its children's)
   is sampled every 5 s from start-up to the end of the load.
4. The server is stopped (SIGTERM, wait) and its request log (`<store folder>/serve-log.duckdb`)
   opened read-only: its rows received since the server started are compared with the requests
   sent (equal: every request, refusals and hang-ups included, is one row), matched on
   X-Request-Id where the client saw one, statuses compared (except for the two leave_* kinds,
   whose client sees 200 or nothing while the log says what the server did).

Latency and TTFA percentiles are of the load phase's 200s only.

Plateau: the server's RSS grows by less than 5 % and less than 64 MB over the second half of the
load. Single 5-s samples swing by ~100 MB as batches come and go, so each end of that half is a
median: growth = median RSS over the load's last quarter - median RSS over the quarter before its
half-way mark (windows centred half the load apart); the percentage is of the latter.

`check(summary)` fails on: log rows != requests sent; a request id the client saw missing from the
log, or logged with another status; RSS not flat; any 5xx (client- or log-side); any 200 with no
audio; a kind answered with a status it does not expect (a hostile request let through, a route
that is missing); a server that does not stop cleanly on SIGTERM (exit 0, or the signal itself,
which uvicorn re-raises after its graceful shutdown). The script exits 0 whatever the figures, unless the harness itself breaks.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
from bench_serve import free_port, make_store, random_hubert  # noqa: E402

KEY = "soak-key-7f3a9c2e51"
MAX_CHARS = 150
MAX_BODY = 65536
RSS_EVERY_S = 5.0
PLATEAU_PCT, PLATEAU_MB = 5.0, 64.0
CLEAN_EXIT = (0, -signal.SIGTERM, 128 + signal.SIGTERM)   # uvicorn re-raises SIGTERM once it has shut down

# kind: (weight in percent, statuses the client expects)
KINDS: dict[str, tuple[int, frozenset[int]]] = {
    "tts_wav": (22, frozenset({200})),
    "tts_stream": (22, frozenset({200})),
    "openai_pcm": (10, frozenset({200})),
    "openai_sse": (8, frozenset({200})),
    "v2_get": (8, frozenset({200})),
    "v2_post": (8, frozenset({200})),
    "no_key": (3, frozenset({401})),
    "wrong_key": (3, frozenset({401})),
    "big_body": (2, frozenset({413})),
    "bad_json": (2, frozenset({422})),
    "unknown_speaker": (2, frozenset({404})),
    "long_text": (2, frozenset({413})),
    "chunked_big": (2, frozenset({413})),
    "leave_stream": (3, frozenset({200})),
    "leave_whole": (3, frozenset({0})),
}
STREAMED = ("tts_stream", "openai_pcm", "openai_sse")     # served sentence by sentence: TTFA is measured
WHOLE = ("tts_wav", "v2_get", "v2_post")
LEAVING = ("leave_stream", "leave_whole")                 # the client hangs up: the log says what the server did
assert sum(w for w, _ in KINDS.values()) == 100

SENTENCES = [
    "Thank you for calling.", "Please hold the line.", "Your call is important to us.",
    "The meeting starts at ten.", "Turn left at the next corner.", "The library closes early today.",
    "Please enter your password.", "We will be with you shortly.", "It might rain this afternoon.",
    "The train to the city is late.", "Press the pound key when you are done.", "Good morning, how are you?",
    "The package arrived on Monday.", "Lunch is served in the garden.", "Remember to water the plants.",
    "Your order has been shipped.", "The door code has changed.", "Take the stairs to the second floor.",
    "Call me when you get home.", "The coffee machine is broken again.", "We are open until nine.",
    "Please leave a message after the tone.", "The bus leaves every ten minutes.", "Is anyone sitting here?",
]
LONG_TEXT = " ".join(SENTENCES * 8)[:5000]          # over the server's 4096 characters a request (--max-input-chars)


# -- what one request and the whole run come to ------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """One request as its client saw it."""
    kind: str
    phase: str                   # "warm-up" or "load"
    status: int                  # the HTTP status; 0 when no answer was read
    started_at: float            # wall clock (time.time())
    latency_s: float             # start to last byte read (or to the hang-up)
    ttfa_s: float | None         # start to the first audio byte (streamed kinds)
    audio_bytes: int             # audio read (a WAV's 44-byte header not counted)
    request_id: str | None       # X-Request-Id, when the client saw the answer's head
    error: str | None = None     # the error body, or what went wrong on the client's side


@dataclass(frozen=True)
class Summary:
    """Everything a soak run measured; `check` reads it, `--json` writes it."""
    config: dict                 # minutes, clients, preset, seed, db, server flags and exit code, weights
    machine: dict                # cpu, cores, python, torch
    load_s: float                # how long the load phase ran
    counts: dict                 # kind -> {status: requests}, warm-up included
    latency: dict                # kind -> {n, latency {p50,p95,p99}, ttfa {..}} (load-phase 200s)
    modes: dict                  # "streamed" / "whole" -> the same, pooled over their kinds
    rss: dict                    # start/warm/end/max MB, half_mb and last_quarter_mb (medians), growth, plateau,
                                 # samples [(s since start-up, MB)]
    log: dict                    # rows, sent, seen_ids, matched, missing, status_mismatch, by_status, by_endpoint
    unexpected: dict             # kind -> {status: requests} the kind does not expect
    empty_200: int               # 200s that carried no audio (hang-up kinds not counted)
    outcomes: tuple              # every Outcome

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


def check(summary: Summary) -> list[str]:
    """The soak's failures, one line each; [] when the run was clean."""
    fails = []
    log, rss = summary.log, summary.rss
    if log["rows"] != log["sent"]:
        fails.append(f"the request log has {log['rows']} rows for {log['sent']} requests sent")
    if log["missing"]:
        fails.append(f"{len(log['missing'])} request ids the client saw are not in the log, e.g. {log['missing'][:3]}")
    if log["status_mismatch"]:
        fails.append(f"{len(log['status_mismatch'])} requests logged with another status than the client got, "
                     f"e.g. {log['status_mismatch'][:3]}")
    if not rss["plateau"]:
        fails.append(f"RSS not flat: +{rss['growth_mb']:.1f} MB ({rss['growth_pct']:+.1f} %) over the second half "
                     f"of the load (limit {PLATEAU_PCT:.0f} % and {PLATEAU_MB:.0f} MB)")
    server_errors = Counter(o.kind for o in summary.outcomes if o.status >= 500)
    if server_errors:
        fails.append(f"{sum(server_errors.values())} answers with a 5xx status: {dict(server_errors)}")
    logged_5xx = {s: n for s, n in log["by_status"].items() if int(s) >= 500}
    if logged_5xx:
        fails.append(f"the log has 5xx rows: {logged_5xx}")
    if summary.config["server_exit"] not in CLEAN_EXIT:
        fails.append(f"the server exited with code {summary.config['server_exit']} after SIGTERM")
    if summary.empty_200:
        fails.append(f"{summary.empty_200} answers with status 200 carried no audio")
    for kind, statuses in summary.unexpected.items():
        fails.append(f"{kind}: unexpected statuses {statuses} (expects {sorted(KINDS[kind][1])})")
    return fails


# -- the requests ---------------------------------------------------------------------------------
class Client:
    """One client thread's connections (keep-alive httpx, OpenAI's client, raw sockets) and its dice."""

    def __init__(self, base: str, speaker: str, seed: int, client_id: int, timeout: float = 300):
        import httpx
        from openai import OpenAI

        self.base, self.speaker = base, speaker
        self.host, self.port = base.removeprefix("http://").split(":")
        self.port = int(self.port)
        self.rng = random.Random(f"{seed}:{client_id}")
        limits = httpx.Timeout(timeout, connect=10)
        self.http = httpx.Client(base_url=base, timeout=limits, headers={"Authorization": f"Bearer {KEY}"})
        self.anon = httpx.Client(base_url=base, timeout=limits)
        # max_retries=0: one call, one request, one log row
        self.oai = OpenAI(base_url=f"{base}/v1", api_key=KEY, max_retries=0, timeout=timeout)

    def close(self) -> None:
        self.http.close()
        self.anon.close()
        self.oai.close()

    def text(self) -> str:
        while True:
            text = " ".join(self.rng.sample(SENTENCES, self.rng.randint(1, 3)))
            if len(text) <= MAX_CHARS:
                return text

    def pick(self) -> str:
        kinds = list(KINDS)
        return self.rng.choices(kinds, weights=[KINDS[k][0] for k in kinds])[0]

    def run(self, kind: str, phase: str) -> Outcome:
        import httpx
        import openai

        t_wall, t0 = time.time(), time.perf_counter()
        try:
            status, ttfa, audio, rid, error = getattr(self, f"_{kind}")(t0)
        except (httpx.HTTPError, openai.APIError, OSError, ValueError) as e:   # hung up, timed out, garbled
            status, ttfa, audio, rid, error = 0, None, 0, None, f"{type(e).__name__}: {e}"[:300]
        return Outcome(kind, phase, status, t_wall, time.perf_counter() - t0, ttfa, audio, rid, error)

    # each returns (status, ttfa_s, audio bytes, request id, error)
    def _tts_body(self, **kw) -> dict:
        return {"text": self.text(), "speaker": self.speaker, "lang": "en",
                "seed": self.rng.choice([-1, self.rng.randrange(2 ** 31)]), **kw}

    def _whole(self, r) -> tuple:
        rid = r.headers.get("x-request-id")
        if r.status_code != 200:
            return r.status_code, None, 0, rid, r.text[:300]
        body = r.content
        return 200, None, max(len(body) - 44, 0) if body[:4] == b"RIFF" else len(body), rid, None

    def _streamed(self, t0: float, resp) -> tuple:
        rid = resp.headers.get("x-request-id")
        if resp.status_code != 200:
            resp.read()
            return resp.status_code, None, 0, rid, resp.text[:300]
        ttfa, n = None, 0
        for chunk in resp.iter_raw():
            n += len(chunk)
            if ttfa is None and n:
                ttfa = time.perf_counter() - t0
        return 200, ttfa, n, rid, None

    def _tts_wav(self, t0):
        return self._whole(self.http.post("/v1/tts", json=self._tts_body(format="wav")))

    def _tts_stream(self, t0):
        with self.http.stream("POST", "/v1/tts", json=self._tts_body(format="pcm", stream=True)) as r:
            return self._streamed(t0, r)

    def _openai(self, t0, sse: bool):
        import openai

        extra = {"stream_format": "sse"} if sse else {}
        try:
            with self.oai.audio.speech.with_streaming_response.create(
                    model="clonebench", voice=self.speaker, input=self.text(), response_format="pcm", **extra) as r:
                rid = r.headers.get("x-request-id")
                ttfa, n = None, 0
                if not sse:
                    for chunk in r.iter_bytes():
                        n += len(chunk)
                        if ttfa is None and n:
                            ttfa = time.perf_counter() - t0
                    return r.status_code, ttfa, n, rid, None
                for line in r.iter_lines():                      # data: {"type": "speech.audio.delta", "audio": b64}
                    if not line.startswith("data:"):
                        continue
                    event = json.loads(line[5:].strip() or "{}")
                    if event.get("type") == "speech.audio.delta":
                        n += len(base64.b64decode(event.get("audio") or ""))
                        if ttfa is None and n:
                            ttfa = time.perf_counter() - t0
                return r.status_code, ttfa, n, rid, None
        except openai.APIStatusError as e:
            return e.status_code, None, 0, e.response.headers.get("x-request-id"), str(e.body or e.message)[:300]

    def _openai_pcm(self, t0):
        return self._openai(t0, sse=False)

    def _openai_sse(self, t0):
        return self._openai(t0, sse=True)

    def _v2_params(self) -> dict:
        return {"text": self.text(), "text_lang": "en", "ref_audio_path": self.speaker, "prompt_lang": "en",
                "media_type": "wav", "streaming_mode": False}

    def _v2_get(self, t0):
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in self._v2_params().items()}
        return self._whole(self.http.get("/tts", params=params))

    def _v2_post(self, t0):
        return self._whole(self.http.post("/tts", json=self._v2_params()))

    def _no_key(self, t0):
        return self._whole(self.anon.post("/v1/tts", json=self._tts_body()))

    def _wrong_key(self, t0):
        return self._whole(self.anon.post("/v1/tts", json=self._tts_body(),
                                          headers={"Authorization": "Bearer not-the-key"}))

    def _big_body(self, t0):
        body = json.dumps({"text": "a" * 70_000, "speaker": self.speaker}).encode()
        return self._whole(self.http.post("/v1/tts", content=body, headers={"content-type": "application/json"}))

    def _bad_json(self, t0):
        return self._whole(self.http.post("/v1/tts", content=b'{"text": "Hello.", "speaker": ',
                                          headers={"content-type": "application/json"}))

    def _unknown_speaker(self, t0):
        return self._whole(self.http.post("/v1/tts", json={"text": self.text(), "speaker": "nobody-enrolled"}))

    def _long_text(self, t0):
        return self._whole(self.http.post("/v1/tts", json={"text": LONG_TEXT, "speaker": self.speaker, "lang": "en"}))

    def _chunked_big(self, t0):
        from clonebench.testing import rawhttp

        head = json.dumps({"speaker": self.speaker, "text": ""})[:-2].encode()    # '{"speaker": .., "text": "'
        chunks = [head] + [b"a" * 8192] * 10                      # 80 KiB and more, no Content-Length
        resp, _sent = rawhttp.send_chunked(self.host, self.port, "/v1/tts",
                                           {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
                                           chunks, timeout=60)
        return resp.status, None, 0, resp.headers.get("x-request-id"), resp.body[:300].decode("latin-1")

    def _leave_stream(self, t0):
        text = " ".join(self.rng.sample(SENTENCES, 3))[:MAX_CHARS]
        with self.http.stream("POST", "/v1/tts", json={"text": text, "speaker": self.speaker, "lang": "en",
                                                       "format": "pcm", "stream": True}) as r:
            rid = r.headers.get("x-request-id")
            for chunk in r.iter_raw():                           # the first chunk, then hang up
                return r.status_code, time.perf_counter() - t0, 0, rid, None
            return r.status_code, None, 0, rid, "no chunk before the end"

    def _leave_whole(self, t0):
        from clonebench.testing import rawhttp

        body = json.dumps({"text": self.text(), "speaker": self.speaker, "lang": "en"}).encode()
        got = rawhttp.send_and_leave(self.host, self.port, "POST", "/v1/tts",
                                     {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
                                     body, after_s=0.3, read_bytes=0)
        return 0, None, 0, None, None if not got else "read before leaving"


# -- the server and its memory ------------------------------------------------------------------------
def rss_mb(pid: int) -> float:
    """VmRSS of `pid` and every descendant, in MB (0 for a process that has gone)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


class RssSampler(threading.Thread):
    """(seconds since `t0`, MB) every `RSS_EVERY_S`, until stopped; `mark` adds one now."""

    def __init__(self, pid: int, t0: float):
        super().__init__(daemon=True)
        self.pid, self.t0, self.samples, self.stop_flag = pid, t0, [], threading.Event()
        self.lock = threading.Lock()

    def mark(self) -> float:
        mb = rss_mb(self.pid)
        with self.lock:
            self.samples.append((time.perf_counter() - self.t0, mb))
        return mb

    def run(self) -> None:
        while not self.stop_flag.wait(RSS_EVERY_S):
            self.mark()


def start_server(model: dict, db: Path, keys: Path, log: Path, threads: int) -> tuple[subprocess.Popen, str, list]:
    import httpx

    port = free_port()
    flags = ["--max-batch", "8", "--batch-window-ms", "20", "--queue", "512", "--threads", str(threads),
             "--max-chars", str(MAX_CHARS), "--timeout", "300",
             *(["--content", model["content"]] if model.get("content") else []), "--api-keys", str(keys)]
    with open(log, "w") as out:                              # the server keeps its own copy of the handle
        proc = subprocess.Popen([sys.executable, "-m", "clonebench.cli", "serve", "--gpt", model["gpt"], "--sovits",
                                 model["sovits"], "--db", str(db), "--port", str(port), *flags], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    base, deadline = f"http://127.0.0.1:{port}", time.time() + 300
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return proc, base, flags
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise RuntimeError("the server did not stop within 120 s of SIGTERM") from None


# -- figures -------------------------------------------------------------------------------------------
def pct(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    p = np.percentile(np.asarray(values, float), [50, 95, 99])
    return {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2])}


def stats(outcomes: list[Outcome]) -> dict:
    ok = [o for o in outcomes if o.status == 200]
    return {"n": len(ok), "latency": pct([o.latency_s for o in ok]),
            "ttfa": pct([o.ttfa_s for o in ok if o.ttfa_s is not None])}


def rss_figures(samples: list[tuple[float, float]], start: float, warm: float, load_from: float,
                load_to: float) -> dict:
    """The RSS figures and the plateau verdict (see the module's docstring)."""
    load = [(t, mb) for t, mb in samples if load_from <= t <= load_to] or samples[-1:]

    def window(a: float, b: float) -> float:        # median RSS over a fraction [a, b] of the load
        t_a, t_b = load_from + a * (load_to - load_from), load_from + b * (load_to - load_from)
        inside = [mb for t, mb in load if t_a <= t <= t_b]
        return float(np.median(inside)) if inside else min(load, key=lambda s: abs(s[0] - (t_a + t_b) / 2))[1]

    half, last = window(0.25, 0.5), window(0.75, 1.0)
    growth = last - half
    growth_pct = 100 * growth / half if half else 0.0
    return {"start_mb": start, "warm_mb": warm, "half_mb": half, "last_quarter_mb": last, "end_mb": load[-1][1],
            "max_mb": max(mb for _, mb in samples), "growth_mb": growth, "growth_pct": growth_pct,
            "plateau": growth < PLATEAU_MB and growth_pct < PLATEAU_PCT,
            "samples": [(round(t, 1), round(mb, 1)) for t, mb in samples]}


def compare_log(outcomes: list[Outcome], rows: list) -> dict:
    by_id = {r.request_id: r for r in rows}
    seen = [o for o in outcomes if o.request_id]
    missing = [o.request_id for o in seen if o.request_id not in by_id]
    mismatch = [(o.request_id, o.kind, o.status, by_id[o.request_id].status) for o in seen
                if o.request_id in by_id and o.kind not in LEAVING and by_id[o.request_id].status != o.status]
    return {"rows": len(rows), "sent": len(outcomes), "seen_ids": len(seen), "matched": len(seen) - len(missing),
            "missing": missing, "status_mismatch": mismatch,
            "by_status": dict(sorted(Counter(r.status for r in rows).items())),
            "by_endpoint": dict(sorted(Counter(f"{r.endpoint} {r.status}" for r in rows).items()))}


def machine(threads: int) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or platform.machine())
    try:
        torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch,
            "server_threads": threads}


def summarize(config, mach, outcomes, load_s, rss, log) -> Summary:
    counts = {k: dict(sorted(Counter(o.status for o in outcomes if o.kind == k).items())) for k in KINDS}
    load = [o for o in outcomes if o.phase == "load"]
    unexpected = {k: {s: n for s, n in c.items() if s not in KINDS[k][1]} for k, c in counts.items()}
    return Summary(
        config=config, machine=mach, load_s=load_s, counts=counts,
        latency={k: stats([o for o in load if o.kind == k]) for k in KINDS if k not in LEAVING},
        modes={"streamed": stats([o for o in load if o.kind in STREAMED]),
               "whole": stats([o for o in load if o.kind in WHOLE])},
        rss=rss, log=log, unexpected={k: v for k, v in unexpected.items() if v},
        empty_200=sum(o.status == 200 and o.audio_bytes == 0 and o.kind not in LEAVING for o in outcomes),
        outcomes=tuple(outcomes))


def report(s: Summary) -> str:
    def sec(v):
        return f"{v:8.3f}" if v is not None else f"{'–':>8}"

    c, m, r, lg = s.config, s.machine, s.rss, s.log
    out = [f"clonebench serve soak: {c['minutes']} min of load ({s.load_s:.0f} s), {c['clients']} clients, "
           f"preset {c['preset']} (random weights), seed {c['seed']}",
           f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, torch {m['torch']}; "
           f"server: {' '.join(c['server_flags'][:-2])}", "",
           f"{'kind':<16}{'%':>3}{'sent':>6}  {'statuses':<26}{'p50 s':>8}{'p95 s':>8}{'p99 s':>8}"
           f"{'TTFA p50':>9}{'TTFA p95':>9}{'TTFA p99':>9}"]

    def line(name, weight, sent, statuses, st):
        lat, tt = (st or {}).get("latency", {}), (st or {}).get("ttfa", {})
        return (f"{name:<16}{weight:>3}{sent:>6}  {statuses:<26}{sec(lat.get('p50'))}{sec(lat.get('p95'))}"
                f"{sec(lat.get('p99'))} {sec(tt.get('p50'))} {sec(tt.get('p95'))} {sec(tt.get('p99'))}")

    for kind, (weight, _) in KINDS.items():
        statuses = " ".join(f"{k}:{n}" for k, n in s.counts[kind].items())
        out.append(line(kind, weight, sum(s.counts[kind].values()), statuses, s.latency.get(kind)))
    out.append("")
    for mode in ("streamed", "whole"):
        out.append(line(f"{mode} (200s)", "", s.modes[mode]["n"], "", s.modes[mode]))
    out += ["", f"streamed: {', '.join(STREAMED)}; whole: {', '.join(WHOLE)}",
            "latency: start to last byte; TTFA: start to first audio byte; load phase, status 200 only", "",
            f"server RSS MB: start {r['start_mb']:.0f}, after warm-up {r['warm_mb']:.0f}, end {r['end_mb']:.0f}, "
            f"max {r['max_mb']:.0f}; medians: 2nd quarter {r['half_mb']:.0f}, last quarter {r['last_quarter_mb']:.0f}: "
            f"second half {r['growth_mb']:+.1f} MB "
            f"({r['growth_pct']:+.1f} %): {'plateau' if r['plateau'] else 'NOT FLAT'} "
            f"(limit < {PLATEAU_PCT:.0f} % and < {PLATEAU_MB:.0f} MB)",
            f"request log: {lg['rows']} rows for {lg['sent']} requests sent "
            f"({'equal' if lg['rows'] == lg['sent'] else 'DIFFERENT'}); {lg['matched']} of {lg['seen_ids']} "
            f"request ids the client saw are in it; {len(lg['status_mismatch'])} logged with another status",
            f"log rows by status: {' '.join(f'{k}:{n}' for k, n in lg['by_status'].items())}",
            f"server: exit code {c['server_exit']} after SIGTERM"]
    fails = check(s)
    out += ["", "check: passed" if not fails else "check: FAILED", *(f"  - {f}" for f in fails)]
    return "\n".join(out)


# -- the run ---------------------------------------------------------------------------------------------
def soak(minutes: float, clients: int, preset: str, db: Path | None, seed: int, tmp: Path) -> Summary:
    import httpx

    from clonebench.core.config import data_root_for
    from clonebench.store.servelog import ServeLog

    db = db or make_store(tmp)
    model_dir = tmp / "model"
    done = subprocess.run([sys.executable, "-m", "clonebench.cli", "init-model", "--preset", preset, "--out",
                           str(model_dir)], check=True, cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    model = json.loads(done.stdout)
    if preset == "v2":
        model["content"] = random_hubert(tmp / "hubert")
    keys = tmp / "keys.txt"
    keys.write_text(f"# soak_serve.py\n{KEY}\n")
    threads = max(1, min(4, os.cpu_count() or 1))
    since = datetime.now().replace(microsecond=0)           # the log's rows from this run: received since
    proc, base, flags = start_server(model, db, keys, tmp / "server.log", threads)
    t0 = time.perf_counter()
    sampler = RssSampler(proc.pid, t0)
    start_mb = sampler.mark()
    sampler.start()
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    try:
        speakers = httpx.get(f"{base}/v1/speakers", headers={"Authorization": f"Bearer {KEY}"}, timeout=60).json()
        speaker = next(s["speaker"] for s in speakers if s["status"] == "ready" and s.get("lang") == "en")
        first = Client(base, speaker, seed, -1)
        try:
            outcomes += [first.run(kind, "warm-up") for kind in KINDS]
        finally:
            first.close()
        warm_mb = sampler.mark()
        load_from = time.perf_counter() - t0
        deadline = time.perf_counter() + 60 * minutes
        errors: list[BaseException] = []

        def user(k: int) -> None:
            c = Client(base, speaker, seed, k)
            try:
                while time.perf_counter() < deadline:
                    o = c.run(c.pick(), "load")
                    with lock:
                        outcomes.append(o)
            except BaseException as e:           # a bug in the harness, not a server failure
                errors.append(e)
            finally:
                c.close()

        users = [threading.Thread(target=user, args=(k,), name=f"client-{k}") for k in range(clients)]
        for t in users:
            t.start()
        for t in users:
            t.join()
        if errors:
            raise errors[0]
        load_to = time.perf_counter() - t0
        sampler.mark()
    finally:
        sampler.stop_flag.set()
        sampler.join()
        code = stop_server(proc)
    log = ServeLog(data_root_for(db) / "serve-log.duckdb", read_only=True)
    try:
        rows = [r for r in log.records() if r.received_at >= since]
    finally:
        log.close()
    config = {"minutes": minutes, "clients": clients, "preset": preset, "seed": seed, "db": str(db),
              "server_flags": flags, "server_exit": code, "weights": {k: w for k, (w, _) in KINDS.items()}}
    outcomes.sort(key=lambda o: o.started_at)
    return summarize(config, machine(threads), outcomes, load_to - load_from,
                     rss_figures(sampler.samples, start_mb, warm_mb, load_from, load_to), compare_log(outcomes, rows))


def main(argv: list[str] | None = None) -> Summary:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the load phase")
    ap.add_argument("--clients", type=int, default=16, help="client threads, 8-32")
    ap.add_argument("--preset", default="tiny", choices=["tiny", "v2"])
    ap.add_argument("--db", type=Path, default=None,
                    help="an existing store (default: vet a real voice into a new one)")
    ap.add_argument("--json", type=Path, default=None, help="write the summary here")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 8 <= args.clients <= 32:
        ap.error("--clients must be 8-32")
    if args.minutes <= 0:
        ap.error("--minutes must be positive")
    with tempfile.TemporaryDirectory(prefix="soak-serve-") as tmp:
        summary = soak(args.minutes, args.clients, args.preset, args.db, args.seed, Path(tmp))
    print(report(summary), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary.to_json(), indent=1))
    return summary


if __name__ == "__main__":
    main()
