"""A training run's bookkeeping, kept out of the training loop: the run's row in the store, every
logged step (store `train_steps`, `log.csv`, TensorBoard when installed) and the exported
checkpoints. Only the main process of a distributed run writes; the others' calls do nothing."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

from clonebench.instruments.registry import sha256_file
from clonebench.store import Checkpoint, Store, TrainStep, to_json


class RunLog:
    def __init__(self, db: Path, out: Path, run_name: str, main: bool = True):
        self.db, self.out, self.run_name, self.main = db, Path(out), run_name, main
        self.pending: list[TrainStep] = []
        self.tb = None

    def start(self, preset: str, speakers: list[str], data_hash: str, config: dict) -> None:
        """Register the run (status 'running') and open TensorBoard when it is installed."""
        if not self.main:
            return
        with Store(self.db) as store:
            store.start_train_run(self.run_name, preset, speakers, data_hash, str(self.out.resolve()), config)
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(self.out / "tensorboard"))
        except Exception:   # TensorBoard is optional
            self.tb = None

    def step(self, stage: str, step: int, epoch: int, losses: dict, lr: float, samples_per_s: float) -> None:
        """One step's figures: to log.csv and TensorBoard now, to the store at the next `flush`."""
        if not self.main:
            return
        losses = {k: float(v) for k, v in losses.items()}
        self.pending.append(TrainStep(self.run_name, stage, step, epoch, losses, lr, samples_per_s))
        csv_path = self.out / "log.csv"
        new = not csv_path.exists()
        with open(csv_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["stage", "step", "epoch", "lr", "samples_per_s", "losses"])
            w.writerow([stage, step, epoch, f"{lr:.6g}", f"{samples_per_s:.3f}", to_json(losses)])
        if self.tb is not None:
            for k, v in losses.items():
                self.tb.add_scalar(f"{stage}/{k}", v, step)

    def flush(self) -> None:
        """Write the buffered steps to the store (at each checkpoint, so the store matches it)."""
        if self.main and self.pending:
            with Store(self.db) as store:
                store.log_train_steps(self.pending)
            self.pending = []

    def last_step(self, stage: str) -> int:
        with Store(self.db, read_only=True) as store:
            return max((s.step for s in store.train_steps(self.run_name, stage)), default=0)

    def register(self, exported: list[Checkpoint]) -> None:
        """Register exported GPT-SoVITS files (an epoch's, while the run goes on)."""
        if not self.main:
            return
        self.flush()
        with Store(self.db) as store:
            for c in exported:
                store.register_checkpoint(c)

    def finish(self, exported: list[Checkpoint], measured: dict) -> None:
        """Register the exported GPT-SoVITS files and mark the run complete; `measured` (what the
        run found out about itself, such as its peak memory) joins the run's config."""
        self.register(exported)
        with Store(self.db) as store:
            store.finish_train_run(self.run_name, measured)

    @staticmethod
    def checkpoint(path: Path, kind: str, run_name: str, stage: str, step: int, epoch: int, data_hash: str) -> Checkpoint:
        return Checkpoint(str(Path(path).resolve()), kind, run_name, stage, step, epoch, sha256_file(path), data_hash)


def run_config(s_config, g_config, options: dict, preflight: dict) -> dict:
    return {"sovits": asdict(s_config), "gpt": asdict(g_config), "options": options, "preflight": preflight}
