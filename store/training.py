"""Named reads and writes of training: runs, their logged steps and the checkpoints they export."""

from __future__ import annotations

import json

from .records import Checkpoint, CheckpointChoice, TrainRun, TrainStep
from .schema import to_json


def _loads(v):
    return json.loads(v) if isinstance(v, str) else (v or {})


class TrainingTables:
    def start_train_run(self, run_name: str, preset: str, speakers: list[str], data_hash: str, out_dir: str,
                        config: dict) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO train_runs (run_name, preset, speakers, data_hash, out_dir, config, status) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running')",
            [run_name, preset, speakers, data_hash, self._stored(out_dir), to_json(config)])

    def finish_train_run(self, run_name: str, measured: dict) -> None:
        """Mark the run complete; `measured` joins its config."""
        run = self.train_run(run_name)
        config = {**(run.config if run else {}), **measured}
        self.con.execute("UPDATE train_runs SET status = 'complete', config = ? WHERE run_name = ?",
                         [to_json(config), run_name])

    def train_run(self, run_name: str) -> TrainRun | None:
        rows = self._rows("SELECT * FROM train_runs WHERE run_name = ?", [run_name])
        if not rows:
            return None
        r = rows[0]
        return TrainRun(r["run_name"], r["preset"], tuple(r["speakers"] or ()), r["data_hash"], self._resolved(r["out_dir"]),
                        _loads(r["config"]), r["status"])

    def log_train_steps(self, steps: list[TrainStep]) -> None:
        self.con.executemany(
            "INSERT OR REPLACE INTO train_steps (run_name, stage, step, epoch, losses, lr, samples_per_s) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s.run_name, s.stage, s.step, s.epoch, to_json(s.losses), s.lr, s.samples_per_s) for s in steps])

    def train_steps(self, run_name: str, stage: str | None = None) -> list[TrainStep]:
        rows = self._rows("SELECT * FROM train_steps WHERE run_name = ? AND (? IS NULL OR stage = ?) ORDER BY stage, step",
                          [run_name, stage, stage])
        return [TrainStep(r["run_name"], r["stage"], r["step"], r["epoch"], _loads(r["losses"]), r["lr"], r["samples_per_s"])
                for r in rows]

    def register_checkpoint(self, c: Checkpoint) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO checkpoints (path, kind, run_name, stage, step, epoch, sha256, data_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [self._stored(c.path), c.kind, c.run_name, c.stage, c.step, c.epoch, c.sha256, c.data_hash])

    def checkpoints(self, run_name: str) -> list[Checkpoint]:
        return [Checkpoint(self._resolved(r["path"]), r["kind"], r["run_name"], r["stage"], r["step"], r["epoch"], r["sha256"], r["data_hash"])
                for r in self._rows("SELECT * FROM checkpoints WHERE run_name = ? ORDER BY stage, step", [run_name])]

    def record_choice(self, c: CheckpointChoice) -> None:
        self.con.execute(
            "INSERT INTO checkpoint_choices (run_name, rule, gpt_path, sovits_path, epoch, eval_run, summary) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [c.run_name, c.rule, self._stored(c.gpt_path), self._stored(c.sovits_path), c.epoch,
                                             c.eval_run, to_json(c.summary)])

    def chosen_checkpoint(self, run_name: str) -> CheckpointChoice | None:
        """The run's newest choice (None: never chosen)."""
        rows = self._rows("SELECT * FROM checkpoint_choices WHERE run_name = ? ORDER BY chosen_at DESC LIMIT 1", [run_name])
        if not rows:
            return None
        r = rows[0]
        return CheckpointChoice(r["run_name"], r["rule"], self._resolved(r["gpt_path"]), self._resolved(r["sovits_path"]),
                                r["epoch"], r["eval_run"], _loads(r["summary"]), r["chosen_at"])
