"""`vet`: ingest -> slice -> screen -> transcribe -> verdicts, for each speaker of a run (in this
process, or on a Ray cluster: `cluster.py`); the per-speaker steps around the screens are in
`speaker.py`, the models in `models.py`.

Every stage skips work the store says is finished, so running vet again on the same files
adds nothing, and a run killed half-way resumes where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from clonebench.core import audio
from clonebench.core.config import check_speaker_name
from clonebench.core.errors import UserError
from clonebench.core.languages import VET_LANGS
from clonebench.core.progress import progress_bar
from clonebench.store import Store

from . import screen
from .given import MANIFEST_SUFFIXES, GivenTexts, read_list, read_manifest, read_tsv
from .ingest import ingest
from .models import VetModels, load_models
from .results import SourceError, VetListResult, VetResult
from .rules import RuleSet
from .slicer import SliceConfig
from .speaker import finish_speaker, speaker_result, start_speaker

if TYPE_CHECKING:
    from .cluster import ClusterRun, RayOptions

log = logging.getLogger(__name__)


@dataclass
class VetOptions:
    """What `vet` needs; invalid combinations fail here, in one line, before any work."""
    speaker: str | None
    db: Path
    lang: str = "en"
    transcripts: Path | None = None  # `name<TAB>text` TSV; .lab/.txt files beside the audio are read too
    list_file: Path | None = None    # a GPT-SoVITS list: every speaker in it, instead of inputs + speaker
    inputs: list[Path] = field(default_factory=list)
    rules: Path | None = None
    slicing: SliceConfig = field(default_factory=SliceConfig)
    max_recording_min: float = 20.0
    # local models (see `instruments`); None = the embedded defaults, no overlap detector
    asr: str | None = None
    speaker_encoder: str | None = None
    overlap: str | None = None
    sv_model: Path | None = None     # ERes2NetV2: each speaker's v2Pro timbre vector goes to the timbre library
    ray: "RayOptions | None" = None  # vet on a Ray cluster (curate/cluster.py): the same results

    def __post_init__(self) -> None:
        s = self.slicing
        if s.min_clip_s <= 0 or s.max_clip_s <= s.min_clip_s:
            raise UserError("need 0 < --min-clip < --max-clip")
        if self.lang not in VET_LANGS:
            raise UserError(f"unsupported --lang {self.lang!r}: choose one of {', '.join(VET_LANGS)}")
        for flag, path in (("--transcripts", self.transcripts), ("--list", self.list_file), ("--sv-model", self.sv_model)):
            if path is not None and not Path(path).is_file():
                raise UserError(f"{flag} {path}: file not found")
        if self.list_file is not None:
            if self.inputs or self.speaker is not None or self.transcripts:
                raise UserError("--list names the files, speakers and texts: give no INPUTS, --speaker or --transcripts with it")
        else:
            if self.speaker is None or not self.inputs:
                raise UserError("give INPUTS and --speaker (or a GPT-SoVITS --list)")
            check_speaker_name(self.speaker)


@dataclass(frozen=True)
class SpeakerJob:
    """One speaker's part of a run: its files, their texts and the language to vet them in."""
    speaker: str
    lang: str
    files: list[Path]
    texts: GivenTexts


def vet(opts: VetOptions) -> VetResult:
    """Vet recordings of one speaker; `to_json()` of the result is the document the README describes."""
    by_name, errors = read_tsv(opts.transcripts) if opts.transcripts else ({}, [])
    files, missing = audio.find_audio(opts.inputs)
    errors += [SourceError(m["source"], m["error"]) for m in missing]
    results, failed, run = run_jobs(opts, [SpeakerJob(opts.speaker, opts.lang, files, GivenTexts(by_name))])
    return replace(results[0], errors=tuple(errors + failed), cluster=run)


def run_jobs(opts: VetOptions, jobs: list[SpeakerJob]) -> tuple[list[VetResult], list[SourceError], "ClusterRun | None"]:
    """Vet the speakers in this process, or on a Ray cluster with `opts.ray` (same results)."""
    if opts.ray is not None:
        from .cluster import vet_on_ray

        return vet_on_ray(opts, jobs)
    models, rules = load_models(opts)
    results, errors = [], []
    with Store(opts.db) as store:
        for job in jobs:
            warnings, failed = _vet_speaker(store, job.speaker, job.lang, job.files, job.texts, opts, models, rules)
            errors += failed
            results.append(speaker_result(store, job.speaker, rules, opts.db, warnings, None))
    return results, errors, None


def vet_list(opts: VetOptions) -> VetListResult:
    """Vet every speaker of a GPT-SoVITS `.list` (or a CSV/Parquet corpus manifest) in one run;
    each speaker's language comes from its lines (the most common one)."""
    list_file = opts.list_file
    entries, errors = read_manifest(list_file) if list_file.suffix.lower() in MANIFEST_SUFFIXES else read_list(list_file)
    by_speaker: dict[str, list] = {}
    for e in entries:
        by_speaker.setdefault(e.speaker, []).append(e)
    if not by_speaker:
        raise UserError(f"{list_file}: no usable line" + (f" ({errors[0].error})" if errors else ""))
    jobs = []
    for speaker, mine in sorted(by_speaker.items()):
        langs = [e.lang for e in mine]
        lang = max(sorted(set(langs)), key=langs.count)
        files = []
        for e in mine:
            if e.path.is_file():
                files.append(e.path)
            else:
                errors.append(SourceError(e.text.source, f"{e.text.source}: {e.path}: no such file"))
        jobs.append(SpeakerJob(speaker, lang, files, GivenTexts(by_path={e.path: e.text for e in mine if e.text.text})))
    results, failed, run = run_jobs(opts, jobs)
    return VetListResult(tuple(results), tuple(errors + failed), str(opts.db), cluster=run)


def _vet_speaker(store: Store, speaker: str, lang: str, files: list[Path], texts: GivenTexts, opts: VetOptions,
                 models: "VetModels", rules: RuleSet) -> tuple[list[str], list[SourceError]]:
    """Ingest, screen and judge one speaker's files; returns the warnings and the files that failed."""
    ingest_opts = start_speaker(store, speaker, lang, rules, opts)
    with progress_bar(len(files), f"ingest + slice ({speaker})") as step:
        errors = ingest(store, files, texts, ingest_opts, step)
    screen_speaker(store, speaker, lang, rules, models)
    return finish_speaker(store, speaker, lang, rules, models.encoder.name, models.timbre), errors


def screen_speaker(store: Store, speaker: str, lang: str, rules: RuleSet, models: VetModels) -> None:
    pending = store.pending(speaker, screen.SIGNAL_STAGE, screen.SIGNAL_PRODUCER)
    if pending:
        screens = screen.SignalScreens()
        with progress_bar(len(pending), "screen") as step:
            for clip in pending:
                screens.run(store, clip)
                step()
    encoder = models.encoder
    pending = store.pending(speaker, screen.embed_stage(encoder.name), encoder.name)
    if pending:
        with progress_bar(len(pending), "speaker embeddings") as step:
            for clip in pending:
                screen.run_embedding(store, encoder, clip)
                step()
    pending = store.pending(speaker, screen.OVERLAP_STAGE, models.overlap.name) if models.overlap else []
    if pending:
        with progress_bar(len(pending), "overlap") as step:
            for clip in pending:
                screen.run_overlap(store, models.overlap, clip)
                step()
    transcriber = models.transcriber
    pending = store.pending(speaker, screen.ASR_STAGE, transcriber.producer(lang))
    if pending:
        batches = screen.asr_batches(pending)
        with progress_bar(len(batches), "transcribe") as step:
            for batch in batches:
                screen.run_asr(store, transcriber, batch, lang, rules.clip.min_avg_logprob)
                step()
