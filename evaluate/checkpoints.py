"""A training run's checkpoints scored on the voices it is for, and the one a stated rule
chooses (`clonebench evaluate --run`, and `train --eval-every` between epochs).

Each pair is the run's SoVITS file with one of its GPT files (an epoch of stage s1), scored by
model-mode evaluation on up to `eval_items` sentences per trained speaker, in the speaker's own
language. A pair's evaluation run is labelled `<run> e<epoch>`; one finished before (for the same
files) is reused, so scoring a run again only scores the epochs not scored yet. The eval runs
are linked to the run, stage, epoch and step through the `checkpoints` table (same SHA-256).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.model.spec import ModelSpec
from clonebench.store import CheckpointChoice, Store

from .choose import DEFAULT_RULE, Choice, ChoiceRule, ScoredCheckpoint, choose
from .model_mode import FailedPair, ModelEvalOptions, evaluate_pair, speaker_prompts
from .result import load_result
from .run import EvalOptions

log = logging.getLogger(__name__)
EVAL_ITEMS = 8


@dataclass(frozen=True)
class CheckpointPair:
    run_name: str
    epoch: int                # the GPT's (stage s1) epoch
    step: int
    gpt: Path
    sovits: Path
    gpt_sha256: str

    @property
    def label(self) -> str:
        return f"{self.run_name} e{self.epoch}"


@dataclass(frozen=True)
class RunEvalOptions:
    """`evaluate --run`: which run, how each pair is loaded (`model`: device, precision, ...;
    its files are replaced by each pair's), how it is scored, and the rule that chooses."""
    run: str                  # the run's name, or its folder
    model: ModelSpec | None   # None: each pair on `device` with the defaults
    scoring: EvalOptions
    rule: ChoiceRule = ChoiceRule.parse(DEFAULT_RULE)
    eval_items: int = EVAL_ITEMS
    eval_set: str = "default"
    device: str = "cpu"           # where pairs are synthesized when `model` is None (training's device)
    sv_model: Path | None = None  # v2Pro/v2ProPlus pairs: the ERes2NetV2 file

    @property
    def run_name(self) -> str:
        return Path(self.run).name


def run_pairs(db: Path, run_name: str) -> list[CheckpointPair]:
    """Every GPT file the run registered, each with the run's newest SoVITS file, by epoch."""
    with Store(db, read_only=True) as store:
        if store.train_run(run_name) is None:
            raise UserError(f"no training run {run_name!r} in {db} (see its --out folder's name)")
        ckpts = store.checkpoints(run_name)
    sovits = [c for c in ckpts if c.kind == "sovits"]
    gpts = sorted((c for c in ckpts if c.kind == "gpt"), key=lambda c: (c.epoch, c.step))
    if not sovits or not gpts:
        raise UserError(f"run {run_name!r} has no exported GPT and SoVITS files yet: train it to the end, "
                        "or with --eval-every")
    s2 = max(sovits, key=lambda c: c.step)
    return [CheckpointPair(run_name, g.epoch, g.step, Path(g.path), Path(s2.path), g.sha256) for g in gpts
            if Path(g.path).is_file()]


class RunScorer:
    """Scores pairs of one run: the scoring models and the speakers' prompts are loaded once."""

    def __init__(self, opts: RunEvalOptions, speakers: list[str]):
        from .score import Models

        self.opts = opts
        sc = opts.scoring
        self.models = Models.load(sc.asr, sc.speaker_encoder, sc.utmos)
        self.prompts = speaker_prompts(sc.db, speakers)
        self.speakers = speakers

    def score(self, pair: CheckpointPair) -> ScoredCheckpoint | None:
        """The pair's evaluation (reused when one finished for these files); None when the pair
        cannot be loaded (its failed run is recorded)."""
        sc = self.opts.scoring
        with Store(sc.db, read_only=True) as store:
            done = store.newest_complete_run(pair.label)
            if done is not None and not _same_scoring(store.eval_run(done), pair, self.opts):
                done = None   # a run of the same name trained again, or scored on another set
        if done is None:
            base = self.opts.model
            spec = (base.with_files(pair.gpt, pair.sovits, base.timbre) if base is not None
                    else ModelSpec(pair.gpt, pair.sovits, device=self.opts.device, sv_model=self.opts.sv_model))
            mopts = ModelEvalOptions(spec, sc, eval_set=self.opts.eval_set, speakers=self.speakers,
                                     eval_items=self.opts.eval_items)
            made = evaluate_pair(mopts, spec, self.prompts, pair.label, None, None, self.models)
            if isinstance(made, FailedPair):
                log.warning("%s not scored: %s", pair.label, made.error)
                return None
            done = made.run_id
        with Store(sc.db, read_only=True) as store:
            result = load_result(store, done)
            run = store.eval_run(done)
        from .figures import RunFigures

        return ScoredCheckpoint(pair.epoch, pair.step, pair.gpt, pair.sovits, run, result.items,
                                RunFigures(result.speakers, result.overall))


def _same_scoring(run, pair: CheckpointPair, opts: RunEvalOptions) -> bool:
    source = f" {run.source or ''} "
    return (run.gpt_sha256 == pair.gpt_sha256 and f" eval_set={opts.eval_set} " in source
            and f" eval_items={opts.eval_items} " in source)


@dataclass(frozen=True)
class RunEvaluation:
    run_name: str
    checkpoints: tuple[ScoredCheckpoint, ...]
    choice: Choice
    not_scored: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"run": self.run_name, "choice": self.choice.to_json(),
                "checkpoints": [{**c.to_json(), "overall": {m: f.to_json() for m, f in c.figures.overall.items()},
                                 "speakers": {s: {m: f.to_json() for m, f in figs.items()}
                                              for s, figs in c.figures.speakers.items()}}
                                for c in self.checkpoints],
                "not_scored": list(self.not_scored)}


def decide(db: Path, run_name: str, scored: list[ScoredCheckpoint], rule: ChoiceRule, n_boot: int, seed: int,
           not_scored: tuple[str, ...] = ()) -> RunEvaluation:
    """Apply the rule and record what it chose (nothing is recorded when nothing passes)."""
    choice = choose(scored, rule, n_boot, seed)
    if choice.chosen is not None:
        c = choice.chosen
        with Store(db) as store:
            store.record_choice(CheckpointChoice(run_name, str(rule), str(c.gpt), str(c.sovits), c.epoch, c.run.run_id,
                                                 choice.to_json()))
    return RunEvaluation(run_name, tuple(sorted(scored, key=lambda c: c.epoch)), choice, not_scored)


def evaluate_run(opts: RunEvalOptions) -> RunEvaluation:
    """Score every checkpoint pair of the run not scored yet, then choose."""
    db = opts.scoring.db
    pairs = run_pairs(db, opts.run_name)
    with Store(db, read_only=True) as store:
        speakers = list(store.train_run(opts.run_name).speakers)
    scorer = RunScorer(opts, speakers)
    scored, missed = [], []
    for pair in pairs:
        got = scorer.score(pair)
        (scored.append(got) if got is not None else missed.append(pair.label))
    sc = opts.scoring
    return decide(db, opts.run_name, scored, opts.rule, sc.n_boot, sc.seed, tuple(missed))


def chosen_pair(db: Path, run: str) -> CheckpointChoice:
    """The pair `serve --run` and `export --run` use: the run's newest choice."""
    name = Path(run).name
    with Store(db, read_only=True) as store:
        known = store.train_run(name)
        choice = store.chosen_checkpoint(name)
    if known is None:
        raise UserError(f"no training run {name!r} in {db}")
    if choice is None:
        raise UserError(f"run {name!r} has no chosen checkpoint: score it with `clonebench evaluate --run {name}` "
                        "(or train with --eval-every)")
    for path in (choice.gpt_path, choice.sovits_path):
        if not Path(path).is_file():
            raise UserError(f"run {name!r}: the chosen file {path} is gone")
    return choice
