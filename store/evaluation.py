"""Named reads and writes of evaluation: runs (`eval_runs`) and their scored items (`eval_items`).

Runs and items are plain dicts keyed by column name: they are JSON documents in `--json` output,
and the aggregation reads metrics by column name."""

from __future__ import annotations

import json

from clonebench.errors import UserError

from .schema import to_json

ITEM_COLUMNS = [
    "run_id", "item_key", "speaker", "lang", "text", "path", "prompt_path", "audio_sha256", "status", "error",
    "duration_s", "hyp_text", "unit", "hits", "subs", "dels", "ins", "char_hits", "char_subs", "char_dels",
    "char_ins", "wer", "cer", "sim", "sim_o", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "utmos", "synth_s",
    "rtf", "ttfa_s", "clip_ratio", "silence_ratio", "speech_rate", "flags",
]


def _db_value(v):
    if isinstance(v, float) and v != v:  # NaN: an undefined rate is stored as NULL
        return None
    return v


class EvaluationTables:
    def start_eval_run(self, run: dict) -> None:
        """Insert a new run row; `run` maps eval_runs columns to values (summary as a dict)."""
        run = {k: (to_json(v) if k == "summary" else v) for k, v in run.items()}
        cols = list(run)
        self.con.execute(f"INSERT INTO eval_runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                         [run[c] for c in cols])

    def eval_run(self, run_id: str) -> dict | None:
        rows = self._rows("SELECT * FROM eval_runs WHERE run_id = ?", [run_id])
        return rows[0] if rows else None

    def newest_complete_run(self, label: str) -> str | None:
        return self._scalar("SELECT run_id FROM eval_runs WHERE label = ? AND status = 'complete' "
                            "ORDER BY created_at DESC LIMIT 1", [label])

    def eval_runs(self, *, limit: int | None = None, complete_only: bool = False, mode: str = "all",
                  checkpoints: list[str] | None = None) -> list[dict]:
        """Runs, newest first with `limit`, else oldest first; `checkpoints` keeps the runs made on
        any of these GPT or SoVITS SHA-256."""
        sql = ("SELECT * FROM eval_runs WHERE (NOT ? OR status = 'complete') AND (? = 'all' OR mode = ?)"
               " AND (? IS NULL OR list_contains(?, gpt_sha256) OR list_contains(?, sovits_sha256))")
        params = [complete_only, mode, mode, checkpoints, checkpoints, checkpoints]
        if limit is not None:
            return self._rows(sql + " ORDER BY created_at DESC LIMIT ?", params + [limit])
        return self._rows(sql + " ORDER BY created_at", params)

    def put_eval_items(self, run_id: str, rows: list[dict]) -> None:
        """Scored items of a run, in one transaction (a re-scored item replaces the old row)."""
        if not rows:
            return
        values = [[run_id if c == "run_id" else _db_value(r.get(c)) for c in ITEM_COLUMNS] for r in rows]
        sql = f"INSERT OR REPLACE INTO eval_items ({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join('?' * len(ITEM_COLUMNS))})"
        with self.transaction():
            self.con.executemany(sql, values)

    def eval_items(self, run_id: str) -> list[dict]:
        return self._rows("SELECT * FROM eval_items WHERE run_id = ? ORDER BY item_key", [run_id])

    def eval_item_keys(self, run_id: str) -> set[str]:
        return {r["item_key"] for r in self._rows("SELECT item_key FROM eval_items WHERE run_id = ?", [run_id])}

    def run_document(self, run_id: str) -> dict:
        """The JSON document of a finished run (`evaluate --json`, the evaluation report)."""
        run = self.eval_run(run_id)
        if not run or run["status"] != "complete":
            raise UserError(f"run {run_id!r}: no finished run with that id (see `clonebench runs`)")
        items = self.eval_items(run_id)
        summary = summary_of(run)
        return {
            "run_id": run_id,
            "store": str(self.path),
            "environment": {k: run[k] for k in ENVIRONMENT},
            "items": [{k: v for k, v in r.items() if k != "run_id"} for r in items],
            "speakers": summary["speakers"],
            "overall": summary["overall"],
            "comparison": summary["comparison"],
            "gate": summary["gate"],
            "errors": [{"item": r["item_key"], "error": r["error"]} for r in items if r["error"]] +
                      [{"item": None, "error": m} for m in summary["messages"]],
        }

    def finish_eval_run(self, run_id: str, n_items: int, n_errors: int, baseline_run: str | None, summary: dict) -> None:
        self.con.execute(
            """UPDATE eval_runs SET status = 'complete', finished_at = current_timestamp, n_items = ?, n_errors = ?,
               baseline_run = ?, summary = ? WHERE run_id = ?""",
            [n_items, n_errors, baseline_run, to_json(summary), run_id])


ENVIRONMENT = ["mode", "label", "source", "manifest_sha256", "gpt_sha256", "sovits_sha256", "encoder", "asr_model",
               "utmos_model", "normalizer", "seed", "n_boot", "device", "threads"]


def summary_of(run: dict) -> dict:
    """A run's stored summary as a dict ({} while running)."""
    raw = run.get("summary")
    return json.loads(raw) if isinstance(raw, str) and raw else (raw or {})
