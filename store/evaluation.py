"""Named reads and writes of evaluation: runs (`eval_runs`, as `EvalRun`) and their scored items
(`eval_items`, as `EvalItem`)."""

from __future__ import annotations

import dataclasses
import json

from .records import EvalItem, EvalRun
from .schema import to_json

ITEM_COLUMNS = [f.name for f in dataclasses.fields(EvalItem)]
ITEM_PATHS = ("path", "prompt_path")   # recorded relative to the store's folder when inside it
RUN_COLUMNS = [f.name for f in dataclasses.fields(EvalRun) if f.name not in ("created_at", "finished_at")]


def _db_value(v):
    if isinstance(v, float) and v != v:  # NaN: an undefined rate is stored as NULL
        return None
    return list(v) if isinstance(v, tuple) else v


def _run(r: dict) -> EvalRun:
    summary = json.loads(r["summary"]) if isinstance(r["summary"], str) and r["summary"] else (r["summary"] or {})
    return EvalRun(**{**r, "summary": summary})


class EvaluationTables:
    def _item(self, r: dict) -> EvalItem:
        return EvalItem(**{**r, "flags": tuple(r["flags"] or ()), **{c: self._resolved(r[c]) for c in ITEM_PATHS}})

    def start_eval_run(self, run: EvalRun) -> None:
        values = {c: getattr(run, c) for c in RUN_COLUMNS}
        values["summary"] = to_json(run.summary) if run.summary else None
        self.con.execute(f"INSERT INTO eval_runs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                         list(values.values()))

    def eval_run(self, run_id: str) -> EvalRun | None:
        rows = self._rows("SELECT * FROM eval_runs WHERE run_id = ?", [run_id])
        return _run(rows[0]) if rows else None

    def newest_complete_run(self, label: str) -> str | None:
        return self._scalar("SELECT run_id FROM eval_runs WHERE label = ? AND status = 'complete' "
                            "ORDER BY created_at DESC LIMIT 1", [label])

    def eval_runs(self, *, limit: int | None = None, complete_only: bool = False, mode: str = "all",
                  checkpoints: list[str] | None = None) -> list[EvalRun]:
        """Runs, newest first with `limit`, else oldest first; `checkpoints` keeps the runs made on
        any of these GPT or SoVITS SHA-256."""
        sql = ("SELECT * FROM eval_runs WHERE (NOT ? OR status = 'complete') AND (? = 'all' OR mode = ?)"
               " AND (? IS NULL OR list_contains(?, gpt_sha256) OR list_contains(?, sovits_sha256))")
        params = [complete_only, mode, mode, checkpoints, checkpoints, checkpoints]
        if limit is not None:
            return [_run(r) for r in self._rows(sql + " ORDER BY created_at DESC LIMIT ?", params + [limit])]
        return [_run(r) for r in self._rows(sql + " ORDER BY created_at", params)]

    def put_eval_items(self, items: list[EvalItem]) -> None:
        """Scored items, in one transaction (a re-scored item replaces the old row)."""
        if not items:
            return
        values = [[self._stored(getattr(it, c)) if c in ITEM_PATHS else _db_value(getattr(it, c)) for c in ITEM_COLUMNS]
                  for it in items]
        sql = f"INSERT OR REPLACE INTO eval_items ({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * len(ITEM_COLUMNS))})"
        with self.transaction():
            self.con.executemany(sql, values)

    def eval_items(self, run_id: str) -> list[EvalItem]:
        return [self._item(r) for r in self._rows(
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM eval_items WHERE run_id = ? ORDER BY item_key", [run_id])]

    def eval_item_keys(self, run_id: str) -> set[str]:
        return {r["item_key"] for r in self._rows("SELECT item_key FROM eval_items WHERE run_id = ?", [run_id])}

    def finish_eval_run(self, run_id: str, n_items: int, n_errors: int, baseline_run: str | None, summary: dict) -> None:
        self.con.execute(
            """UPDATE eval_runs SET status = 'complete', finished_at = current_timestamp, n_items = ?, n_errors = ?,
               baseline_run = ?, summary = ? WHERE run_id = ?""",
            [n_items, n_errors, baseline_run, to_json(summary), run_id])
