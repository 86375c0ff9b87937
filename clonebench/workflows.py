"""What each command does end to end: run a stage, then write its reports. The CLI parses
options and calls one of these; a Python user calls them the same way.

A report that fails to render is a warning on the result, never the stage's failure: the
stage's work is done and stored by then.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger("clonebench")


def _report(make, *args) -> str | None:
    try:
        return str(make(*args))
    except Exception as e:  # the stage's own work is stored: keep its result
        log.warning("report not written: %s: %s", type(e).__name__, e, exc_info=log.isEnabledFor(logging.DEBUG))
        return None


def vet(opts, report: bool = True):
    """`clonebench vet`: one speaker's files, or every speaker of a GPT-SoVITS list (`opts.list_file`);
    then each speaker's report and the dataset overview. Returns a `VetResult` or `VetListResult`."""
    from dataclasses import replace

    from clonebench.curate.vet import vet as vet_speaker
    from clonebench.curate.vet import vet_list
    from clonebench.reports.dataset import dataset_report
    from clonebench.reports.speaker import speaker_report

    result = vet_list(opts) if opts.list_file else vet_speaker(opts)
    docs = result.speakers if opts.list_file else [result]
    if report:
        result = replace(result, reports=tuple(p for p in [*(_report(speaker_report, opts.db, d.speaker) for d in docs),
                                                           _report(dataset_report, opts.db)] if p))
    return result


def evaluate(opts, report: bool = True):
    """`clonebench evaluate`: audio mode (`EvalOptions`) or model mode (`ModelEvalOptions`); then the run's report.
    Returns an `EvaluationResult`."""
    from clonebench.evaluate.model_mode import ModelEvalOptions, evaluate_model
    from clonebench.evaluate.run import evaluate_audio
    from clonebench.reports.evaluation import eval_report

    result = evaluate_model(opts) if isinstance(opts, ModelEvalOptions) else evaluate_audio(opts)
    if report:
        result = result.with_report(_report(eval_report, opts.db, result.run_id))
    return result


def train(opts, report: bool = True, choosing=None) -> dict:
    """`clonebench train`; with `opts.eval_every`, each exported pair scored between epochs and
    the checkpoint `choosing` (a `RunEvalOptions`) states chosen at the end; then the training
    report (rank 0 of a distributed run alone writes it)."""
    from clonebench.model.train import train as run_train
    from clonebench.reports.training import training_report

    on_pair, decide = _scoring(opts, choosing) if opts.eval_every else (None, None)
    result = run_train(opts, on_pair)
    if result.get("rank", 0) == 0:
        if decide is not None:
            scored = decide().to_json()
            result["choice"], result["scored"] = scored["choice"], scored["checkpoints"]
        result["report"] = _report(training_report, opts.db, result["run"]) if report else None
    return result


def _scoring(opts, choosing):
    """What training calls with each epoch's pair (score it), and how the run's choice is made."""
    from clonebench.evaluate.checkpoints import CheckpointPair, RunEvalOptions, RunScorer, decide
    from clonebench.evaluate.run import EvalOptions
    from clonebench.instruments.registry import sha256_file
    from clonebench.store import Store

    choosing = choosing or RunEvalOptions(str(opts.out), None, EvalOptions(db=opts.db))
    scored, missed, scorer = [], [], []

    def on_pair(pair) -> None:
        if not scorer:   # the scoring models load once, at the first pair
            with Store(opts.db, read_only=True) as store:
                speakers = list(store.train_run(pair.run_name).speakers)
            scorer.append(RunScorer(choosing, speakers))
        got = scorer[0].score(CheckpointPair(pair.run_name, pair.epoch, pair.step, pair.gpt, pair.sovits,
                                             sha256_file(pair.gpt)))
        (scored.append(got) if got is not None else missed.append(f"{pair.run_name} e{pair.epoch}"))

    def choose():
        sc = choosing.scoring
        return decide(opts.db, Path(opts.out).name, scored, choosing.rule, sc.n_boot, sc.seed, tuple(missed))

    return on_pair, choose


def evaluate_run(opts, report: bool = True):
    """`clonebench evaluate --run`: score the run's checkpoints, choose; then the training report."""
    from clonebench.evaluate.checkpoints import evaluate_run as score_run
    from clonebench.reports.training import training_report

    result = score_run(opts)
    path = _report(training_report, opts.scoring.db, result.run_name) if report else None
    return result, path


def export_chosen(db: Path, run: str, out: Path) -> dict:
    """`export --run`: the run's chosen GPT-SoVITS pair, copied into `out` under names that say so."""
    import shutil

    from clonebench.evaluate.checkpoints import chosen_pair

    choice = chosen_pair(db, run)
    out.mkdir(parents=True, exist_ok=True)
    name = Path(run).name
    paths = {"gpt": out / f"{name}-chosen-e{choice.epoch}.ckpt", "sovits": out / f"{name}-chosen-{Path(choice.sovits_path).stem}.pth"}
    shutil.copyfile(choice.gpt_path, paths["gpt"])
    shutil.copyfile(choice.sovits_path, paths["sovits"])
    return {"run": name, "epoch": choice.epoch, "rule": choice.rule, "gpt": str(paths["gpt"]), "sovits": str(paths["sovits"]),
            "why": choice.summary.get("why")}


def give_prompt(db: Path, speaker: str, audio: Path, text: str, lang: str, by: str | None):
    """`prompt set`: the text must be one the front end reads before the store records it."""
    from clonebench.instruments.references import give_prompt as record
    from clonebench.model.text.frontend import phonemize

    phonemize(text, lang)
    return record(db, speaker, audio, text, lang, by)


def demo(data: Path) -> dict:
    """`clonebench demo`: build the demo corpus, vet it, score two demo systems, write every report."""
    from clonebench.demo import run_demo, run_eval_demo
    from clonebench.reports.dataset import dataset_report
    from clonebench.reports.evaluation import eval_report
    from clonebench.reports.speaker import speaker_report

    results = run_demo(data)
    evals = run_eval_demo(data)
    db = Path(data) / "clonebench.duckdb"
    reports = [_report(speaker_report, db, r.speaker) for r in results] + [_report(dataset_report, db)]
    reports += [_report(eval_report, db, result.run_id) for result in evals]
    return {"vet": results, "evaluate": evals, "reports": [p for p in reports if p]}
