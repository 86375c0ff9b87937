"""Named reads and writes of vetting: speakers, recordings, clips, metrics, transcripts, words,
embeddings, frame evidence, verdicts, enrolments, rule sets and ingest errors."""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np

from .records import (
    ASR,
    GIVEN,
    Clip,
    ClipView,
    Enrolment,
    GivenText,
    Recording,
    Speaker,
    SpeakerPrompt,
    SpeakerTotals,
    Transcript,
    Verdict,
    Word,
)
from .reviews import clip_review
from .schema import to_json

PARTIALS = "/partials"  # suffix of the encoder name under which a clip's window embeddings are kept
# prefix of the timbre-library entries that hold v2Pro timbre vectors ("timbre:<sv model name>"),
# beside the speaker encoders' centroids
TIMBRE_PREFIX = "timbre:"

_CLIP_COLUMNS = "c.clip_id, c.recording_sha256, c.speaker, c.start_s, c.end_s, c.duration_s, c.path_32k, c.path_16k, c.slicer"


def _transcript(r: dict) -> Transcript:
    return Transcript(r["clip_id"], r["kind"], r["text"] or "", r["language"], r["language_prob"], r["lid_scope"],
                      r["avg_logprob"], r["producer"] or "", r["alignment_score"])


class VettingTables:
    def _clip(self, r: dict) -> Clip:
        return Clip(r["clip_id"], r["recording_sha256"], r["speaker"], r["start_s"], r["end_s"], r["duration_s"],
                    self._resolved(r["path_32k"]), self._resolved(r["path_16k"]), r["slicer"])

    # -- speakers and recordings -----------------------------------------------------------
    def put_speaker(self, speaker: str, lang: str) -> None:
        self.con.execute("INSERT OR IGNORE INTO speakers (speaker, lang) VALUES (?, ?)", [speaker, lang])
        self.con.execute("UPDATE speakers SET lang = ? WHERE speaker = ?", [lang, speaker])

    def speakers(self) -> list[Speaker]:
        return [Speaker(r["speaker"], r["lang"]) for r in self._rows("SELECT speaker, lang FROM speakers ORDER BY speaker")]

    def speaker(self, name: str) -> Speaker | None:
        rows = self._rows("SELECT speaker, lang FROM speakers WHERE speaker = ?", [name])
        return Speaker(rows[0]["speaker"], rows[0]["lang"]) if rows else None

    def recording_owner(self, sha256: str) -> str | None:
        return self._scalar("SELECT speaker FROM recordings WHERE sha256 = ?", [sha256])

    def clip_count(self, sha256: str) -> int:
        return int(self._scalar("SELECT count(*) FROM clips WHERE recording_sha256 = ?", [sha256]))

    def add_recording(self, rec: Recording, clips: list[Clip], clip_metrics: dict[str, dict], producer: str) -> None:
        """A newly sliced recording with its clips and their first metrics, all or nothing."""
        with self.transaction():
            self.con.execute(
                "INSERT INTO recordings (sha256, speaker, source, format, sample_rate, channels, duration_s, decoder) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [rec.sha256, rec.speaker, self._stored(rec.source), rec.format, rec.sample_rate, rec.channels,
                 rec.duration_s, rec.decoder])
            for c in clips:
                self.con.execute(
                    "INSERT INTO clips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [c.clip_id, c.recording_sha256, c.speaker, c.start_s, c.end_s, c.duration_s, self._stored(c.path_32k),
                     self._stored(c.path_16k), c.slicer])
                self.put_metrics(c.clip_id, clip_metrics.get(c.clip_id, {}), producer)
            self.clear_error(rec.source, rec.speaker)

    def clips(self, speaker: str) -> list[Clip]:
        return [self._clip(r) for r in self._rows(f"SELECT {_CLIP_COLUMNS} FROM clips c WHERE c.speaker = ? ORDER BY c.clip_id", [speaker])]

    def pending(self, speaker: str, stage: str, producer: str) -> list[Clip]:
        """Clips of a speaker whose stage has not been done by this producer version."""
        return [self._clip(r) for r in self._rows(
            f"""SELECT {_CLIP_COLUMNS} FROM clips c
                LEFT JOIN clip_stages s ON s.clip_id = c.clip_id AND s.stage = ? AND s.producer = ?
                WHERE c.speaker = ? AND s.clip_id IS NULL ORDER BY c.clip_id""",
            [stage, producer, speaker])]

    def mark_done(self, clip_id: str, stage: str, producer: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO clip_stages (clip_id, stage, producer) VALUES (?, ?, ?)",
                         [clip_id, stage, producer])

    # -- metrics, embeddings, frame evidence -------------------------------------------------
    def put_metrics(self, clip_id: str, values: dict[str, float | None], producer: str) -> None:
        rows = [(clip_id, k, None if v is None else float(v), producer) for k, v in values.items()]
        if rows:
            self.con.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)

    def metrics_for(self, clip_ids: list[str]) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {c: {} for c in clip_ids}
        if clip_ids:
            for r in self._rows("SELECT clip_id, name, value FROM metrics WHERE list_contains(?, clip_id)", [clip_ids]):
                out[r["clip_id"]][r["name"]] = r["value"]
        return out

    def put_embedding(self, clip_id: str, encoder: str, embedding: np.ndarray, partials: np.ndarray | None) -> None:
        """A clip's embedding under its encoder's name, and its window embeddings when given."""
        self.con.execute("INSERT OR REPLACE INTO clip_embeddings VALUES (?, ?, ?)",
                         [clip_id, encoder, np.asarray(embedding, np.float32).tolist()])
        if partials is not None:
            self.con.execute("INSERT OR REPLACE INTO clip_embeddings VALUES (?, ?, ?)",
                             [clip_id, encoder + PARTIALS, np.asarray(partials, np.float32).reshape(-1).tolist()])

    def embeddings(self, clip_ids: list[str], encoder: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Clip embeddings of one encoder and their window embeddings, by clip id."""
        rows = self._rows(
            "SELECT clip_id, encoder, vector FROM clip_embeddings WHERE list_contains(?, clip_id) AND encoder IN (?, ?)",
            [clip_ids, encoder, encoder + PARTIALS])
        embeds = {r["clip_id"]: np.asarray(r["vector"], np.float32) for r in rows if r["encoder"] == encoder}
        partials = {r["clip_id"]: np.asarray(r["vector"], np.float32).reshape(-1, len(embeds[r["clip_id"]]))
                    for r in rows if r["encoder"] != encoder and r["clip_id"] in embeds}
        return embeds, partials

    def put_frames(self, clip_id: str, name: str, producer: str, hop_s: float, values: np.ndarray) -> None:
        self.con.execute("INSERT OR REPLACE INTO clip_frames VALUES (?, ?, ?, ?, ?)",
                         [clip_id, name, producer, hop_s, np.asarray(values).tolist()])

    def frames(self, clip_id: str, name: str) -> tuple[float, np.ndarray] | None:
        rows = self._rows('SELECT hop_s, "values" FROM clip_frames WHERE clip_id = ? AND name = ?', [clip_id, name])
        return (rows[0]["hop_s"], np.asarray(rows[0]["values"], np.float32)) if rows else None

    # -- transcripts ---------------------------------------------------------------------------
    def put_asr(self, t: Transcript, words: list[Word]) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO transcripts (clip_id, kind, text, language, language_prob, lid_scope, avg_logprob, producer) "
            "VALUES (?, 'asr', ?, ?, ?, ?, ?, ?)",
            [t.clip_id, t.text, t.language, t.language_prob, t.lid_scope, t.avg_logprob, t.producer])
        self.con.execute("DELETE FROM words WHERE clip_id = ?", [t.clip_id])
        if words:
            self.con.executemany("INSERT INTO words VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [(w.clip_id, w.idx, w.word, w.start_s, w.end_s, w.probability, t.producer) for w in words])

    def transcripts(self, speaker: str, kind: str) -> dict[str, Transcript]:
        """The speaker's transcripts of one kind (ASR or GIVEN), by clip id."""
        return {r["clip_id"]: _transcript(r) for r in self._rows(
            "SELECT t.* FROM transcripts t JOIN clips c USING (clip_id) WHERE c.speaker = ? AND t.kind = ?", [speaker, kind])}

    def clip_transcripts(self, clip_ids: list[str]) -> dict[tuple[str, str], Transcript]:
        """Every transcript of these clips, by (clip id, kind)."""
        return {(r["clip_id"], r["kind"]): _transcript(r) for r in self._rows(
            "SELECT * FROM transcripts WHERE list_contains(?, clip_id)", [clip_ids])}

    def words(self, clip_ids: list[str]) -> dict[str, list[Word]]:
        out: dict[str, list[Word]] = {c: [] for c in clip_ids}
        for r in self._rows("SELECT * FROM words WHERE list_contains(?, clip_id) ORDER BY clip_id, idx", [clip_ids]):
            out[r["clip_id"]].append(Word(r["clip_id"], r["idx"], r["word"], r["start_s"], r["end_s"], r["probability"]))
        return out

    def majority_language(self, speaker: str) -> str | None:
        """The language the ASR heard most often in the speaker's clips."""
        return self._scalar(
            """SELECT t.language FROM transcripts t JOIN clips c USING (clip_id)
               WHERE c.speaker = ? AND t.kind = 'asr' AND t.language IS NOT NULL
               GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""", [speaker])

    def put_given_text(self, g: GivenText) -> None:
        """The user's transcript of a whole recording (the newest one given wins)."""
        self.con.execute("INSERT OR REPLACE INTO given_transcripts VALUES (?, ?, ?, ?)",
                         [g.recording_sha256, g.text, g.source, g.lang])

    def given_texts(self, speaker: str) -> dict[str, GivenText]:
        """The speaker's given transcripts, by recording."""
        return {r["recording_sha256"]: GivenText(r["recording_sha256"], r["text"], r["source"], r["lang"]) for r in self._rows(
            """SELECT g.* FROM given_transcripts g JOIN recordings r ON r.sha256 = g.recording_sha256
               WHERE r.speaker = ?""", [speaker])}

    def put_clip_texts(self, texts: Iterable[Transcript]) -> None:
        """Each clip's share of its recording's given text (kind GIVEN), replacing older ones."""
        rows = [(t.clip_id, t.text, t.language, t.producer, t.alignment_score) for t in texts]
        if rows:
            self.con.executemany(
                "INSERT OR REPLACE INTO transcripts (clip_id, kind, text, language, producer, alignment_score) "
                "VALUES (?, 'given', ?, ?, ?, ?)", rows)

    def clip_text(self, clip_id: str) -> Transcript | None:
        """The clip's text from the one place every stage reads it: the user's when given, else ASR."""
        ts = self.clip_transcripts([clip_id])
        return ts.get((clip_id, GIVEN)) or ts.get((clip_id, ASR))

    # -- verdicts, enrolment, timbre library, rule sets ------------------------------------------
    def record_rule_set(self, version: str, thresholds: dict, source: str) -> None:
        self.con.execute("INSERT OR IGNORE INTO rule_sets (version, thresholds, source) VALUES (?, ?, ?)",
                         [version, to_json(thresholds), source])

    def rule_set(self, version: str) -> dict | None:
        """The thresholds of a rule set as it decided ({"clip", "rate", "enrolment", "speaker"})."""
        raw = self._scalar("SELECT thresholds FROM rule_sets WHERE version = ?", [version])
        return json.loads(raw) if raw else None

    def record_verdicts(self, rule_set: str, clip_ids: list[str], verdicts: list[Verdict]) -> None:
        """Replace the rule set's verdicts on these clips with `verdicts`."""
        self.con.execute("DELETE FROM verdicts WHERE rule_set = ? AND list_contains(?, clip_id)", [rule_set, clip_ids])
        if verdicts:
            self.con.executemany("INSERT INTO verdicts (clip_id, rule_set, status, reasons, flags) VALUES (?, ?, ?, ?, ?)",
                                 [(v.clip_id, v.rule_set, v.status, list(v.reasons), list(v.flags)) for v in verdicts])

    def record_enrolment(self, e: Enrolment) -> None:
        self.con.execute("DELETE FROM enrolments WHERE speaker = ? AND rule_set = ?", [e.speaker, e.rule_set])
        self.con.execute(
            "INSERT INTO enrolments (speaker, rule_set, status, accepted_s, rejected_s, advice) VALUES (?, ?, ?, ?, ?, ?)",
            [e.speaker, e.rule_set, e.status, e.accepted_s, e.rejected_s, to_json(e.advice)])

    def enrolment(self, speaker: str, rule_set: str | None = None) -> Enrolment | None:
        """The speaker's enrolment under a rule set, or the newest one."""
        rows = self._rows(
            "SELECT * FROM enrolments WHERE speaker = ? AND (? IS NULL OR rule_set = ?) ORDER BY decided_at DESC LIMIT 1",
            [speaker, rule_set, rule_set])
        if not rows:
            return None
        r = rows[0]
        advice = json.loads(r["advice"]) if isinstance(r["advice"], str) else r["advice"]
        return Enrolment(r["speaker"], r["rule_set"], r["status"], r["accepted_s"], r["rejected_s"], advice or [])

    def put_speaker_embedding(self, speaker: str, encoder: str, vector: np.ndarray | None, n_clips: int) -> None:
        """The speaker's timbre-library entry. None (no accepted clip left) keeps the row with no
        vector, so the encoder is still known when a clip is accepted again (`newest_encoder`)."""
        self.con.execute("DELETE FROM speaker_embeddings WHERE speaker = ? AND encoder = ?", [speaker, encoder])
        self.con.execute("INSERT INTO speaker_embeddings (speaker, encoder, vector, n_clips) VALUES (?, ?, ?, ?)",
                         [speaker, encoder, None if vector is None else np.asarray(vector, np.float32).tolist(),
                          n_clips if vector is not None else 0])

    def speaker_embeddings(self, encoder: str) -> dict[str, np.ndarray]:
        """The timbre library of one encoder, by speaker (speakers with a vector)."""
        return {r["speaker"]: np.asarray(r["vector"], np.float32) for r in self._rows(
            "SELECT speaker, vector FROM speaker_embeddings WHERE encoder = ? AND vector IS NOT NULL", [encoder])}

    def newest_speaker_embedding(self, speaker: str, prefix: str) -> tuple[str, np.ndarray] | None:
        """(encoder, vector) of the speaker's newest timbre-library vector whose encoder starts with `prefix`."""
        rows = self._rows("SELECT encoder, vector FROM speaker_embeddings WHERE speaker = ? AND starts_with(encoder, ?) "
                          "AND vector IS NOT NULL ORDER BY updated_at DESC LIMIT 1", [speaker, prefix])
        return (rows[0]["encoder"], np.asarray(rows[0]["vector"], np.float32)) if rows else None

    def newest_encoder(self, speaker: str, prefix: str | None = None) -> str | None:
        """The encoder of the speaker's newest vetting (the timbre-library entry it wrote, with or
        without a vector); with `prefix` (TIMBRE_PREFIX), the newest of those entries instead."""
        if prefix is not None:
            return self._scalar("SELECT encoder FROM speaker_embeddings WHERE speaker = ? AND starts_with(encoder, ?) "
                                "ORDER BY updated_at DESC LIMIT 1", [speaker, prefix])
        return self._scalar("SELECT encoder FROM speaker_embeddings WHERE speaker = ? AND NOT starts_with(encoder, ?) "
                            "ORDER BY updated_at DESC LIMIT 1", [speaker, TIMBRE_PREFIX])

    def put_speaker_prompt(self, p: SpeakerPrompt) -> None:
        self.con.execute("INSERT INTO speaker_prompts (speaker, path, text, lang, source, set_by) VALUES (?, ?, ?, ?, ?, ?)",
                         [p.speaker, self._stored(p.path), p.text, p.lang, p.source, p.set_by])

    def speaker_prompt(self, speaker: str) -> SpeakerPrompt | None:
        """The newest prompt a person gave for the speaker: a file (`clonebench prompt set`) or an
        accepted clip a reviewer picked, with its text now. None: the store chooses one."""
        rows = self._rows("SELECT * FROM speaker_prompts WHERE speaker = ? ORDER BY set_at DESC LIMIT 1", [speaker])
        given = None
        if rows:
            r = rows[0]
            given = SpeakerPrompt(r["speaker"], self._resolved(r["path"]), r["text"], r["lang"], r["source"], r["set_by"],
                                  r["set_at"])
        pick = self.reference_pick(speaker)
        view = self.clip_view(pick.clip_id) if pick else None
        if view is None or view.status != "accepted" or not (view.text or "").strip():
            return given    # a pick rejected since, or without words, gives way
        if given is not None and given.set_at > pick.made_at:
            return given
        return SpeakerPrompt(speaker, view.clip.path_32k, view.text, view.lang, f"clip {pick.clip_id}", pick.reviewer,
                             pick.made_at, pick.clip_id)

    def clear_speaker_prompt(self, speaker: str) -> int:
        """Forget the prompts given for the speaker (the store chooses again); how many there were."""
        n = self._scalar("SELECT count(*) FROM speaker_prompts WHERE speaker = ?", [speaker])
        self.con.execute("DELETE FROM speaker_prompts WHERE speaker = ?", [speaker])
        return n

    # -- the clip view: what training, export, prompts and reports read --------------------------
    def clip_views(self, speaker: str | None = None, *, rule_set: str | None = None, status: str | None = None,
                   path_16k: str | None = None, clip_id: str | None = None) -> list[ClipView]:
        """Clips with their verdict and their text, ordered by speaker, source and time; each
        filter given narrows them (`status`: the verdict that stands). The verdict is a person's
        where one stands (`reviews`), else the rules' (the newest rule set's, or `rule_set`'s);
        the text is a person's, else the given text, else ASR."""
        verdict = ("""(SELECT clip_id, status, reasons, flags FROM verdicts WHERE rule_set = ?)""" if rule_set else
                   """(SELECT clip_id, machine_status AS status, machine_reasons AS reasons, flags FROM clip_verdicts)""")
        path_16k = self._stored(path_16k)
        params = ([rule_set] if rule_set else []) + [speaker, speaker, status, status, path_16k, path_16k, clip_id, clip_id]
        rows = self._rows(
            f"""SELECT {_CLIP_COLUMNS}, r.source, s.lang, v.status AS machine_status, v.reasons AS machine_reasons, v.flags,
                       coalesce(p.status, v.status) AS status,
                       CASE WHEN p.status IS NOT NULL THEN p.reasons ELSE v.reasons END AS reasons,
                       coalesce(p.text, g.text, a.text) AS text,
                       CASE WHEN p.text IS NOT NULL THEN 'reviewed' WHEN g.text IS NOT NULL THEN 'given'
                            WHEN a.text IS NOT NULL THEN 'asr' END AS text_kind,
                       p.version AS review_version, p.status AS review_status, p.reasons AS review_reasons,
                       p.note AS review_note, p.status_by AS review_status_by, p.status_at AS review_status_at,
                       p.machine_status AS review_machine_status, p.machine_reasons AS review_machine_reasons,
                       p.text AS review_text, p.text_by AS review_text_by, p.text_at AS review_text_at
                FROM clips c JOIN recordings r ON r.sha256 = c.recording_sha256
                LEFT JOIN speakers s ON s.speaker = c.speaker
                LEFT JOIN {verdict} v ON v.clip_id = c.clip_id
                LEFT JOIN clip_reviews p ON p.clip_id = c.clip_id
                LEFT JOIN transcripts g ON g.clip_id = c.clip_id AND g.kind = 'given'
                LEFT JOIN transcripts a ON a.clip_id = c.clip_id AND a.kind = 'asr'
                WHERE (? IS NULL OR c.speaker = ?) AND (? IS NULL OR coalesce(p.status, v.status) = ?)
                  AND (? IS NULL OR c.path_16k = ?) AND (? IS NULL OR c.clip_id = ?)
                ORDER BY c.speaker, r.source, c.start_s""", params)
        return [ClipView(self._clip(r), self._resolved(r["source"]), r["lang"], r["status"], tuple(r["reasons"] or ()),
                         r["text"], r["text_kind"], tuple(r["flags"] or ()), r["machine_status"],
                         tuple(r["machine_reasons"] or ()),
                         clip_review({**r, "review_clip_id": r["clip_id"]}, "review_") if r["review_version"] is not None else None)
                for r in rows]

    def clip_view(self, clip_id: str) -> ClipView | None:
        views = self.clip_views(clip_id=clip_id)
        return views[0] if views else None

    def accepted_clips(self, speakers: list[str] | None = None) -> list[ClipView]:
        """Every accepted clip (newest verdicts) of these speakers, or of all, ordered by speaker and clip id."""
        views = [v for v in self.clip_views(status="accepted") if not speakers or v.clip.speaker in speakers]
        return sorted(views, key=lambda v: (v.clip.speaker, v.clip.clip_id))

    def clip_by_path(self, path_16k: str) -> ClipView | None:
        views = self.clip_views(path_16k=path_16k)
        return views[0] if views else None

    def enrolled_speakers(self) -> list[str]:
        """Speakers with at least one accepted clip."""
        return sorted({v.clip.speaker for v in self.clip_views(status="accepted")})

    # -- dataset overview ------------------------------------------------------------------------
    def speaker_totals(self) -> list[SpeakerTotals]:
        """Per speaker: lang, clips, accepted, accepted_s, rejected_s and the newest enrolment status."""
        rows = self._rows(
            """SELECT s.speaker, s.lang,
                      count(v.clip_id) AS clips,
                      count(*) FILTER (WHERE v.status = 'accepted') AS accepted,
                      coalesce(sum(v.end_s - v.start_s) FILTER (WHERE v.status = 'accepted'), 0) AS accepted_s,
                      coalesce(sum(v.end_s - v.start_s) FILTER (WHERE v.status = 'rejected'), 0) AS rejected_s
               FROM speakers s LEFT JOIN clip_verdicts v USING (speaker) GROUP BY s.speaker, s.lang ORDER BY s.speaker""")
        status = {r["speaker"]: r["status"] for r in self._rows(
            """SELECT speaker, status FROM (SELECT *, row_number() OVER (PARTITION BY speaker ORDER BY decided_at DESC) AS rn
               FROM enrolments) WHERE rn = 1""")}
        return [SpeakerTotals(r["speaker"], r["lang"], r["clips"], r["accepted"], r["accepted_s"], r["rejected_s"],
                              status.get(r["speaker"], "not decided")) for r in rows]

    def reason_totals(self) -> list[dict]:
        """Per rejection reason: how many clips and speakers it hit."""
        return self._rows(
            """SELECT reason, count(*) AS clips, count(DISTINCT speaker) AS speakers
               FROM (SELECT speaker, unnest(reasons) AS reason FROM clip_verdicts WHERE status = 'rejected')
               GROUP BY reason ORDER BY clips DESC, reason""")

    # -- ingest errors ---------------------------------------------------------------------------
    def log_error(self, source: str, speaker: str, error: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO ingest_errors (source, speaker, error) VALUES (?, ?, ?)", [source, speaker, error])

    def clear_error(self, source: str, speaker: str) -> None:
        self.con.execute("DELETE FROM ingest_errors WHERE source = ? AND speaker = ?", [source, speaker])
