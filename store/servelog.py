"""The voice service's request log: one row per synthesis, in its own DuckDB file beside the store
(`<store folder>/serve-log.duckdb`).

The server is that file's only writer, so `vet` keeps the main store's single write lock to
itself while the server runs. Query it like the store:

    SELECT speaker, count(*), avg(rtf) FROM syntheses WHERE status = 200 GROUP BY ALL;

Every request to a synthesis route gets exactly one row, refusals included (a 401 without a key,
a 413 body, a 422 that never reached the model): `status` is the HTTP status the client got.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

SERVE_LOG_SCHEMA = 2   # 2: streamed, format, seed, latency_s

_DDL = """
CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS syntheses (
    request_id VARCHAR PRIMARY KEY, received_at TIMESTAMP, endpoint VARCHAR, speaker VARCHAR, lang VARCHAR,
    chars INTEGER, sentences INTEGER, audio_s DOUBLE, queue_wait_s DOUBLE, synth_s DOUBLE, rtf DOUBLE,
    ttfa_s DOUBLE, batch_size INTEGER, status INTEGER, error VARCHAR, gpt_sha256 VARCHAR, sovits_sha256 VARCHAR,
    streamed BOOLEAN, format VARCHAR, seed BIGINT, latency_s DOUBLE);
"""


@dataclass(frozen=True)
class SynthesisRecord:
    request_id: str
    received_at: object          # datetime
    endpoint: str
    speaker: str | None
    lang: str | None
    chars: int
    sentences: int
    audio_s: float | None
    queue_wait_s: float | None
    synth_s: float | None
    rtf: float | None
    ttfa_s: float | None
    batch_size: int | None       # the largest batch any of its sentences ran in
    status: int                  # the HTTP status it got
    error: str | None
    gpt_sha256: str
    sovits_sha256: str
    streamed: bool | None = None  # None: refused before the body was read
    format: str | None = None
    seed: int | None = None       # the seed the audio was made with (random when the client sent -1)
    latency_s: float | None = None  # from receipt to the last byte (or to the refusal)


_ADDED_IN_2 = [("streamed", "BOOLEAN"), ("format", "VARCHAR"), ("seed", "BIGINT"), ("latency_s", "DOUBLE")]
_COLUMNS = [f.name for f in dataclasses.fields(SynthesisRecord)]


class ServeLog:
    """Opened once by the server and written from its request handlers (one connection, one writer)."""

    def __init__(self, path: Path, read_only: bool = False):
        import duckdb

        from clonebench.core.errors import UserError

        self.path = Path(path)
        self._lock = threading.Lock()
        if read_only and not self.path.is_file():
            raise UserError(f"{self.path}: no request log here (run `clonebench serve` with this store first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            raise UserError(f"{self.path}: cannot open the request log ({str(e).splitlines()[0]}); "
                            "a running server holds it: stop it or read a copy") from None
        if not read_only:
            self.con.execute(_DDL)
            for column, kind in _ADDED_IN_2:       # a log written by schema 1 keeps its rows
                self.con.execute(f"ALTER TABLE syntheses ADD COLUMN IF NOT EXISTS {column} {kind}")
            self.con.execute("INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [str(SERVE_LOG_SCHEMA)])

    def write(self, r: SynthesisRecord) -> None:
        with self._lock:      # handlers on the event loop and in threads share the one connection
            self.con.execute(f"INSERT OR REPLACE INTO syntheses ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                             [getattr(r, c) for c in _COLUMNS])

    def records(self) -> list[SynthesisRecord]:
        have = {c for (c,) in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'syntheses'").fetchall()}
        names = [c if c in have else f"NULL AS {c}" for c in _COLUMNS]   # a schema-1 log read as it is
        cur = self.con.execute(f"SELECT {', '.join(names)} FROM syntheses ORDER BY received_at")
        return [SynthesisRecord(*row) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()
