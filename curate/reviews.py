"""A person's word over the machine's: review acts on clips, stored as facts beside the
measurements (`reviews`), and the speaker's enrolment settled again at once.

- A verdict (accept, reject with a reason, agree with the rules) stands over the rules' until it
  is taken back; re-running `vet` or a new rule set never clobbers it, and where the rules'
  verdict changes since, `ClipView.conflict` says so.
- A text replaces the given and ASR texts for training, export, prompts and reports.
- A reference pick makes the clip the speaker's synthesis prompt (`Store.speaker_prompt`).
- Undo takes back the clip's newest review still standing, with a row of its own.

Every write checks the clip's version (how many review rows name it) against the one the person
saw: a second reviewer who saved first makes the other's save fail with `ReviewConflict`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.core import gsvlist
from clonebench.core.errors import UserError
from clonebench.store import REVIEW_ACTIONS, TIMBRE_PREFIX, VERDICT_ACTIONS, ClipView, Enrolment, Review, Store, Verdict

from .rules import REASONS, RuleSet, enrolment

OTHER = "other"   # a reason a person gives in a note
REVIEW_REASONS = (*REASONS, OTHER)
MAX_TEXT = 2000
MAX_NOTE = 500


class ReviewConflict(UserError):
    """Somebody changed the clip since the person loaded it: nothing was written."""

    def __init__(self, message: str, view: ClipView):
        super().__init__(message)
        self.view = view


@dataclass(frozen=True)
class ReviewRequest:
    """One act a reviewer asks for, checked when made (one-line errors)."""
    clip_id: str
    action: str                  # accept | reject | agree | text | reference | undo
    version: int                 # the clip's version the person saw
    reason: str | None = None    # reject: one of REVIEW_REASONS
    note: str | None = None      # required with reason `other`
    text: str | None = None      # text: the words spoken
    machine: str | None = None   # the rules' verdict the person saw (`verdict_text`); checked when given

    def __post_init__(self) -> None:
        if self.action not in REVIEW_ACTIONS:
            raise UserError(f"unknown action {self.action!r}: use one of {', '.join(REVIEW_ACTIONS)}")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 0:
            raise UserError("version must be the clip's review version (a whole number, 0 when never reviewed)")
        note = " ".join((self.note or "").split()) or None
        object.__setattr__(self, "note", note)
        if note and len(note) > MAX_NOTE:
            raise UserError(f"a note is at most {MAX_NOTE} characters")
        if self.action == "reject":
            if self.reason not in REVIEW_REASONS:
                raise UserError(f"reject needs a reason: one of {', '.join(REVIEW_REASONS)}")
            if self.reason == OTHER and not note:
                raise UserError("reason 'other' needs a note saying what is wrong")
        elif self.reason is not None:
            raise UserError(f"only reject takes a reason, not {self.action}")
        if self.action == "text":
            text = " ".join((self.text or "").split())
            if not text:
                raise UserError("text needs the words spoken in the clip")
            if len(text) > MAX_TEXT:
                raise UserError(f"a transcript is at most {MAX_TEXT} characters")
            object.__setattr__(self, "text", text)
        elif self.text is not None:
            raise UserError(f"only the text action takes a text, not {self.action}")


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review did: the clip as it stands now, and the speaker's enrolment before and after."""
    view: ClipView
    review_id: int
    enrolment_before: Enrolment | None
    enrolment: Enrolment | None


def verdict_text(status: str | None, reasons: tuple[str, ...]) -> str:
    return (status or "undecided") + (f": {', '.join(reasons)}" if reasons else "")


def describe(r: Review) -> str:
    """One line for a review row, as a person would say it."""
    if r.action == "reject":
        return f"{r.reviewer} rejected it ({', '.join(r.reasons)}{': ' + r.note if r.note else ''})"
    if r.action == "accept":
        return f"{r.reviewer} accepted it"
    if r.action == "agree":
        return f"{r.reviewer} agreed with the rules ({r.status})"
    if r.action == "text":
        return f"{r.reviewer} changed its text to {r.after!r}"
    if r.action == "reference":
        return f"{r.reviewer} picked it as {r.speaker}'s reference"
    return f"{r.reviewer} took back review {r.undoes}"


def review(store: Store, req: ReviewRequest, reviewer: str, source: str = "web") -> ReviewOutcome:
    """Apply one request in one transaction: refused with `ReviewConflict` when the clip's version
    is not the one the person saw, else a `reviews` row and, for a verdict, the enrolment again."""
    reviewer = reviewer.strip() or "anonymous"
    with store.transaction():
        view = store.clip_view(req.clip_id)
        if view is None:
            raise UserError(f"no clip {req.clip_id!r} in {store.path}")
        if view.version != req.version:
            rows = store.reviews(clip_id=req.clip_id)
            what = f"{describe(rows[-1])} at {rows[-1].made_at:%H:%M:%S}" if rows else "it has no review yet"
            raise ReviewConflict(f"clip {req.clip_id} changed since you loaded it: {what}; nothing was saved, "
                                 "look again", view)
        machine = verdict_text(view.machine_status, view.machine_reasons)
        if req.machine is not None and req.machine != machine:   # a re-vet since the page was loaded
            raise ReviewConflict(f"the rules' verdict on clip {req.clip_id} changed since you loaded it (now "
                                 f"{machine}); nothing was saved, look again", view)
        speaker = view.clip.speaker
        before_enrolment = store.enrolment(speaker)
        row = _row(store, view, req, reviewer, source)
        review_id = store.add_review(row)
        # an undo may take back a verdict: settle then too (a text or a pick changes no seconds)
        settled = settle(store, speaker) if row.action in (*VERDICT_ACTIONS, "undo") else before_enrolment
        return ReviewOutcome(store.clip_view(req.clip_id), review_id, before_enrolment, settled)


def _row(store: Store, view: ClipView, req: ReviewRequest, reviewer: str, source: str) -> Review:
    machine = dict(machine_status=view.machine_status, machine_reasons=view.machine_reasons)
    base = dict(speaker=view.clip.speaker, clip_id=req.clip_id, action=req.action, reviewer=reviewer, source=source,
                note=req.note)
    before = verdict_text(view.status, view.reasons)
    if req.action == "accept":
        return Review(**base, **machine, status="accepted", before=before, after="accepted")
    if req.action == "reject":
        return Review(**base, **machine, status="rejected", reasons=(req.reason,), before=before,
                      after=verdict_text("rejected", (req.reason,)))
    if req.action == "agree":
        if view.machine_status is None:
            raise UserError(f"clip {req.clip_id} has no verdict from the rules yet to agree with")
        return Review(**base, **machine, status=view.machine_status, reasons=view.machine_reasons, before=before,
                      after=verdict_text(view.machine_status, view.machine_reasons))
    if req.action == "text":
        if req.text == " ".join((view.text or "").split()):
            raise UserError(f"that is clip {req.clip_id}'s text already: nothing to save")
        return Review(**base, before=view.text, after=req.text)
    if req.action == "reference":
        if view.status != "accepted":
            raise UserError(f"clip {req.clip_id} is {view.status or 'undecided'}: only an accepted clip can be the reference")
        if not (view.text or "").strip():
            raise UserError(f"clip {req.clip_id} has no text: give it one before picking it as the reference")
        current = store.speaker_prompt(view.clip.speaker)
        return Review(**base, before=current.source if current else "chosen by the store", after=f"clip {req.clip_id}")
    taken = store.last_live_review(req.clip_id)
    if taken is None:
        raise UserError(f"clip {req.clip_id} has no review to take back")
    return Review(**base, undoes=taken.review_id, before=describe(taken))


def take_back_reference(store: Store, speaker: str, reviewer: str) -> int:
    """Undo rows for every reference pick of the speaker still standing (`clonebench prompt
    clear`); how many. The caller holds the transaction."""
    undone = store.undone_reviews()
    picks = [r for r in store.reviews(speaker=speaker) if r.action == "reference" and r.review_id not in undone]
    for r in picks:
        store.add_review(Review(speaker, r.clip_id, "undo", reviewer, undoes=r.review_id, before=describe(r),
                                source="prompt clear"))
    return len(picks)


def settle(store: Store, speaker: str, rules: RuleSet | None = None, encoder: str | None = None) -> Enrolment | None:
    """The speaker's enrolment and timbre-library centroid from the verdicts that stand (a
    person's over the rules'), under `rules` or the rule set of their newest enrolment; None for a
    speaker never decided. The caller holds the transaction."""
    from clonebench.instruments.speakers import centroid

    if rules is None:
        newest = store.enrolment(speaker)
        rules = RuleSet.stored(store, newest.rule_set) if newest else None
        if rules is None:
            return None
    views = [v for v in store.clip_views(speaker, rule_set=rules.version) if v.status]
    verdicts = [Verdict(v.clip.clip_id, rules.version, v.status, v.reasons, v.flags) for v in views]
    enrol = enrolment(speaker, [v.clip for v in views], verdicts, rules)
    encoder = encoder or store.newest_encoder(speaker)
    store.record_enrolment(enrol)
    if encoder is not None:
        ids = [v.clip.clip_id for v in views if v.status == "accepted"]
        embeds, _ = store.embeddings(ids, encoder)
        accepted = [embeds[i] for i in ids if i in embeds]
        store.put_speaker_embedding(speaker, encoder, centroid(accepted) if accepted else None, len(accepted))
    _settle_timbre(store, speaker, [v.clip.clip_id for v in views if v.status == "accepted"])
    return enrol


def _settle_timbre(store: Store, speaker: str, accepted: list[str]) -> None:
    """The speaker's v2Pro timbre vector again, as the mean of the per-clip vectors vetting kept
    for the clips accepted now. A clip a person accepted that the rules had rejected has none
    until the next `vet` (which loads the SV model): the mean leaves it out, and `n_clips` says so."""
    encoder = store.newest_encoder(speaker, TIMBRE_PREFIX)
    if encoder is None:
        return
    import torch

    from clonebench.core.config import data_root_for
    from clonebench.instruments.eres2net import timbre_cache

    features = data_root_for(store.path) / "features"
    files = [timbre_cache(features, encoder.removeprefix(TIMBRE_PREFIX), i) for i in accepted]
    vectors = [torch.load(f, weights_only=True).numpy() for f in files if f.is_file()]
    mean = np.mean(vectors, axis=0).astype(np.float32) if vectors else None
    store.put_speaker_embedding(speaker, encoder, mean, len(vectors))


@dataclass(frozen=True)
class ListImport:
    """What importing a proofread `.list` did."""
    texts: int                    # clips whose text the list changed
    rejected: int                 # exported clips whose lines were deleted
    unchanged: int
    conflicts: tuple[str, ...]    # changes not applied: the clip changed in the store since the export
    unmatched: tuple[str, ...]    # lines naming no clip of the store, or a clip twice ("FILE:LINE: why")
    deletions_checked: bool       # False: no export manifest beside the list, so deleted lines could not be told

    def to_json(self) -> dict:
        return {"texts": self.texts, "rejected": self.rejected, "unchanged": self.unchanged,
                "conflicts": list(self.conflicts), "unmatched": list(self.unmatched),
                "deletions_checked": self.deletions_checked}


def manifest_path(list_file: Path) -> Path:
    """The export manifest beside a list `clonebench export` wrote: what each clip's line said
    and the clip's review version then, so an import applies only what a person changed."""
    return Path(list_file).with_suffix(".clips.json")


def write_manifest(list_file: Path, views: list[ClipView], texts: dict[str, str]) -> Path:
    import json

    doc = {"clips": {v.clip.clip_id: {"text": _list_text(texts[v.clip.clip_id]), "version": v.version} for v in views
                     if v.clip.clip_id in texts}}
    path = manifest_path(list_file)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=0), encoding="utf-8")
    return path


def _read_manifest(list_file: Path) -> dict[str, dict] | None:
    import json

    path = manifest_path(list_file)
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text(encoding="utf-8"))["clips"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: not an export manifest ({type(e).__name__}); move it away to import without it") from None


def _line_clip(e: gsvlist.ListEntry, list_file: Path, by_id: dict[str, ClipView], by_file: dict[str, ClipView]) -> ClipView | None:
    path = Path(e.path).expanduser()
    path = path if path.is_absolute() else list_file.parent / path
    view = by_id.get(path.stem) or by_file.get(str(path.resolve()))
    return view if view is not None and view.clip.speaker == e.speaker else None


def import_list(db: Path, list_file: Path, reviewer: str) -> ListImport:
    """A GPT-SoVITS `.list` a person proofread (upstream's subfix tool, or by hand) as reviews.

    Lines are matched to clips by name (`<clip_id>.wav`, as `clonebench export` writes them), or
    by the clip's or its one-clip recording's file. With the export manifest beside the list
    (`manifest_path`), only what the person changed is applied: a line whose text differs from
    the exported one becomes a text review, and an exported clip whose line is gone a rejection
    (reason other), each checked against the clip's version at export, so a clip changed in the
    store since (in the review app, say) is reported as a conflict and left alone. Without a
    manifest a line's text is compared with the clip's text now, and deleted lines cannot be told.
    Importing the same file again adds nothing."""
    list_file = Path(list_file)
    entries, problems = gsvlist.parse(list_file)
    if not entries:
        raise UserError(f"{list_file}: no usable line" + (f" ({problems[0]})" if problems else ""))
    exported = _read_manifest(list_file)
    unmatched, conflicts = list(problems), []
    texts = unchanged = rejected = 0

    def apply(req: ReviewRequest, where: str) -> bool:
        try:
            review(store, req, reviewer, f"list {where}")
            return True
        except ReviewConflict as e:
            conflicts.append(f"{where}: {e}")
            return False

    with Store(db) as store:
        views = store.clip_views()
        by_id = {v.clip.clip_id: v for v in views}
        by_file: dict[str, ClipView] = {}
        for v in views:
            by_file[str(Path(v.clip.path_32k).resolve())] = by_file[str(Path(v.clip.path_16k).resolve())] = v
        per_recording: dict[str, list[ClipView]] = {}
        for v in views:
            per_recording.setdefault(v.source, []).append(v)
        for source, members in per_recording.items():
            if len(members) == 1:
                by_file.setdefault(str(Path(source).resolve()), members[0])
        seen: dict[str, int] = {}
        for e in entries:
            where = f"{list_file}:{e.line}"
            view = _line_clip(e, list_file, by_id, by_file)
            if view is None:
                unmatched.append(f"{where}: {e.path} is no clip of speaker {e.speaker!r} in the store")
                continue
            clip_id = view.clip.clip_id
            if clip_id in seen:
                unmatched.append(f"{where}: clip {clip_id} is on line {seen[clip_id]} already; this line was skipped")
                continue
            seen[clip_id] = e.line
            view = store.clip_view(clip_id)
            text = " ".join(e.text.split())
            was = exported.get(clip_id) if exported else None
            if text == _list_text(view.text) or (was is not None and text == _list_text(was["text"])):
                unchanged += 1
                continue
            version = was["version"] if was is not None else view.version
            texts += apply(ReviewRequest(clip_id, "text", version, text=text), where)
        for clip_id, was in (exported or {}).items():
            view = store.clip_view(clip_id)
            if clip_id in seen or view is None:
                continue
            if view.status == "rejected":
                unchanged += 1
                continue
            req = ReviewRequest(clip_id, "reject", was["version"], reason=OTHER, note=f"line deleted from {list_file.name}")
            rejected += apply(req, f"{list_file} ({clip_id})")
    return ListImport(texts, rejected, unchanged, tuple(conflicts), tuple(unmatched), exported is not None)


def _list_text(text: str | None) -> str:
    """A clip's text as a `.list` line carries it."""
    return " ".join((text or "").replace("|", " ").split())


CSV_COLUMNS = ("review_id", "made_at", "reviewer", "speaker", "clip_id", "action", "status", "reasons", "note", "before",
               "after", "machine_status", "machine_reasons", "undoes", "taken_back", "source")


def _cell(text: str | None) -> str:
    """Free text as a CSV cell a spreadsheet will not run: one starting like a formula gets a
    leading apostrophe (OWASP's advice against CSV injection)."""
    text = text or ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def reviews_csv(store: Store) -> str:
    """Every review, oldest first, as CSV (reasons joined with ';'; free text and names guarded by `_cell`)."""
    undone = store.undone_reviews()
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in store.reviews():
        w.writerow([r.review_id, f"{r.made_at:%Y-%m-%dT%H:%M:%S}", _cell(r.reviewer), r.speaker, r.clip_id, r.action, r.status or "",
                    ";".join(r.reasons), _cell(r.note), _cell(r.before), _cell(r.after), r.machine_status or "",
                    ";".join(r.machine_reasons), r.undoes or "", "yes" if r.review_id in undone else "", r.source])
    return out.getvalue()


def export_reviews(db: Path, out: Path) -> int:
    """`clonebench review export`: the reviews as CSV; how many rows."""
    with Store(db, read_only=True) as store:
        text = reviews_csv(store)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    return text.count("\n") - 1
