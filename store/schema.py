"""The store's schema: every table, the stable view, the schema version and the migrations.

Schema (documented for people who query the file directly; README repeats it):

speakers            speaker PK, lang, created_at
recordings          sha256 PK, speaker, source, format, sample_rate, channels, duration_s,
                    decoder, ingested_at            -- keyed by content hash: re-ingest is a no-op
clips               clip_id PK, recording_sha256, speaker, start_s, end_s, duration_s,
                    path_32k, path_16k, slicer      -- slicer = version of the slicing rule
given_transcripts   recording_sha256 PK, text, source, lang  -- the user's transcript of a whole file
                    (source: 'FILE:LINE' of a TSV or .list, or a .lab/.txt sidecar's path)
rule_sets           version PK, thresholds JSON, source  -- each rule set whole, as it decided
metrics             clip_id, name, value, producer  PK (clip_id, name)
clip_stages         clip_id, stage, producer, done_at  PK (clip_id, stage): finished work
transcripts         clip_id, kind ('asr'|'given'), text, language, language_prob, lid_scope,
                    avg_logprob, producer, alignment_score   PK (clip_id, kind)
                    -- 'given' rows are the clip's share of the recording's given text: the whole
                    text for a one-clip recording (alignment_score NULL), else the words aligned
                    with the clip's ASR words (alignment_score = matched share, 1 = exact)
words               clip_id, idx, word, start_s, end_s, probability, producer  PK (clip_id, idx)
clip_embeddings     clip_id, encoder, vector FLOAT[]  PK (clip_id, encoder)
clip_frames         clip_id, name, producer, hop_s, values FLOAT[]  PK (clip_id, name)
                    -- frame-level evidence, e.g. name 'overlap_prob' from `vet --overlap`
speaker_embeddings  speaker, encoder, vector FLOAT[] (NULL: no accepted clip now), n_clips, updated_at  PK (speaker, encoder)
                    -- the timbre library: L2-normalised mean embedding of the accepted clips
verdicts            clip_id, rule_set, status, reasons VARCHAR[], decided_at, flags VARCHAR[]
                    PK (clip_id, rule_set) -- flags: weak evidence for a person to check; not a rejection
enrolments          speaker, rule_set, status, accepted_s, rejected_s, advice JSON  PK (speaker, rule_set)
ingest_errors       source, speaker, error, logged_at      -- the newest error per source and speaker
train_runs          run_name PK, created_at, preset, speakers VARCHAR[], data_hash, out_dir, config JSON,
                    status ('running'|'complete')
train_steps         run_name, stage ('s2'|'s1'|'s2-val'|'s1-val'), step, epoch, losses JSON, lr,
                    samples_per_s   PK (run_name, stage, step)
checkpoints         path PK, kind ('gpt'|'sovits'), run_name, stage, step, epoch, sha256, data_hash
                    -- GPT-SoVITS-format files written by `train`; `evaluate --gpt/--sovits` takes them
eval_runs           run_id PK, created_at, finished_at, status ('running'|'complete'), mode
                    ('audio'|'model'), label, source (audio folder or checkpoints), manifest_sha256,
                    gpt_sha256, sovits_sha256, encoder, asr_model, utmos_model, normalizer, seed,
                    n_boot, device, threads, baseline_run, n_items, n_errors, summary JSON
speaker_prompts     speaker, path, text, lang, source, set_by, set_at  PK (speaker, set_at)
                    -- a synthesis prompt a person gave (`clonebench prompt set`); the newest wins
reviews             review_id PK (sequence review_ids), speaker, clip_id, action ('accept'|'reject'|'agree'|
                    'text'|'reference'|'undo'), status, reasons VARCHAR[], note, before, after,
                    machine_status, machine_reasons VARCHAR[], undoes, reviewer, source, made_at
                    -- what people decided (`clonebench review`), one row per act, never edited: a
                    verdict (status + reasons) or a text given over the machine's, the speaker's
                    reference clip picked, or an earlier row taken back ('undo', undoes = its id).
                    machine_* is the rules' verdict the person saw.
checkpoint_choices  run_name, chosen_at PK together; rule, gpt_path, sovits_path, epoch, eval_run, summary JSON
                    -- the pair chosen from a training run's scored checkpoints by a stated rule
                    (`evaluate --run`, `train --eval-every`); the newest is the run's choice
eval_items          run_id, item_key PK together; speaker, lang, text, path, prompt_path,
                    audio_sha256, status ('ok'|'partial'|'error'), error, duration_s, hyp_text,
                    unit ('word'|'char'|'mixed'), hits/subs/dels/ins (in that unit),
                    char_hits/char_subs/char_dels/char_ins, wer, cer, sim, sim_o, dnsmos_sig,
                    dnsmos_bak, dnsmos_ovrl, utmos, synth_s, rtf, ttfa_s, clip_ratio,
                    silence_ratio, speech_rate, flags VARCHAR[]

File paths (recordings.source, clips.path_32k/path_16k, eval_items.path/prompt_path,
train_runs.out_dir, checkpoints.path) are relative to the store's folder (POSIX form) when the file
lies inside it, else absolute: a moved or shared folder keeps its clips (`paths.py`).

Stable views for direct queries (columns will not change meaning):
clip_verdicts(speaker, source, clip_id, start_s, end_s, status, reasons, text, flags,
              machine_status, machine_reasons, reviewed_by, reviewed_at, text_source)
    the verdict every stage uses for each clip: a person's (the newest review not taken back)
    where there is one, else the newest rule set's (machine_*: the rules' verdict either way);
    the text a person gave, else the given transcript, else the ASR text (text_source says which).
clip_reviews(clip_id, version, status, reasons, note, status_by, status_at, machine_status,
             machine_reasons, text, text_by, text_at)
    per reviewed clip, where people's reviews leave it; version = how many review rows name it
    (the review app's optimistic check).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from . import paths

log = logging.getLogger(__name__)

SCHEMA_VERSION = 7

TABLES = """
CREATE TABLE IF NOT EXISTS schema_info (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS speakers (
    speaker VARCHAR PRIMARY KEY, lang VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS recordings (
    sha256 VARCHAR PRIMARY KEY, speaker VARCHAR NOT NULL, source VARCHAR NOT NULL,
    format VARCHAR, sample_rate INTEGER, channels INTEGER, duration_s DOUBLE,
    decoder VARCHAR, ingested_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS clips (
    clip_id VARCHAR PRIMARY KEY, recording_sha256 VARCHAR NOT NULL, speaker VARCHAR NOT NULL,
    start_s DOUBLE, end_s DOUBLE, duration_s DOUBLE, path_32k VARCHAR, path_16k VARCHAR,
    slicer VARCHAR);
CREATE TABLE IF NOT EXISTS given_transcripts (
    recording_sha256 VARCHAR PRIMARY KEY, text VARCHAR, source VARCHAR, lang VARCHAR);
CREATE TABLE IF NOT EXISTS rule_sets (
    version VARCHAR PRIMARY KEY, thresholds JSON, source VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS metrics (
    clip_id VARCHAR, name VARCHAR, value DOUBLE, producer VARCHAR, PRIMARY KEY (clip_id, name));
CREATE TABLE IF NOT EXISTS clip_stages (
    clip_id VARCHAR, stage VARCHAR, producer VARCHAR,
    done_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (clip_id, stage));
CREATE TABLE IF NOT EXISTS transcripts (
    clip_id VARCHAR, kind VARCHAR, text VARCHAR, language VARCHAR, language_prob DOUBLE,
    lid_scope VARCHAR, avg_logprob DOUBLE, producer VARCHAR, alignment_score DOUBLE,
    PRIMARY KEY (clip_id, kind));
CREATE TABLE IF NOT EXISTS words (
    clip_id VARCHAR, idx INTEGER, word VARCHAR, start_s DOUBLE, end_s DOUBLE,
    probability DOUBLE, producer VARCHAR, PRIMARY KEY (clip_id, idx));
CREATE TABLE IF NOT EXISTS clip_embeddings (
    clip_id VARCHAR, encoder VARCHAR, vector FLOAT[], PRIMARY KEY (clip_id, encoder));
CREATE TABLE IF NOT EXISTS clip_frames (
    clip_id VARCHAR, name VARCHAR, producer VARCHAR, hop_s DOUBLE, "values" FLOAT[], PRIMARY KEY (clip_id, name));
CREATE TABLE IF NOT EXISTS speaker_embeddings (
    speaker VARCHAR, encoder VARCHAR, vector FLOAT[], n_clips INTEGER,
    updated_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (speaker, encoder));
CREATE TABLE IF NOT EXISTS verdicts (
    clip_id VARCHAR, rule_set VARCHAR, status VARCHAR, reasons VARCHAR[],
    decided_at TIMESTAMP DEFAULT current_timestamp, flags VARCHAR[], PRIMARY KEY (clip_id, rule_set));
CREATE TABLE IF NOT EXISTS enrolments (
    speaker VARCHAR, rule_set VARCHAR, status VARCHAR, accepted_s DOUBLE, rejected_s DOUBLE,
    advice JSON, decided_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (speaker, rule_set));
CREATE TABLE IF NOT EXISTS ingest_errors (
    source VARCHAR, speaker VARCHAR, error VARCHAR,
    logged_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (source, speaker));
CREATE TABLE IF NOT EXISTS eval_runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMP DEFAULT current_timestamp, finished_at TIMESTAMP,
    status VARCHAR, mode VARCHAR, label VARCHAR, source VARCHAR, manifest_sha256 VARCHAR,
    gpt_sha256 VARCHAR, sovits_sha256 VARCHAR, encoder VARCHAR, asr_model VARCHAR, utmos_model VARCHAR,
    normalizer VARCHAR, seed INTEGER, n_boot INTEGER, device VARCHAR, threads INTEGER,
    baseline_run VARCHAR, n_items INTEGER, n_errors INTEGER, summary JSON);
CREATE TABLE IF NOT EXISTS eval_items (
    run_id VARCHAR, item_key VARCHAR, speaker VARCHAR, lang VARCHAR, text VARCHAR, path VARCHAR,
    prompt_path VARCHAR, audio_sha256 VARCHAR, status VARCHAR, error VARCHAR, duration_s DOUBLE,
    hyp_text VARCHAR, unit VARCHAR, hits INTEGER, subs INTEGER, dels INTEGER, ins INTEGER,
    char_hits INTEGER, char_subs INTEGER, char_dels INTEGER, char_ins INTEGER, wer DOUBLE, cer DOUBLE,
    sim DOUBLE, sim_o DOUBLE, dnsmos_sig DOUBLE, dnsmos_bak DOUBLE, dnsmos_ovrl DOUBLE, utmos DOUBLE,
    synth_s DOUBLE, rtf DOUBLE, ttfa_s DOUBLE, clip_ratio DOUBLE, silence_ratio DOUBLE,
    speech_rate DOUBLE, flags VARCHAR[], PRIMARY KEY (run_id, item_key));
CREATE TABLE IF NOT EXISTS train_runs (
    run_name VARCHAR PRIMARY KEY, created_at TIMESTAMP DEFAULT current_timestamp, preset VARCHAR,
    speakers VARCHAR[], data_hash VARCHAR, out_dir VARCHAR, config JSON, status VARCHAR);
CREATE TABLE IF NOT EXISTS train_steps (
    run_name VARCHAR, stage VARCHAR, step INTEGER, epoch INTEGER, losses JSON, lr DOUBLE,
    samples_per_s DOUBLE, logged_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (run_name, stage, step));
CREATE TABLE IF NOT EXISTS speaker_prompts (
    speaker VARCHAR, path VARCHAR, text VARCHAR, lang VARCHAR, source VARCHAR, set_by VARCHAR,
    set_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (speaker, set_at));
CREATE SEQUENCE IF NOT EXISTS review_ids START 1;
CREATE TABLE IF NOT EXISTS reviews (
    review_id BIGINT PRIMARY KEY DEFAULT nextval('review_ids'), speaker VARCHAR NOT NULL, clip_id VARCHAR NOT NULL,
    action VARCHAR NOT NULL, status VARCHAR, reasons VARCHAR[], note VARCHAR, before VARCHAR, after VARCHAR,
    machine_status VARCHAR, machine_reasons VARCHAR[], undoes BIGINT, reviewer VARCHAR NOT NULL, source VARCHAR,
    made_at TIMESTAMP DEFAULT current_timestamp);
CREATE TABLE IF NOT EXISTS checkpoint_choices (
    run_name VARCHAR, chosen_at TIMESTAMP DEFAULT current_timestamp, rule VARCHAR, gpt_path VARCHAR, sovits_path VARCHAR,
    epoch INTEGER, eval_run VARCHAR, summary VARCHAR, PRIMARY KEY (run_name, chosen_at));
CREATE TABLE IF NOT EXISTS checkpoints (
    path VARCHAR PRIMARY KEY, kind VARCHAR, run_name VARCHAR, stage VARCHAR, step INTEGER, epoch INTEGER,
    sha256 VARCHAR, data_hash VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp);
"""

VIEWS = """
CREATE OR REPLACE VIEW clip_reviews AS
WITH live AS (
    SELECT * FROM reviews
    WHERE action <> 'undo' AND review_id NOT IN (SELECT undoes FROM reviews WHERE action = 'undo' AND undoes IS NOT NULL)),
verdict AS (
    SELECT *, row_number() OVER (PARTITION BY clip_id ORDER BY review_id DESC) AS rn
    FROM live WHERE action IN ('accept', 'reject', 'agree')),
text AS (
    SELECT *, row_number() OVER (PARTITION BY clip_id ORDER BY review_id DESC) AS rn FROM live WHERE action = 'text'),
counts AS (SELECT clip_id, count(*) AS version FROM reviews GROUP BY clip_id)
SELECT n.clip_id, n.version, v.status, v.reasons, v.note, v.reviewer AS status_by, v.made_at AS status_at,
       v.machine_status, v.machine_reasons, t.after AS text, t.reviewer AS text_by, t.made_at AS text_at
FROM counts n
LEFT JOIN verdict v ON v.clip_id = n.clip_id AND v.rn = 1
LEFT JOIN text t ON t.clip_id = n.clip_id AND t.rn = 1;

CREATE OR REPLACE VIEW clip_verdicts AS
WITH newest AS (
    SELECT v.*, row_number() OVER (PARTITION BY clip_id ORDER BY decided_at DESC, rule_set DESC) AS rn
    FROM verdicts v)
SELECT c.speaker, r.source, c.clip_id, c.start_s, c.end_s,
       coalesce(p.status, n.status) AS status,
       CASE WHEN p.status IS NOT NULL THEN p.reasons ELSE n.reasons END AS reasons,
       coalesce(p.text, g.text, a.text) AS text, n.flags,
       n.status AS machine_status, n.reasons AS machine_reasons, p.status_by AS reviewed_by, p.status_at AS reviewed_at,
       CASE WHEN p.text IS NOT NULL THEN 'reviewed' WHEN g.text IS NOT NULL THEN 'given'
            WHEN a.text IS NOT NULL THEN 'asr' END AS text_source
FROM clips c
JOIN recordings r ON r.sha256 = c.recording_sha256
LEFT JOIN newest n ON n.clip_id = c.clip_id AND n.rn = 1
LEFT JOIN clip_reviews p ON p.clip_id = c.clip_id
LEFT JOIN transcripts g ON g.clip_id = c.clip_id AND g.kind = 'given'
LEFT JOIN transcripts a ON a.clip_id = c.clip_id AND a.kind = 'asr';
"""


def schema_version(con) -> int | None:
    """The version written in the file; None for a new, empty file."""
    has_info = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_info'").fetchone()[0]
    if not has_info:
        return None
    row = con.execute("SELECT value FROM schema_info WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else None


def create(con) -> None:
    con.execute(TABLES)
    con.execute(VIEWS)
    _set_version(con, SCHEMA_VERSION)


def _set_version(con, version: int) -> None:
    con.execute("INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [str(version)])


def _v1_to_v2(con, folder: Path) -> None:
    """v2: the user's text reaches the clips (per-clip 'given' transcripts, split by alignment),
    given texts keep their language, rule sets are stored whole."""
    from clonebench.core.align import split_text

    con.execute("ALTER TABLE transcripts ADD COLUMN IF NOT EXISTS alignment_score DOUBLE")
    con.execute("ALTER TABLE given_transcripts ADD COLUMN IF NOT EXISTS lang VARCHAR")
    con.execute(TABLES)  # the new tables
    given = con.execute(
        """SELECT g.recording_sha256, g.text, s.lang FROM given_transcripts g
           JOIN recordings r ON r.sha256 = g.recording_sha256 JOIN speakers s ON s.speaker = r.speaker""").fetchall()
    for sha, text, lang in given:
        clips = [c for (c,) in con.execute(
            "SELECT clip_id FROM clips WHERE recording_sha256 = ? ORDER BY start_s", [sha]).fetchall()]
        words = {c: [w for (w,) in con.execute("SELECT word FROM words WHERE clip_id = ? ORDER BY idx", [c]).fetchall()]
                 for c in clips}
        for cid, part in zip(clips, split_text(text, [words[c] for c in clips], lang or "en")):
            if part.text:
                con.execute(
                    "INSERT OR REPLACE INTO transcripts (clip_id, kind, text, producer, alignment_score) "
                    "VALUES (?, 'given', ?, ?, ?)", [cid, part.text, "user+migration-v2", part.score])
    log.info("store upgraded to schema 2: %d given transcripts split onto their clips", len(given))


# every column that records a file path: table -> (its key columns, its path columns)
PATH_COLUMNS = {
    "recordings": (("sha256",), ("source",)),
    "clips": (("clip_id",), ("path_32k", "path_16k")),
    "eval_items": (("run_id", "item_key"), ("path", "prompt_path")),
    "train_runs": (("run_name",), ("out_dir",)),
    "checkpoints": (("path",), ("path",)),
    "speaker_prompts": (("speaker", "set_at"), ("path",)),
}


def _v2_to_v3(con, folder: Path) -> None:
    """v3: paths inside the store's folder are stored relative to it. A path under the folder
    becomes relative; one from before the folder was moved becomes relative when its clip or
    eval audio is found under the same tail here; any other path stays absolute."""
    changed = 0
    for table, (keys, columns) in PATH_COLUMNS.items():
        names = list(dict.fromkeys(keys + columns))
        updates = []
        for row in con.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall():
            value = dict(zip(names, row))
            new = [_relative(value[c], folder) for c in columns]
            if new != [value[c] for c in columns]:
                updates.append(new + [value[k] for k in keys])
        if updates:
            con.executemany(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in columns)} "
                            f"WHERE {' AND '.join(f'{k} = ?' for k in keys)}", updates)
        changed += len(updates)
    log.info("store upgraded to schema 3: %d rows now name their files relative to %s", changed, folder)


def _relative(value: str | None, folder: Path) -> str | None:
    if value is None or not Path(value).is_absolute():
        return value
    inside = paths.stored(value, folder)
    return inside if inside != value else (paths.moved(value, folder) or value)


def _v3_to_v4(con, folder: Path) -> None:
    """v4: verdicts carry flags, weak evidence a person should check (they reject nothing)."""
    con.execute("ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS flags VARCHAR[]")


def _v4_to_v5(con, folder: Path) -> None:
    """v5: a speaker's synthesis prompt can be given by a person (`speaker_prompts`)."""
    con.execute(TABLES)


def _v5_to_v6(con, folder: Path) -> None:
    """v6: people's reviews (`reviews`), which `clip_verdicts` puts over the rules' verdicts."""
    con.execute(TABLES)


# version found in the file -> the step that brings it to the next version, given (connection, store folder)
def _v6_to_v7(con, folder: Path) -> None:
    """v7: the checkpoint chosen from a training run's scored epochs (`checkpoint_choices`)."""
    con.execute(TABLES)


MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7}


def upgrade(con, found: int, folder: Path) -> None:
    """Bring a store written by an older release to SCHEMA_VERSION, one step at a time, each in
    its own transaction: a kill leaves the file at a whole version. `folder` is the store file's
    folder now."""
    for version in range(found, SCHEMA_VERSION):
        con.execute("BEGIN TRANSACTION")
        try:
            MIGRATIONS[version](con, folder)
            _set_version(con, version + 1)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
    con.execute(VIEWS)


def to_json(value) -> str:
    return json.dumps(value, ensure_ascii=False)
