"""`vet`: ingest -> slice -> screen -> transcribe -> verdicts, for one speaker.

Every stage skips work the store says is finished, so running vet again on the same files
adds nothing, and a run killed half-way resumes where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clonebench.core import audio
from clonebench.core.align import split_text
from clonebench.core.config import check_speaker_name, data_root_for
from clonebench.core.errors import UserError
from clonebench.core.languages import VET_LANGS
from clonebench.core.progress import progress_bar
from clonebench.core.textnorm import error_rates
from clonebench.instruments.jobs import OverlapDetector, SpeakerEncoder, Transcriber
from clonebench.instruments.speakers import centroid as speaker_centroid
from clonebench.instruments.speakers import split_consistency, split_gap, window_min_cos
from clonebench.store import ASR, GIVEN, TIMBRE_PREFIX, Enrolment, Store, Transcript, Verdict

from . import screen
from .given import MANIFEST_SUFFIXES, GivenTexts, read_list, read_manifest, read_tsv
from .ingest import IngestOptions, ingest
from .results import ClipResult, SourceError, VetListResult, VetResult
from .reviews import settle
from .rules import ClipJudgement, RuleSet, SpeakerContext, judge_clip, rate_fence, rate_of
from .slicer import SliceConfig

if TYPE_CHECKING:
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

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


def load_models(opts: VetOptions) -> tuple["VetModels", RuleSet]:
    """Models and rules load before any work, so a bad --asr/--speaker-encoder/--overlap/--rules
    fails at once and leaves no store behind."""
    sv = None
    if opts.sv_model is not None:
        from clonebench.instruments.eres2net import ERes2NetV2Encoder

        sv = ERes2NetV2Encoder(opts.sv_model)
    models = clip_models(opts.asr, opts.speaker_encoder, opts.overlap, sv)
    return models, RuleSet.load(opts.rules).for_encoder(models.encoder.name)


def clip_models(asr: str | None, encoder: str | None, overlap: str | None, timbre=None) -> "VetModels":
    """The per-clip models from their specs (None: the embedded defaults; no overlap detector)."""
    from clonebench import instruments

    return VetModels(instruments.transcriber(asr), instruments.speaker_encoder(encoder),
                     instruments.overlap_detector(overlap), timbre)


def _vet_speaker(store: Store, speaker: str, lang: str, files: list[Path], texts: GivenTexts, opts: VetOptions,
                 models: "VetModels", rules: RuleSet) -> tuple[list[str], list[SourceError]]:
    """Ingest, screen and judge one speaker's files; returns the warnings and the files that failed."""
    ingest_opts = start_speaker(store, speaker, lang, rules, opts)
    with progress_bar(len(files), f"ingest + slice ({speaker})") as step:
        errors = ingest(store, files, texts, ingest_opts, step)
    screen_speaker(store, speaker, lang, rules, models)
    return finish_speaker(store, speaker, lang, rules, models.encoder.name, models.timbre), errors


def start_speaker(store: Store, speaker: str, lang: str, rules: RuleSet, opts: VetOptions) -> IngestOptions:
    """The rule set and the speaker recorded; where the speaker's clips go."""
    store.record_rule_set(rules.version, rules.thresholds(), str(opts.rules or "built-in"))
    store.put_speaker(speaker, lang)
    return IngestOptions(speaker, data_root_for(opts.db) / "clips" / speaker, opts.slicing, opts.max_recording_min * 60)


def finish_speaker(store: Store, speaker: str, lang: str, rules: RuleSet, encoder: str,
                   timbre: "ERes2NetV2Encoder | None") -> list[str]:
    """Once every clip is screened: the verdicts and enrolment, then the timbre vector."""
    warnings = decide(store, speaker, lang, rules, encoder)
    if timbre is not None:
        timbre_library(store, speaker, rules, timbre)
    return warnings


def timbre_library(store: Store, speaker: str, rules: RuleSet, sv: "ERes2NetV2Encoder") -> None:
    """The speaker's v2Pro timbre vector: the mean of ERes2NetV2's `forward3` over their accepted
    clips, each computed as upstream's training does (the 32 kHz clip resampled to 16 kHz), kept
    in the timbre library beside the speaker encoder's centroid (`synth --timbre speaker`)."""
    accepted = [v.clip for v in store.clip_views(speaker, rule_set=rules.version) if v.status == "accepted"]
    features = data_root_for(store.path) / "features"   # where training finds them again
    vectors = [sv.timbre_of_clip(c.path_32k, features, c.clip_id).numpy() for c in accepted]
    mean = np.mean(vectors, axis=0).astype(np.float32) if vectors else None
    with store.transaction():
        store.put_speaker_embedding(speaker, f"{TIMBRE_PREFIX}{sv.name}", mean, len(vectors))


@dataclass
class VetModels:
    transcriber: Transcriber
    encoder: SpeakerEncoder
    overlap: OverlapDetector | None = None
    timbre: "ERes2NetV2Encoder | None" = None   # --sv-model: v2Pro timbre vectors for the timbre library


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


def _expected_language(store: Store, speaker: str, lang: str) -> str:
    if lang != "auto":
        return lang
    return store.majority_language(speaker) or "en"


POOR_ALIGNMENT = 0.5  # below this share of matched words, a clip's part of a split text is doubtful


def split_given_texts(store: Store, speaker: str, lang: str, asr: dict[str, Transcript]) -> tuple[dict[str, Transcript], list[str]]:
    """Each clip's share of its recording's given text (stored as GIVEN transcripts), and a
    warning for every recording whose split is doubtful."""
    by_recording: dict[str, list] = {}
    for c in store.clips(speaker):
        by_recording.setdefault(c.recording_sha256, []).append(c)
    out, warnings = {}, []
    for sha, given in store.given_texts(speaker).items():
        members = sorted(by_recording.get(sha, []), key=lambda c: c.start_s)
        if not members or not all(c.clip_id in asr for c in members):
            continue
        words = store.words([c.clip_id for c in members])
        parts = split_text(given.text, [[w.word for w in words[c.clip_id]] for c in members], lang)
        producer = f"user:{given.source}" + (f"+align:{len(members)} clips" if len(members) > 1 else "")
        for c, part in zip(members, parts):
            out[c.clip_id] = Transcript(c.clip_id, GIVEN, part.text, given.lang or lang, producer=producer,
                                        alignment_score=part.score)
        poor = [(c, p) for c, p in zip(members, parts) if p.score is not None and p.score < POOR_ALIGNMENT]
        if poor:
            warnings.append(f"{given.source}: the given text was split onto {len(members)} clips by aligning it with the "
                            f"ASR words, and {len(poor)} of them matched poorly (" +
                            ", ".join(f"{c.start_s:.1f}-{c.end_s:.1f} s: {p.score:.2f}" for c, p in poor) +
                            "); check the text of those clips, or give each clip its own file")
    store.put_clip_texts([t for t in out.values() if t.text])
    return out, warnings


def decide(store: Store, speaker: str, lang: str, rules: RuleSet, encoder: str) -> list[str]:
    """Judge every clip of the speaker with the rule set, and the speaker's enrolment. Returns
    warnings about given texts that could not be split onto clips with confidence."""
    clips = store.clips(speaker)
    ids = [c.clip_id for c in clips]
    metrics = store.metrics_for(ids)
    asr = store.transcripts(speaker, ASR)
    embeds, partials = store.embeddings(ids, encoder)
    expected = _expected_language(store, speaker, lang)
    given, warnings = split_given_texts(store, speaker, expected, asr)

    usable = [embeds[i] for i in ids if i in embeds]
    centroid = speaker_centroid(usable, robust=True) if len(usable) >= rules.clip.min_clips_for_centroid else None
    ctx = SpeakerContext(expected, centroid, None)

    derived: dict[str, dict] = {i: {"spk_consistency": split_consistency(partials[i])} if i in partials else {}
                                for i in ids}
    if centroid is not None:
        for i in ids:
            if i in embeds:
                derived[i]["spk_centroid_cos"] = float(embeds[i] @ centroid)
                derived[i]["spk_split_gap"] = split_gap(partials[i], centroid) if i in partials else None
                derived[i]["spk_window_min_cos"] = window_min_cos(partials[i], centroid) if i in partials else None
    # Each clip's own share of the given text against its own ASR text.
    for i, g in given.items():
        rates = error_rates(g.text, asr[i].text or "", expected) if g.text else None
        if rates:
            derived[i]["transcript_wer"], derived[i]["transcript_cer"] = rates
        if g.alignment_score is not None:
            derived[i]["transcript_alignment"] = g.alignment_score

    def judge(ctx: SpeakerContext) -> dict[str, ClipJudgement]:
        out = {}
        for c in clips:
            i = c.clip_id
            a = asr.get(i)
            lang_prob = a.language_prob if a and a.lid_scope != "forced" else None
            out[i] = judge_clip({**metrics[i], **derived[i]}, a.language if a else None, lang_prob, ctx, rules)
        return out

    # The speaker's own rate comes from the clips nothing but their rate could reject.
    first = judge(ctx)
    judged = [i for i in ids if set(first[i].reasons) <= {"too_fast", "too_slow"}]
    ctx = SpeakerContext(expected, centroid, rate_fence([rate_of(metrics[i]) for i in judged], rules),
                         rate_fence([metrics[i].get("nuclei_rate") for i in judged], rules))
    verdicts = [Verdict(i, rules.version, "rejected" if j.reasons else "accepted", j.reasons, j.flags)
                for i, j in judge(ctx).items()]
    with store.transaction():
        for i, values in derived.items():
            store.put_metrics(i, values, f"decide:{rules.version}:{encoder}")
        store.record_verdicts(rules.version, ids, verdicts)
        settle(store, speaker, rules, encoder)   # enrolment from the verdicts that stand: a person's over these
    return warnings


def speaker_result(store: Store, speaker: str, rules: RuleSet, db: Path, warnings: list[str],
                   errors: list[SourceError] | None) -> VetResult:
    """The speaker's state in the store under the rule set, with the run's warnings and errors."""
    views = store.clip_views(speaker, rule_set=rules.version)
    metrics = store.metrics_for([v.clip.clip_id for v in views])
    e = store.enrolment(speaker, rules.version) or Enrolment(speaker, rules.version, "insufficient", 0.0, 0.0, [])
    clips = tuple(
        ClipResult(v.clip.clip_id, v.source, round(v.clip.start_s, 3), round(v.clip.end_s, 3), v.status,
                   tuple(v.reasons), tuple(v.flags),
                   {k: (round(x, 4) if x is not None else None) for k, x in sorted(metrics[v.clip.clip_id].items())},
                   v.text or "", v.text_kind, v.machine_status, tuple(v.machine_reasons),
                   v.review.status_by if v.review and v.review.status else None, v.conflict)
        for v in views)
    return VetResult(speaker, rules.version, e, clips, tuple(warnings), None if errors is None else tuple(errors),
                     str(db))
