"""The DuckDB store: the data model of clonebench and the single source of truth for metadata.

Every table and every query lives in this package (`schema.py` for the tables and migrations;
`vetting.py`, `reviews.py`, `evaluation.py`, `training.py` for the named reads and writes); stages call
`Store` methods and get typed records (`records.py`) back. Audio stays on disk; the paths the
store records are relative to its folder when inside it (`paths.py`), so the folder can move.

DuckDB lets one process open a file for writing; a second one gets "store is in use" (exit 2)
instead of risking a corrupt file. A store written by an older release is upgraded in place
when it is opened (`schema.MIGRATIONS`), keeping every row.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from clonebench.core.errors import StoreInUse, UserError

from . import paths, schema
from .evaluation import EvaluationTables
from .records import (
    ASR,
    GIVEN,
    REVIEW_ACTIONS,
    REVIEWED,
    VERDICT_ACTIONS,
    Checkpoint,
    CheckpointChoice,
    Clip,
    ClipReview,
    ClipView,
    Enrolment,
    EvalItem,
    EvalRun,
    GivenText,
    Recording,
    Review,
    Speaker,
    SpeakerPrompt,
    TrainRun,
    TrainStep,
    Transcript,
    Verdict,
    Word,
)
from .reviews import ReviewTables
from .schema import SCHEMA_VERSION, to_json
from .training import TrainingTables
from .vetting import TIMBRE_PREFIX, VettingTables

LOCK_WAIT_S = 3.0

__all__ = ["Store", "SCHEMA_VERSION", "TIMBRE_PREFIX", "ASR", "GIVEN", "REVIEWED", "REVIEW_ACTIONS", "VERDICT_ACTIONS",
           "Checkpoint", "CheckpointChoice", "Clip", "ClipReview", "ClipView", "Enrolment", "EvalItem",
           "EvalRun", "GivenText", "Recording", "Review", "Speaker", "SpeakerPrompt", "TrainRun", "TrainStep", "Transcript", "Verdict", "Word",
           "to_json"]


class Store(VettingTables, ReviewTables, EvaluationTables, TrainingTables):
    """A DuckDB connection held for the life of a command."""

    def __init__(self, path: Path, read_only: bool = False, lock_wait_s: float = LOCK_WAIT_S):
        """`lock_wait_s`: how long to wait out another process's lock before "store is in use"
        (0: one attempt, for a reader that can go on without the store, like the voice service)."""
        self.path = Path(path)
        self.lock_wait_s = lock_wait_s
        if read_only and not self.path.exists():
            raise UserError(f"{self.path}: no store here yet (run `clonebench vet` first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.folder = self.path.resolve().parent   # where the paths the store records are relative to
        self.con = self._connect(read_only)
        found = schema.schema_version(self.con)
        if found is not None and found > SCHEMA_VERSION:
            self.close()
            raise UserError(f"{self.path}: written by a newer clonebench (schema {found}, this one reads {SCHEMA_VERSION}); upgrade clonebench")
        if found is not None and found < SCHEMA_VERSION and read_only:
            # an older file is upgraded once by a short writing open, then read as asked
            self.close()
            self.con = self._connect(False)
            schema.upgrade(self.con, schema.schema_version(self.con), self.folder)
            self.close()
            self.con = self._connect(True)
        elif not read_only:
            if found is None:
                schema.create(self.con)
            elif found < SCHEMA_VERSION:
                schema.upgrade(self.con, found, self.folder)

    def _connect(self, read_only: bool):
        """Open the file. A lock held by another process is retried for `lock_wait_s`: readers such
        as `clonebench serve` hold the file for a moment only, and a writer should wait them out."""
        import duckdb

        deadline = time.monotonic() + self.lock_wait_s
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as e:
                if "lock" not in str(e).lower():
                    raise UserError(f"{self.path}: cannot open store ({str(e).splitlines()[0]})") from None
                if time.monotonic() >= deadline:
                    raise StoreInUse(f"{self.path}: store is in use by another clonebench process; "
                                     "wait for it to finish") from None
                time.sleep(0.1)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: a kill inside leaves the store as it was before."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    @property
    def schema_version(self) -> int | None:
        return schema.schema_version(self.con)

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        """Ad-hoc SQL, as rows of dicts: for people and tests looking inside. Stages use the
        named methods instead, so that a fact is written and read in one shape."""
        return self._rows(sql, params)

    # -- helpers for the named methods --------------------------------------------------
    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        cur = self.con.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.con.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    def _stored(self, path) -> str | None:
        """A path as written to the store: relative to its folder when inside it."""
        return paths.stored(path, self.folder)

    def _resolved(self, value: str | None) -> str | None:
        """A recorded path as read back: absolute, against the store's folder now."""
        return paths.resolved(value, self.folder)
