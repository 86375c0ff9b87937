"""What a vetting run does for a speaker around the per-clip screens, the same in one process
(`vet`) and on a Ray cluster (`cluster`): record the speaker, split given texts onto clips, judge
every clip and the enrolment, the timbre vector, and the speaker's result document."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clonebench.core.align import split_text
from clonebench.core.config import data_root_for
from clonebench.core.textnorm import error_rates
from clonebench.instruments.speakers import centroid as speaker_centroid
from clonebench.instruments.speakers import split_consistency, split_gap, window_min_cos
from clonebench.store import ASR, GIVEN, TIMBRE_PREFIX, Enrolment, Store, Transcript, Verdict

from .ingest import IngestOptions
from .results import ClipResult, SourceError, VetResult
from .reviews import settle
from .rules import ClipJudgement, RuleSet, SpeakerContext, judge_clip, rate_fence, rate_of

if TYPE_CHECKING:
    from clonebench.instruments.eres2net import ERes2NetV2Encoder

    from .vet import VetOptions

log = logging.getLogger(__name__)


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
