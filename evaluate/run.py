"""An evaluation run: score items, store them, aggregate with CIs, compare with a baseline run,
apply the regression gate.

Runs are stored in `eval_runs`, their items in `eval_items`. Items are committed in small
batches, so a killed run keeps its finished items and `--resume RUN_ID` scores only the rest.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from clonebench.core import textnorm
from clonebench.core.errors import UserError
from clonebench.core.progress import progress_bar
from clonebench.instruments.registry import sha256_file
from clonebench.instruments.references import SpeakerReference, from_paths, from_store
from clonebench.store import EvalItem, EvalRun, Store

from . import aggregate, gate
from .items import ManifestItem, read_manifest
from .result import EvaluationResult, RunListing, RunSummary, load_result
from .score import Models, score_item
from .stats import N_BOOT

log = logging.getLogger(__name__)
BATCH = 8  # items per commit

@dataclass
class EvalOptions:
    """How a run is scored, compared and gated. Audio mode reads `audio_dir` (and its manifest);
    model mode (`ModelEvalOptions.scoring`) passes the items it synthesized instead."""
    db: Path
    audio_dir: Path | None = None
    manifest: Path | None = None
    references: dict[str, list[Path]] = field(default_factory=dict)
    baseline_run: str | None = None
    fail_on: str | None = None
    gate_scope: str = "overall"
    label: str | None = None
    resume: str | None = None
    seed: int = 0
    n_boot: int = N_BOOT
    # local models (see `instruments`); None = the embedded defaults, no UTMOS
    asr: str | None = None
    speaker_encoder: str | None = None
    utmos: str | None = None
    # set by model mode (evaluate.model_mode): what made the audio and where it ran
    mode: str = "audio"
    source: str | None = None
    gpt_sha256: str | None = None
    sovits_sha256: str | None = None
    device: str = "external"
    threads: int | None = None
    notes: list[str] = field(default_factory=list)   # problems found before scoring (e.g. synthesis)

    def __post_init__(self) -> None:
        if self.gate_scope not in ("overall", "speaker"):
            raise UserError("--gate-scope is overall or speaker")
        if self.n_boot < 100:
            raise UserError("--n-boot must be at least 100")


def parse_references(specs: list[str]) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for spec in specs:
        speaker, sep, path = spec.partition("=")
        if not sep or not speaker or not path:
            raise UserError(f"--reference {spec!r}: write speaker=path (a file or a folder)")
        out.setdefault(speaker, []).append(Path(path))
    return out


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def evaluate_audio(opts: EvalOptions, models: Models | None = None) -> EvaluationResult:
    """Score a folder of audio described by a manifest; see `evaluate.items`."""
    if opts.audio_dir is None or not opts.audio_dir.is_dir():
        raise UserError(f"{opts.audio_dir}: no such folder")
    manifest = opts.manifest or opts.audio_dir / "manifest.tsv"
    if not manifest.is_file():
        raise UserError(f"{manifest}: manifest not found (file<TAB>speaker<TAB>lang<TAB>text per line)")
    gate_rules(opts)
    return score_items(opts, read_manifest(manifest, opts.audio_dir), sha256_file(manifest), models)


def gate_rules(opts: EvalOptions):
    rules = gate.parse_rules(opts.fail_on) if opts.fail_on else None
    if rules and not opts.baseline_run:
        raise UserError("--fail-on needs a baseline to compare with (--baseline-run RUN_ID)")
    return rules


def score_items(opts: EvalOptions, items: list[ManifestItem], items_sha: str,
                models: Models | None = None) -> EvaluationResult:
    """The core of both modes: score the items (resuming a run), aggregate, compare, gate.
    `items_sha` identifies the item list (the manifest's SHA-256): a resumed run must match it."""
    rules = gate_rules(opts)
    manifest_sha = items_sha
    models = models or Models.load(opts.asr, opts.speaker_encoder, opts.utmos)  # a bad model fails before any row
    with Store(opts.db) as store:
        baseline = _load_complete_run(store, opts.baseline_run) if opts.baseline_run else None
        run = _start_run(store, opts, manifest_sha, models)
        errors = _resolve_references(store, opts, items, models)
        done = store.eval_item_keys(run.run_id)
        todo = [it for it in items if it.item_key not in done]
        if done:
            log.info("resuming %s: %d items already scored, %d to go", run.run_id, len(done), len(todo))
        _score_items(store, run.run_id, todo, models, errors["refs"])
        return finish_run(store, run.run_id, baseline, rules, opts.gate_scope, opts.notes + errors["messages"])


def _load_complete_run(store: Store, run_id: str) -> EvalRun:
    run = store.eval_run(run_id)
    if not run:
        raise UserError(f"baseline run {run_id!r} is not in {store.path} (see `clonebench runs`)")
    if run.status != "complete":
        raise UserError(f"baseline run {run_id!r} did not finish; resume it with --resume {run_id} first")
    return run


def _start_run(store: Store, opts: EvalOptions, manifest_sha: str, models: Models) -> EvalRun:
    if opts.resume:
        run = store.eval_run(opts.resume)
        if not run:
            raise UserError(f"--resume {opts.resume}: no such run (see `clonebench runs`)")
        if run.manifest_sha256 != manifest_sha:
            raise UserError(f"--resume {opts.resume}: the manifest changed since that run started; start a new run")
        return run
    run = EvalRun(
        new_run_id(), "running", opts.mode, label=opts.label, source=opts.source or str(opts.audio_dir.resolve()),
        manifest_sha256=manifest_sha, gpt_sha256=opts.gpt_sha256, sovits_sha256=opts.sovits_sha256,
        encoder=models.encoder.name, asr_model=_asr_name(models), utmos_model=models.utmos.name if models.utmos else None,
        normalizer=textnorm.NORMALIZER_VERSION, seed=opts.seed, n_boot=opts.n_boot, device=opts.device,
        threads=opts.threads, baseline_run=opts.baseline_run)
    store.start_eval_run(run)
    return run


def _asr_name(models: Models) -> str:
    t = models.transcriber
    en, other = t.producer("en"), t.producer("zh")
    return en if en == other else f"{en} (en); {other} (other languages)"


def _resolve_references(store: Store, opts: EvalOptions, items: list[ManifestItem], models: Models) -> dict:
    refs: dict[str, SpeakerReference | None] = {}
    messages: list[str] = []
    for speaker in sorted({it.speaker for it in items if not it.error}):
        if speaker in opts.references:
            refs[speaker], errs = from_paths(speaker, opts.references[speaker], models.encoder)
            messages += errs
        else:
            refs[speaker] = from_store(store, speaker, models.encoder)
        if refs[speaker] is None:
            messages.append(f"no reference for speaker {speaker}: vet their recordings or pass --reference {speaker}=PATH")
    return {"refs": refs, "messages": messages}


def _score_items(store: Store, run_id: str, items: list[ManifestItem], models: Models, refs: dict) -> None:
    batch: list[EvalItem] = []
    with progress_bar(len(items), "scoring") as advance:
        for item in items:
            batch.append(score_item(models, run_id, item, refs.get(item.speaker)))
            advance()
            if len(batch) >= BATCH:
                store.put_eval_items(batch)
                batch = []
        store.put_eval_items(batch)


def finish_run(store: Store, run_id: str, baseline: EvalRun | None, rules, gate_scope: str,
               messages: list[str]) -> EvaluationResult:
    """Aggregate, compare, gate; store the summary and mark the run complete; return the result."""
    run = store.eval_run(run_id)
    items = store.eval_items(run_id)
    figures = aggregate.aggregate(items, run.n_boot, run.seed)
    comparison = verdict = None
    if baseline:
        comparison = aggregate.compare(run, items, baseline, store.eval_items(baseline.run_id), run.n_boot, run.seed)
        if rules:
            verdict = gate.apply(rules, comparison, gate_scope)
    n_errors = sum(it.status == "error" for it in items)
    summary = RunSummary.of(figures, comparison, verdict, messages)
    store.finish_eval_run(run_id, len(items), n_errors, baseline.run_id if baseline else None, summary.to_json())
    return load_result(store, run_id)


def list_runs(db: Path, limit: int = 50) -> list[RunListing]:
    with Store(db, read_only=True) as store:
        return [RunListing.of(run) for run in store.eval_runs(limit=limit)]
