"""What the review page shows, read from the store: one `ReviewRow` per clip (the verdict that
stands and the rules', who decided, the text and where it came from, key metrics, the ASR
confidence) and one `SpeakerPage` per speaker (rows, enrolment, reference). Records, so the
page, the JSON API and the tests read the same thing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from clonebench.core import audio
from clonebench.core.errors import AudioError
from clonebench.curate.reviews import REVIEW_REASONS, verdict_text
from clonebench.curate.rules import ADVICE, FLAGS, RuleSet, rate_of
from clonebench.store import ASR, ClipView, Enrolment, Store

# the metrics the table shows, sorts and filters by: (name, column title, better when higher?)
METRICS = (("duration_s", "dur s", None), ("asr_conf", "ASR conf", True), ("snr_db", "SNR", True),
           ("dnsmos_ovrl", "DNSMOS", True), ("scene_music", "music", False), ("scene_overlap", "2 voices", False),
           ("rt60_s", "RT60", False), ("rate", "rate", None), ("spk_centroid_cos", "spk cos", True))


@dataclass(frozen=True)
class ReviewRow:
    clip_id: str
    speaker: str
    source: str                        # the recording's file name
    start_s: float
    end_s: float
    status: str | None                 # the verdict that stands
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    machine_status: str | None         # the rules'
    machine_reasons: tuple[str, ...]
    machine: str                       # the rules' verdict in words; a write sends it back (a re-vet since is a conflict)
    decided_by: str | None             # a reviewer, or None: the rules
    note: str | None
    conflict: str | None
    text: str
    text_source: str | None            # 'reviewed' | 'given' | 'asr'
    asr_text: str
    version: int                       # what a write must send back (optimistic concurrency)
    reference: bool                    # the speaker's synthesis reference
    metrics: dict[str, float | None]

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("reasons", "flags", "machine_reasons"):
            d[k] = list(d[k])
        return d


@dataclass(frozen=True)
class SpeakerPage:
    speaker: str
    lang: str | None
    enrolment: Enrolment | None
    goal_s: float
    rule_set: str | None
    low_confidence: float              # ASR confidence under which the filter "low confidence" shows a clip
    reference: str | None              # what synthesis uses: "clip ID", a file, or None (the store chooses)
    rows: tuple[ReviewRow, ...]

    def to_json(self) -> dict:
        return {"speaker": self.speaker, "lang": self.lang, "enrolment": enrolment_json(self.enrolment, self.goal_s),
                "rule_set": self.rule_set, "low_confidence": self.low_confidence, "reference": self.reference,
                "clips": [r.to_json() for r in self.rows]}


def enrolment_json(e: Enrolment | None, goal_s: float) -> dict:
    if e is None:
        return {"status": "not decided", "accepted_s": 0.0, "rejected_s": 0.0, "goal_s": goal_s}
    return {"status": e.status, "accepted_s": e.accepted_s, "rejected_s": e.rejected_s, "goal_s": goal_s}


def reason_names() -> dict[str, str]:
    """Every reason and flag code with the words a person reads."""
    return {**{k: v[0] for k, v in {**ADVICE, **FLAGS}.items()}, "other": "other (say what in a note)"}


def review_reasons() -> list[str]:
    return list(REVIEW_REASONS)


@dataclass(frozen=True)
class SpeakerState:
    """The speaker-level facts a review can change: enrolment and reference."""
    enrolment: Enrolment | None
    rules: RuleSet
    reference: str | None              # what synthesis uses: "clip ID", a file, or None (the store chooses)
    reference_clip: str | None         # the clip, when a reviewer picked one

    @property
    def goal_s(self) -> float:
        return float(self.rules.enrolment.min_accepted_s)


def speaker_state(store: Store, speaker: str) -> SpeakerState:
    enrol = store.enrolment(speaker)
    rules = (RuleSet.stored(store, enrol.rule_set) if enrol else None) or RuleSet.load()
    prompt = store.speaker_prompt(speaker)
    return SpeakerState(enrol, rules, prompt.source if prompt else None, prompt.clip_id if prompt else None)


def speaker_page(store: Store, speaker: str) -> SpeakerPage | None:
    known = store.speaker(speaker)
    if known is None:
        return None
    state = speaker_state(store, speaker)
    rows = _rows(store, store.clip_views(speaker), state.reference_clip)
    return SpeakerPage(speaker, known.lang, state.enrolment, state.goal_s, state.enrolment.rule_set if state.enrolment else None,
                       round(math.exp(state.rules.clip.min_avg_logprob), 3), state.reference, tuple(rows))


def clip_row(store: Store, view: ClipView, state: SpeakerState | None = None) -> ReviewRow:
    """One clip's row; `state` when the caller has its speaker's already."""
    state = state or speaker_state(store, view.clip.speaker)
    return _rows(store, [view], state.reference_clip)[0]


def _rows(store: Store, views: list[ClipView], reference: str | None) -> list[ReviewRow]:
    ids = [v.clip.clip_id for v in views]
    metrics = store.metrics_for(ids)
    texts = store.clip_transcripts(ids)
    rows = []
    for v in views:
        c = v.clip
        m = metrics[c.clip_id]
        asr = texts.get((c.clip_id, ASR))
        logprob = asr.avg_logprob if asr and asr.avg_logprob is not None else m.get("asr_avg_logprob")
        shown = {"duration_s": c.duration_s, "asr_conf": math.exp(logprob) if logprob is not None else None,
                 **{k: m.get(k) for k, _, _ in METRICS if k in m}, "rate": rate_of(m)}
        shown = {k: (round(x, 3) if isinstance(x, float) and math.isfinite(x) else None) for k, x in shown.items()}
        r = v.review
        rows.append(ReviewRow(
            c.clip_id, c.speaker, Path(v.source).name, round(c.start_s, 3), round(c.end_s, 3), v.status, tuple(v.reasons),
            tuple(v.flags), v.machine_status, tuple(v.machine_reasons), verdict_text(v.machine_status, v.machine_reasons),
            r.status_by if r and r.status else None,
            r.note if r and r.status else None, v.conflict, v.text or "", v.text_kind, asr.text if asr else "", v.version,
            c.clip_id == reference, shown))
    return rows


def search(store: Store, query: str, limit: int = 200) -> list[ReviewRow]:
    """Clips of any speaker whose text (theirs, given or ASR), id or file name contains `query`
    (case-insensitive), speaker by speaker."""
    q = query.strip().lower()
    if not q:
        return []
    views = [v for v in store.clip_views()
             if q in (v.text or "").lower() or q in v.clip.clip_id.lower() or q in Path(v.source).name.lower()][:limit]
    prompts = {s: store.speaker_prompt(s) for s in {v.clip.speaker for v in views}}
    out = []
    for s in sorted(prompts):
        ref = prompts[s].clip_id if prompts[s] else None
        out += _rows(store, [v for v in views if v.clip.speaker == s], ref)
    return out


@dataclass(frozen=True)
class Wave:
    """Peaks of the audio around a clip, for the page's waveform: `peaks` are (min, max) per bin
    over [from_s, to_s] of the recording; the clip is [start_s, end_s]."""
    from_s: float
    to_s: float
    start_s: float
    end_s: float
    peaks: list[tuple[float, float]]
    whole_recording: bool              # False: the recording is gone, the clip alone is drawn

    def to_json(self) -> dict:
        return asdict(self)


CONTEXT_S = 1.0
BINS = 600


@lru_cache(maxsize=2)
def _recording(path: str, mtime: float) -> tuple[np.ndarray, int]:
    """A decoded recording, kept while a person steps through its clips."""
    decoded = audio.decode(Path(path), max_duration_s=3600)   # longer: the clip's own file is drawn
    return decoded.samples, decoded.sample_rate


def wave(view: ClipView) -> Wave:
    """The clip with a second of its recording either side (the clip's own file when the
    recording cannot be read any more)."""
    c = view.clip
    try:
        x, sr = _recording(view.source, Path(view.source).stat().st_mtime)
        a, b = max(0.0, c.start_s - CONTEXT_S), min(len(x) / sr, c.end_s + CONTEXT_S)
        seg, whole = x[int(a * sr):int(b * sr)], True
    except (AudioError, OSError):
        seg, sr = audio.read_wav(c.path_16k)
        a, b, whole = c.start_s, c.start_s + len(seg) / sr, False
    if seg.ndim > 1:
        seg = seg.mean(axis=1)
    bins = np.array_split(seg.astype(np.float32), BINS) if len(seg) >= BINS else [seg]
    peaks = [(round(float(p.min()), 4), round(float(p.max()), 4)) if len(p) else (0.0, 0.0) for p in bins]
    return Wave(round(a, 3), round(b, 3), round(c.start_s, 3), round(c.end_s, 3), peaks, whole)
