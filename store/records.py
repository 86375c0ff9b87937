"""Typed records of the data model, one per table that stages pass around.

They are frozen: a stage reads a record, computes, and writes a new fact through a named
`Store` method; it never edits a row in place. Records are joined by ids, as lhotse's
Recording / Supervision / Cut are: a `Clip` names its `recording_sha256`, a `Transcript`
its `clip_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Transcript kinds. `given` rows are the user's text for one clip: the whole text of a
# one-clip recording, or the part of a recording's text that aligns with the clip.
ASR, GIVEN = "asr", "given"
REVIEWED = "reviewed"   # a text kind of the clip view only: a person's text from `reviews`


@dataclass(frozen=True)
class Speaker:
    speaker: str
    lang: str


@dataclass(frozen=True)
class Recording:
    sha256: str
    speaker: str
    source: str
    format: str | None
    sample_rate: int | None
    channels: int | None
    duration_s: float
    decoder: str | None = None


@dataclass(frozen=True)
class Clip:
    clip_id: str
    recording_sha256: str
    speaker: str
    start_s: float
    end_s: float
    duration_s: float
    path_32k: str
    path_16k: str
    slicer: str


@dataclass(frozen=True)
class GivenText:
    """The user's transcript of a whole recording, as read from a TSV, a .list or a .lab file."""
    recording_sha256: str
    text: str
    source: str           # where it was read: "FILE:LINE" or the sidecar's path
    lang: str | None = None


@dataclass(frozen=True)
class Transcript:
    clip_id: str
    kind: str             # ASR or GIVEN
    text: str
    language: str | None = None
    language_prob: float | None = None
    lid_scope: str | None = None      # 'clip', 'packed' or 'forced' (ASR); None for given text
    avg_logprob: float | None = None  # ASR: mean word log-prob; GIVEN: None
    producer: str = ""
    # GIVEN only: how well the clip's share of the recording's text was found (1 = exact)
    alignment_score: float | None = None


@dataclass(frozen=True)
class Word:
    clip_id: str
    idx: int
    word: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Verdict:
    clip_id: str
    rule_set: str
    status: str                       # 'accepted' | 'rejected'
    reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()       # for a person to check (`curate.rules.FLAGS`); they reject nothing


@dataclass(frozen=True)
class Enrolment:
    speaker: str
    rule_set: str
    status: str                       # 'ready' | 'insufficient'
    accepted_s: float
    rejected_s: float
    advice: list = field(default_factory=list)


@dataclass(frozen=True)
class SpeakerPrompt:
    """A synthesis prompt a person gave for a speaker: a file an operator gave (`clonebench prompt
    set`, kept at 32 kHz in the store's folder) or one of the speaker's clips a reviewer picked
    (`clip_id` set; its text is the clip's text now). The newest one is the speaker's prompt."""
    speaker: str
    path: str                         # the 32 kHz file
    text: str
    lang: str
    source: str                       # the file it was copied from, or "clip CLIP_ID"
    set_by: str | None
    set_at: object = None             # datetime; None until stored
    clip_id: str | None = None        # a reviewer's pick: the clip (its 16 kHz copy feeds the content features)

    def to_json(self) -> dict:
        return {"speaker": self.speaker, "path": self.path, "text": self.text, "lang": self.lang,
                "source": self.source, "set_by": self.set_by, "clip_id": self.clip_id}


# What a reviewer can do to a clip; 'undo' takes back the newest review of the clip not yet taken back.
VERDICT_ACTIONS = ("accept", "reject", "agree")
REVIEW_ACTIONS = (*VERDICT_ACTIONS, "text", "reference", "undo")


@dataclass(frozen=True)
class Review:
    """One act of a person on a clip (a `reviews` row: a fact, never edited). `status` and
    `reasons` are the verdict given (accept, reject, agree), `after` the text given (text) or the
    clip picked (reference), `before` what stood until then; `machine_*` is the rules' verdict
    the person saw."""
    speaker: str
    clip_id: str
    action: str                       # REVIEW_ACTIONS
    reviewer: str
    status: str | None = None         # 'accepted' | 'rejected' for verdict actions
    reasons: tuple[str, ...] = ()
    note: str | None = None
    before: str | None = None
    after: str | None = None
    machine_status: str | None = None
    machine_reasons: tuple[str, ...] = ()
    undoes: int | None = None         # undo: the review_id taken back
    source: str = "web"               # 'web', 'list FILE:LINE', ...
    review_id: int | None = None      # None until stored
    made_at: object = None


@dataclass(frozen=True)
class ClipReview:
    """Where people's reviews leave one clip (the `clip_reviews` view): the verdict and the text
    they gave (None: the machine's stand) and `version`, the number of review rows naming the
    clip, which a writer must have seen (optimistic concurrency)."""
    clip_id: str
    version: int
    status: str | None = None
    reasons: tuple[str, ...] = ()
    note: str | None = None
    status_by: str | None = None
    status_at: object = None
    machine_status: str | None = None       # the rules' verdict when the person decided
    machine_reasons: tuple[str, ...] = ()
    text: str | None = None
    text_by: str | None = None
    text_at: object = None


@dataclass(frozen=True)
class SpeakerTotals:
    """One speaker's line of the dataset overview, under the newest verdicts."""
    speaker: str
    lang: str | None
    clips: int
    accepted: int
    accepted_s: float
    rejected_s: float
    status: str                       # the newest enrolment's: 'ready' | 'insufficient' | 'not decided'


@dataclass(frozen=True)
class ClipView:
    """One row of the `clip_verdicts` view joined with its clip: what training, export,
    prompts and reports read. `status`/`reasons` are a person's verdict where one stands, else
    the rules' (`machine_*`); `text` is a person's, else the given text, else ASR."""
    clip: Clip
    source: str
    lang: str | None
    status: str | None
    reasons: tuple[str, ...]
    text: str | None
    text_kind: str | None             # REVIEWED, GIVEN, ASR or None
    flags: tuple[str, ...] = ()
    machine_status: str | None = None
    machine_reasons: tuple[str, ...] = ()
    review: ClipReview | None = None  # None: nobody has reviewed the clip

    @property
    def version(self) -> int:
        return self.review.version if self.review else 0

    @property
    def overruled(self) -> bool:
        """A person's verdict differs from the rules'."""
        return bool(self.review and self.review.status and self.review.status != self.machine_status)

    @property
    def conflict(self) -> str | None:
        """Why the rules' verdict now disputes a person's, when it changed since they decided (a
        re-vet or a new rule set): the person's stands, and this asks them to look again."""
        r = self.review
        if r is None or r.status is None or r.status == self.machine_status:
            return None
        if (self.machine_status, tuple(self.machine_reasons)) == (r.machine_status, tuple(r.machine_reasons)):
            return None
        now = self.machine_status or "undecided"
        if self.machine_reasons:
            now += f" ({', '.join(self.machine_reasons)})"
        then = (r.machine_status or "undecided") + (f" ({', '.join(r.machine_reasons)})" if r.machine_reasons else "")
        return f"the rules now say {now}; when {r.status_by} decided {r.status} they said {then}"


@dataclass(frozen=True)
class TrainRun:
    run_name: str
    preset: str
    speakers: tuple[str, ...]
    data_hash: str
    out_dir: str
    config: dict
    status: str                       # 'running' | 'complete'


@dataclass(frozen=True)
class Checkpoint:
    path: str
    kind: str                         # 'gpt' | 'sovits'
    run_name: str
    stage: str
    step: int
    epoch: int
    sha256: str
    data_hash: str


@dataclass(frozen=True)
class CheckpointChoice:
    """The pair a stated rule chose from a training run's scored checkpoints (`evaluate.choose`);
    `summary` is its reasons and the table it chose from, as `--json` prints them."""
    run_name: str
    rule: str
    gpt_path: str
    sovits_path: str
    epoch: int
    eval_run: str
    summary: dict = field(default_factory=dict)
    chosen_at: object = None          # datetime; None until stored


@dataclass(frozen=True)
class TrainStep:
    run_name: str
    stage: str                        # 's2', 's1', 's2-val', 's1-val'
    step: int
    epoch: int
    losses: dict
    lr: float | None
    samples_per_s: float | None


@dataclass(frozen=True)
class EvalRun:
    """One evaluation run: what was scored, with which models, and (once complete) its summary
    ({"speakers", "overall", "comparison", "gate", "messages"})."""
    run_id: str
    status: str                       # 'running' | 'complete' | 'failed'
    mode: str                         # 'audio' | 'model'
    label: str | None = None
    source: str | None = None
    manifest_sha256: str | None = None
    gpt_sha256: str | None = None
    sovits_sha256: str | None = None
    encoder: str | None = None
    asr_model: str | None = None
    utmos_model: str | None = None
    normalizer: str | None = None
    seed: int | None = None
    n_boot: int | None = None
    device: str | None = None
    threads: int | None = None
    baseline_run: str | None = None
    n_items: int | None = None
    n_errors: int | None = None
    summary: dict = field(default_factory=dict)
    created_at: object = None
    finished_at: object = None


@dataclass(frozen=True)
class EvalItem:
    """One scored item of a run. Error counts are in the language's unit (`unit`: word, char
    or mixed) and in characters (`char_*`); metrics a run could not compute are None."""
    run_id: str
    item_key: str
    speaker: str
    lang: str | None = None
    text: str | None = None
    path: str | None = None
    prompt_path: str | None = None
    audio_sha256: str | None = None
    status: str = "ok"                # 'ok' | 'partial' | 'error'
    error: str | None = None
    duration_s: float | None = None
    hyp_text: str | None = None
    unit: str | None = None
    hits: int | None = None
    subs: int | None = None
    dels: int | None = None
    ins: int | None = None
    char_hits: int | None = None
    char_subs: int | None = None
    char_dels: int | None = None
    char_ins: int | None = None
    wer: float | None = None
    cer: float | None = None
    sim: float | None = None
    sim_o: float | None = None
    dnsmos_sig: float | None = None
    dnsmos_bak: float | None = None
    dnsmos_ovrl: float | None = None
    utmos: float | None = None
    synth_s: float | None = None
    rtf: float | None = None
    ttfa_s: float | None = None
    clip_ratio: float | None = None
    silence_ratio: float | None = None
    speech_rate: float | None = None
    flags: tuple[str, ...] = ()
