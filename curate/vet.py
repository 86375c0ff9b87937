"""`vet`: ingest -> slice -> screen -> transcribe -> verdicts, for one speaker.

Every stage skips work the store says is finished, so running vet again on the same files
adds nothing, and a run killed half-way resumes where it stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clonebench.config import check_speaker_name, data_root_for
from clonebench.errors import UserError
from clonebench.progress import progress_bar
from clonebench.store import Store, to_json

from . import screen
from .ingest import IngestOptions, find_audio, ingest, read_transcripts
from .rules import RuleSet, SpeakerContext, clip_reasons, enrolment, rate_fence
from .slicer import SliceConfig
from .speakers import robust_centroid, split_consistency, split_gap
from .text import error_rates

log = logging.getLogger(__name__)
LANGS = ("en", "zh", "fr", "de", "es", "it", "ja", "ko", "pt", "ru", "yue", "auto")


@dataclass
class VetOptions:
    speaker: str
    db: Path
    lang: str = "en"
    transcripts: Path | None = None
    rules: Path | None = None
    slicing: SliceConfig = field(default_factory=SliceConfig)
    max_recording_min: float = 20.0
    # local models (see `backends`); None = the embedded defaults, no overlap detector
    asr: str | None = None
    speaker_encoder: str | None = None
    overlap: str | None = None


def vet(inputs: list[Path], opts: VetOptions) -> dict:
    """Vet recordings of one speaker; returns the JSON document described in the README."""
    speaker = check_speaker_name(opts.speaker)
    if opts.lang not in LANGS:
        raise UserError(f"unsupported --lang {opts.lang!r}: choose one of {', '.join(LANGS)}")
    import backends

    # Models load before any work, so a bad --asr/--speaker-encoder/--overlap fails at once.
    models = VetModels(backends.transcriber(opts.asr), backends.speaker_encoder(opts.speaker_encoder),
                       backends.overlap_detector(opts.overlap))
    rules = RuleSet.load(opts.rules).for_encoder(models.encoder.name)
    transcripts, errors = read_transcripts(opts.transcripts) if opts.transcripts else ({}, [])
    files, missing = find_audio(inputs)
    errors += missing
    with Store(opts.db) as store:
        store.con.execute("INSERT OR IGNORE INTO speakers (speaker, lang) VALUES (?, ?)", [speaker, opts.lang])
        store.con.execute("UPDATE speakers SET lang = ? WHERE speaker = ?", [opts.lang, speaker])
        clips_dir = data_root_for(opts.db) / "clips" / speaker
        ingest_opts = IngestOptions(speaker, clips_dir, opts.slicing, opts.max_recording_min * 60)
        with progress_bar(len(files), "ingest + slice") as step:
            errors += ingest(store, files, transcripts, ingest_opts, step)
        screen_speaker(store, speaker, opts.lang, rules, models)
        decide(store, speaker, opts.lang, rules, models.encoder.name)
        result = speaker_result(store, speaker, rules)
    result["errors"] = errors
    result["store"] = str(opts.db)
    return result


@dataclass
class VetModels:
    transcriber: object  # curate.asr.Transcriber
    encoder: object  # .name, .embed(x16) -> (embedding, window embeddings)
    overlap: object | None = None  # .name, .evidence(x16) (backends.overlap)


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
                screen.run_asr(store, transcriber, batch, lang, rules.clip["min_avg_logprob"])
                step()


def _expected_language(store: Store, speaker: str, lang: str) -> str:
    if lang != "auto":
        return lang
    row = store.rows(
        """SELECT t.language, count(*) AS n FROM transcripts t JOIN clips c USING (clip_id)
           WHERE c.speaker = ? AND t.kind = 'asr' AND t.language IS NOT NULL
           GROUP BY 1 ORDER BY n DESC, 1 LIMIT 1""",
        [speaker],
    )
    return row[0]["language"] if row else "en"


def decide(store: Store, speaker: str, lang: str, rules: RuleSet, encoder: str) -> None:
    """Judge every clip of the speaker with the rule set, and the speaker's enrolment."""
    clips = store.rows("SELECT * FROM clips WHERE speaker = ? ORDER BY clip_id", [speaker])
    ids = [c["clip_id"] for c in clips]
    metrics = store.metrics_for(ids)
    asr = {r["clip_id"]: r for r in store.rows(
        "SELECT t.* FROM transcripts t JOIN clips c USING (clip_id) WHERE c.speaker = ? AND t.kind = 'asr'", [speaker])}
    given = {r["recording_sha256"]: r["text"] for r in store.rows(
        "SELECT g.* FROM given_transcripts g JOIN recordings r ON r.sha256 = g.recording_sha256 WHERE r.speaker = ?", [speaker])}
    embeds, partials = screen.embeddings_for(store, ids, encoder)
    expected = _expected_language(store, speaker, lang)

    usable = [embeds[i] for i in ids if i in embeds]
    centroid = robust_centroid(np.stack(usable)) if len(usable) >= rules.clip["min_clips_for_centroid"] else None
    fence = rate_fence([metrics[i].get("speech_rate") for i in ids], rules)
    ctx = SpeakerContext(expected, centroid, fence)

    derived: dict[str, dict] = {i: {"spk_consistency": split_consistency(partials[i])} if i in partials else {}
                                for i in ids}
    if centroid is not None:
        for i in ids:
            if i in embeds:
                derived[i]["spk_centroid_cos"] = float(embeds[i] @ centroid)
                derived[i]["spk_split_gap"] = split_gap(partials[i], centroid) if i in partials else None
    # A given transcript belongs to a whole file; compare it with the ASR text of all its clips.
    by_recording: dict[str, list[str]] = {}
    for c in clips:
        by_recording.setdefault(c["recording_sha256"], []).append(c["clip_id"])
    for sha, text in given.items():
        members = by_recording.get(sha, [])
        hyp = " ".join(asr[i]["text"] or "" for i in members if i in asr)
        if members and all(i in asr for i in members):
            rates = error_rates(text, hyp, expected)
            if rates:
                for i in members:
                    derived[i]["transcript_wer"], derived[i]["transcript_cer"] = rates

    verdicts = []
    for c in clips:
        i = c["clip_id"]
        m = {**metrics[i], **derived[i]}
        a = asr.get(i, {})
        reasons = clip_reasons(m, a.get("language"), a.get("language_prob") if a.get("lid_scope") != "forced" else None, ctx, rules)
        verdicts.append((i, "rejected" if reasons else "accepted", reasons))
    rows = [{"duration_s": c["duration_s"], "status": v[1], "reasons": v[2]} for c, v in zip(clips, verdicts)]
    enrol = enrolment(rows, rules)
    with store.transaction():
        for i, values in derived.items():
            store.put_metrics(i, values, f"decide:{rules.version}:{encoder}")
        store.con.execute("DELETE FROM verdicts WHERE rule_set = ? AND list_contains(?, clip_id)", [rules.version, ids])
        if verdicts:
            store.con.executemany(
                "INSERT INTO verdicts (clip_id, rule_set, status, reasons) VALUES (?, ?, ?, ?)",
                [(i, rules.version, s, r) for i, s, r in verdicts],
            )
        store.con.execute("DELETE FROM enrolments WHERE speaker = ? AND rule_set = ?", [speaker, rules.version])
        store.con.execute(
            "INSERT INTO enrolments (speaker, rule_set, status, accepted_s, rejected_s, advice) VALUES (?, ?, ?, ?, ?, ?)",
            [speaker, rules.version, enrol["status"], enrol["accepted_s"], enrol["rejected_s"], to_json(enrol["advice"])],
        )
        accepted = [embeds[i] for i, s, _ in verdicts if s == "accepted" and i in embeds]
        store.con.execute("DELETE FROM speaker_embeddings WHERE speaker = ? AND encoder = ?", [speaker, encoder])
        if accepted:
            mean = np.mean(accepted, axis=0)
            store.con.execute(
                "INSERT INTO speaker_embeddings (speaker, encoder, vector, n_clips) VALUES (?, ?, ?, ?)",
                [speaker, encoder, (mean / np.linalg.norm(mean)).tolist(), len(accepted)],
            )


def speaker_result(store: Store, speaker: str, rules: RuleSet) -> dict:
    """The speaker's state in the store, as the `--json` document (without `errors`)."""
    enrol = store.rows("SELECT * FROM enrolments WHERE speaker = ? AND rule_set = ?", [speaker, rules.version])
    clips = store.rows(
        """SELECT c.clip_id, r.source, c.start_s, c.end_s, v.status, v.reasons,
                  coalesce(t.text, '') AS text
           FROM clips c JOIN recordings r ON r.sha256 = c.recording_sha256
           LEFT JOIN verdicts v ON v.clip_id = c.clip_id AND v.rule_set = ?
           LEFT JOIN transcripts t ON t.clip_id = c.clip_id AND t.kind = 'asr'
           WHERE c.speaker = ? ORDER BY r.source, c.start_s""",
        [rules.version, speaker],
    )
    metrics = store.metrics_for([c["clip_id"] for c in clips])
    import json

    e = enrol[0] if enrol else {"status": "insufficient", "accepted_s": 0.0, "rejected_s": 0.0, "advice": "[]"}
    return {
        "speaker": speaker,
        "rule_set": rules.version,
        "enrollment": {
            "status": e["status"], "accepted_s": e["accepted_s"], "rejected_s": e["rejected_s"],
            "advice": json.loads(e["advice"]) if isinstance(e["advice"], str) else e["advice"],
        },
        "clips": [
            {
                "clip_id": c["clip_id"], "source": c["source"], "start_s": round(c["start_s"], 3), "end_s": round(c["end_s"], 3),
                "status": c["status"], "reasons": list(c["reasons"] or []),
                "metrics": {k: (round(v, 4) if v is not None else None) for k, v in sorted(metrics[c["clip_id"]].items())},
                "text": c["text"],
            }
            for c in clips
        ],
    }
