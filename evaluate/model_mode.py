"""Model mode: synthesize the eval set for every enrolled speaker with a GPT + SoVITS pair, then
score the audio on the same core as audio mode.

Audio goes to `<store folder>/eval_audio/<gpt hash>-<sovits hash>-s<seed>/`, one wav per item,
with a manifest that carries each item's synthesis wall time (after a warm-up, model load
excluded) and time to first audio. Synthesis resumes: files already made are kept. With
baseline checkpoints the baseline pair is evaluated the same way first and the new pair is
compared with it, item by item, through the regression gate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.config import data_root_for
from clonebench.core.errors import UserError
from clonebench.core.progress import progress_bar
from clonebench.instruments.registry import sha256_file
from clonebench.model.spec import ModelSpec
from clonebench.store import EvalRun, Store

from .gate import GateVerdict
from .items import ManifestItem, item_key, load_eval_set
from .result import EvaluationResult, ItemError
from .run import EvalOptions, new_run_id, score_items

log = logging.getLogger(__name__)


@dataclass
class ModelEvalOptions:
    """What to synthesize and with what; `scoring` says how the audio is scored and gated
    (its `db`, `label`, `fail_on`, `seed`, models ...), as in audio mode."""
    model: ModelSpec
    scoring: EvalOptions
    baseline: ModelSpec | None = None    # a pair scored first, loaded as `model` is
    eval_set: str = "default"
    speakers: list[str] = field(default_factory=list)
    eval_items: int | None = None        # each speaker says at most this many sentences, of its own language

    def __post_init__(self) -> None:
        if self.eval_items is not None and self.eval_items < 1:
            raise UserError("--eval-items must be at least 1")
        if self.scoring.fail_on and self.baseline is None:
            raise UserError("--fail-on needs baseline checkpoints (--baseline-gpt and --baseline-sovits)")
        load_eval_set(self.eval_set)   # an unknown set or a bad TSV fails before any model loads

    @property
    def db(self) -> Path:
        return self.scoring.db

    @property
    def seed(self) -> int:
        return self.scoring.seed


def enrolled_speakers(db: Path) -> list[str]:
    with Store(db, read_only=True) as store:
        return store.enrolled_speakers()


@dataclass(frozen=True)
class SynthesizedSet:
    """One checkpoint pair's eval audio: the items to score and what the run records about them."""
    items: list[ManifestItem]
    digest: str            # SHA-256 of the manifest: a resumed run must score the same items
    gpt_sha256: str
    sovits_sha256: str
    audio_dir: Path
    device: str            # as the run shows it: "cuda (NVIDIA H200), bf16"
    threads: int
    source: str
    notes: list[str]


def _record_failed_run(opts: ModelEvalOptions, spec: ModelSpec, label: str | None, message: str) -> str:
    """A checkpoint that cannot be loaded still leaves a row in the history, with the reason."""
    run_id = new_run_id()
    with Store(opts.db) as store:
        store.start_eval_run(EvalRun(run_id, "failed", "model", label=label, source=f"gpt={spec.gpt} sovits={spec.sovits}",
                                     seed=opts.seed, device=spec.device, threads=spec.threads, n_items=0, n_errors=1,
                                     summary={"messages": [message]}))
    return run_id


def speaker_prompts(db: Path, speakers: list[str]) -> tuple[dict, list[str]]:
    """Each speaker's reference clip and transcript, chosen once for every checkpoint pair;
    speakers without a usable one are named in the notes."""
    from clonebench.instruments.references import prompt_from_store
    from clonebench.instruments.speakers import SpeakerEncoder

    encoder = SpeakerEncoder()
    prompts, notes = {}, []
    for speaker in speakers:
        try:
            prompts[speaker] = prompt_from_store(db, speaker, encoder)
        except UserError as e:
            notes.append(f"speaker {speaker} not synthesized: {e}")
            log.warning(notes[-1])
    return prompts, notes


def synthesize_eval_set(opts: ModelEvalOptions, spec: ModelSpec, prompts: dict, notes: list[str]) -> SynthesizedSet:
    """Make (or reuse) the eval audio of one checkpoint pair, noting the problems met (a speaker
    without a usable prompt, an item that could not be said). The folder also gets a manifest,
    so `evaluate --audio-dir` can score it again."""
    import torch

    from clonebench.core.audio import write_wav
    from clonebench.model.synthesize import Synthesizer

    sentences = load_eval_set(opts.eval_set)
    gpt_sha, sovits_sha = sha256_file(spec.gpt), sha256_file(spec.sovits)
    synth = Synthesizer(spec)
    variant = ""   # a v2Pro voice's timbre source (and the network behind it) changes its audio
    if synth.sovits.config.is_pro:
        variant = f"-{spec.timbre}" + (f"-sv{synth.sv_model.sha256[:8]}" if spec.timbre == "reference" else "")
    folder = (data_root_for(opts.db) / "eval_audio"
              / f"{gpt_sha[:10]}-{sovits_sha[:10]}-s{opts.seed}-{spec.precision}{variant}")
    folder.mkdir(parents=True, exist_ok=True)
    timings_file = folder / "timings.tsv"   # one line per finished item: resumable
    done = {}
    if timings_file.exists():
        for line in timings_file.read_text(encoding="utf-8").splitlines():
            name, synth_s, ttfa_s = line.split("\t")
            if (folder / name).is_file():
                done[name] = (synth_s, ttfa_s)
    lines, items, seen, notes, warmed = [], [], {}, list(notes), False
    said = {speaker: sentences_for(sentences, prompt.lang, opts.eval_items) for speaker, prompt in prompts.items()}
    for speaker, chosen in said.items():
        if not chosen:
            notes.append(f"speaker {speaker} not synthesized: the eval set has no sentence in {prompts[speaker].lang!r}")
    with progress_bar(sum(len(v) for v in said.values()), "synthesizing") as advance:
        for speaker, prompt in prompts.items():
            try:
                ref = synth.reference(prompt)
            except UserError as e:
                notes.append(f"speaker {speaker} not synthesized: {e}")
                log.warning(notes[-1])
                for _ in said[speaker]:
                    advance()
                continue
            prompt_rel = Path(prompt.source)
            for s in said[speaker]:
                name = f"{speaker}/{s.sentence_id}.wav"
                if name not in done:
                    try:
                        if not warmed:      # the first call pays one-off costs (allocations, caches)
                            synth.synthesize(s.text, s.lang, ref, seed=opts.seed)
                            warmed = True
                        start = time.perf_counter()
                        result = synth.synthesize(s.text, s.lang, ref, seed=opts.seed)
                    except UserError as e:
                        notes.append(f"{speaker} {s.sentence_id} not synthesized: {e}")
                        log.warning(notes[-1])
                        advance()
                        continue
                    synth_s = time.perf_counter() - start
                    write_wav(folder / name, result.audio, result.sample_rate)
                    done[name] = (f"{synth_s:.4f}", f"{result.ttfa_s:.4f}")
                    with open(timings_file, "a", encoding="utf-8") as f:
                        f.write(f"{name}\t{done[name][0]}\t{done[name][1]}\n")
                synth_s, ttfa_s = done[name]
                lines.append("\t".join([name, speaker, s.lang, s.text, str(prompt_rel), synth_s, ttfa_s]))
                items.append(ManifestItem(item_key(speaker, s.lang, s.text, seen), speaker, s.lang, s.text, folder / name,
                                      prompt_rel, float(synth_s), None, float(ttfa_s)))
                advance()
    if not lines:
        raise UserError("nothing was synthesized: " + "; ".join(notes))
    manifest = "\n".join(lines) + "\n"
    (folder / "manifest.tsv").write_text(manifest, encoding="utf-8")
    device = spec.device + (f" ({torch.cuda.get_device_name()})" if spec.device.startswith("cuda") else "")
    if spec.precision != "fp32":
        device += f", {spec.precision}"
    return SynthesizedSet(items, hashlib.sha256(manifest.encode()).hexdigest(), gpt_sha, sovits_sha, folder, device,
                          torch.get_num_threads(), f"gpt={spec.gpt} sovits={spec.sovits} eval_set={opts.eval_set}"
                          + (f" eval_items={opts.eval_items}" if opts.eval_items else "")
                          + (f" timbre={spec.timbre}" if synth.sovits.config.is_pro else ""), notes)


def sentences_for(sentences: list, lang: str, limit: int | None) -> list:
    """Every sentence for every speaker (no limit); with `limit`, at most that many of the
    speaker's own language, spread evenly over the set (its categories run short to hard)."""
    if limit is None:
        return list(sentences)
    own = [s for s in sentences if s.lang == lang]
    if len(own) <= limit:
        return own
    return [own[round(i * (len(own) - 1) / max(1, limit - 1))] for i in range(limit)] if limit > 1 else own[:1]


@dataclass(frozen=True)
class FailedPair:
    """A checkpoint pair that could not be loaded: its failed run and why."""
    run_id: str
    error: str


def evaluate_pair(opts: ModelEvalOptions, spec: ModelSpec, prompts: tuple[dict, list[str]], label: str | None,
                   baseline_run: str | None, fail_on: str | None, models) -> EvaluationResult | FailedPair:
    from clonebench.model.checkpoint import CheckpointError

    try:
        made = synthesize_eval_set(opts, spec, *prompts)
    except CheckpointError as e:
        return FailedPair(_record_failed_run(opts, spec, label, str(e)), str(e))
    scoring = dataclasses.replace(opts.scoring, label=label, baseline_run=baseline_run, fail_on=fail_on, mode="model",
                                  notes=made.notes, gpt_sha256=made.gpt_sha256, sovits_sha256=made.sovits_sha256,
                                  audio_dir=made.audio_dir, device=made.device, threads=made.threads, source=made.source)
    return score_items(scoring, made.items, made.digest, models)


def evaluate_model(opts: ModelEvalOptions) -> EvaluationResult:
    """Evaluate a checkpoint pair (and its baseline pair first, when given)."""
    speakers = opts.speakers or enrolled_speakers(opts.db)
    if not speakers:
        raise UserError(f"no speakers with accepted clips in {opts.db}: vet recordings first, or name --speakers")
    from .score import Models

    sc = opts.scoring
    models = Models.load(sc.asr, sc.speaker_encoder, sc.utmos)  # scorers load (or fail) before any synthesis
    prompts = speaker_prompts(opts.db, speakers)
    baseline = None
    if opts.baseline is not None:
        baseline = evaluate_pair(opts, opts.baseline, prompts,
                                  f"{sc.label or 'model'} (baseline)", None, None, models)
    baseline_ok = isinstance(baseline, EvaluationResult)
    result = evaluate_pair(opts, opts.model, prompts, sc.label,
                            baseline.run_id if baseline_ok else None, sc.fail_on if baseline_ok else None, models)
    if isinstance(result, FailedPair):
        raise UserError(result.error)
    if isinstance(baseline, FailedPair):
        result = dataclasses.replace(
            result, errors=(*result.errors, ItemError(None, f"baseline not evaluated: {baseline.error}")))
        if sc.fail_on:
            result = dataclasses.replace(result, gate=GateVerdict(
                False, (sc.fail_on,), sc.gate_scope, unchecked=("the baseline checkpoints could not be evaluated",)))
    return dataclasses.replace(result, baseline=baseline.run_id if baseline else None)
