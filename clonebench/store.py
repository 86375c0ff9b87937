"""The DuckDB store: the single source of truth for metadata. Audio stays on disk.

Schema (documented for people who query the file directly; README repeats it):

speakers            speaker PK, lang, created_at
recordings          sha256 PK, speaker, source, format, sample_rate, channels, duration_s,
                    decoder, ingested_at            -- keyed by content hash: re-ingest is a no-op
clips               clip_id PK, recording_sha256, speaker, start_s, end_s, duration_s,
                    path_32k, path_16k, slicer      -- slicer = version of the slicing rule
given_transcripts   recording_sha256 PK, text, source  -- the user's transcript of a whole file
metrics             clip_id, name, value, producer  PK (clip_id, name)
clip_stages         clip_id, stage, producer, done_at  PK (clip_id, stage): finished work
transcripts         clip_id, kind ('asr'|'given'), text, language, language_prob, lid_scope,
                    avg_logprob, producer           PK (clip_id, kind)
words               clip_id, idx, word, start_s, end_s, probability, producer  PK (clip_id, idx)
clip_embeddings     clip_id, encoder, vector FLOAT[]  PK (clip_id, encoder)
clip_frames         clip_id, name, producer, hop_s, values FLOAT[]  PK (clip_id, name)
                    -- frame-level evidence, e.g. name 'overlap_prob' from `vet --overlap`
speaker_embeddings  speaker, encoder, vector FLOAT[], n_clips, updated_at  PK (speaker, encoder)
                    -- the timbre library: L2-normalised mean embedding of the accepted clips
verdicts            clip_id, rule_set, status, reasons VARCHAR[], decided_at  PK (clip_id, rule_set)
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
eval_items          run_id, item_key PK together; speaker, lang, text, path, prompt_path,
                    audio_sha256, status ('ok'|'partial'|'error'), error, duration_s, hyp_text,
                    unit ('word'|'char'|'mixed'), hits/subs/dels/ins (in that unit),
                    char_hits/char_subs/char_dels/char_ins, wer, cer, sim, sim_o, dnsmos_sig,
                    dnsmos_bak, dnsmos_ovrl, utmos, synth_s, rtf, ttfa_s, clip_ratio,
                    silence_ratio, speech_rate, flags VARCHAR[]

Stable view for direct queries (columns will not change meaning):
clip_verdicts(speaker, source, clip_id, start_s, end_s, status, reasons, text)
    the verdict of the newest rule set for each clip, with the given transcript when there is
    one and the ASR text otherwise.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import StoreInUse, UserError

SCHEMA_VERSION = 1

_DDL = """
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
    recording_sha256 VARCHAR PRIMARY KEY, text VARCHAR, source VARCHAR);
CREATE TABLE IF NOT EXISTS metrics (
    clip_id VARCHAR, name VARCHAR, value DOUBLE, producer VARCHAR, PRIMARY KEY (clip_id, name));
CREATE TABLE IF NOT EXISTS clip_stages (
    clip_id VARCHAR, stage VARCHAR, producer VARCHAR,
    done_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (clip_id, stage));
CREATE TABLE IF NOT EXISTS transcripts (
    clip_id VARCHAR, kind VARCHAR, text VARCHAR, language VARCHAR, language_prob DOUBLE,
    lid_scope VARCHAR, avg_logprob DOUBLE, producer VARCHAR, PRIMARY KEY (clip_id, kind));
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
    decided_at TIMESTAMP DEFAULT current_timestamp, PRIMARY KEY (clip_id, rule_set));
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
CREATE TABLE IF NOT EXISTS checkpoints (
    path VARCHAR PRIMARY KEY, kind VARCHAR, run_name VARCHAR, stage VARCHAR, step INTEGER, epoch INTEGER,
    sha256 VARCHAR, data_hash VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp);
CREATE OR REPLACE VIEW clip_verdicts AS
WITH newest AS (
    SELECT v.*, row_number() OVER (PARTITION BY clip_id ORDER BY decided_at DESC, rule_set DESC) AS rn
    FROM verdicts v)
SELECT c.speaker, r.source, c.clip_id, c.start_s, c.end_s, n.status, n.reasons,
       coalesce(g.text, a.text) AS text
FROM clips c
JOIN recordings r ON r.sha256 = c.recording_sha256
LEFT JOIN newest n ON n.clip_id = c.clip_id AND n.rn = 1
LEFT JOIN transcripts g ON g.clip_id = c.clip_id AND g.kind = 'given'
LEFT JOIN transcripts a ON a.clip_id = c.clip_id AND a.kind = 'asr';
"""


class Store:
    """A DuckDB connection held for the life of a command.

    DuckDB lets one process open a file for writing; a second one gets a lock error, which we
    turn into a clear "store is in use" message instead of risking a corrupt file.
    """

    def __init__(self, path: Path, read_only: bool = False):
        import duckdb

        self.path = Path(path)
        if read_only and not self.path.exists():
            raise UserError(f"{self.path}: no store here yet (run `clonebench vet` first)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise StoreInUse(f"{self.path}: store is in use by another clonebench process; wait for it to finish") from None
            raise UserError(f"{self.path}: cannot open store ({str(e).splitlines()[0]})") from None
        if not read_only:
            self.con.execute(_DDL)
            self.con.execute(
                "INSERT OR REPLACE INTO schema_info VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing: a kill inside leaves the store as it was before."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- small query helpers -------------------------------------------------------------
    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict]:
        cur = self.con.execute(sql, list(params))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def scalar(self, sql: str, params: Iterable[Any] = ()) -> Any:
        row = self.con.execute(sql, list(params)).fetchone()
        return row[0] if row else None

    # -- writers used by several stages ---------------------------------------------------
    def put_metrics(self, clip_id: str, values: dict[str, float | None], producer: str) -> None:
        rows = [(clip_id, k, None if v is None else float(v), producer) for k, v in values.items()]
        if rows:
            self.con.executemany("INSERT OR REPLACE INTO metrics VALUES (?, ?, ?, ?)", rows)

    def mark_done(self, clip_id: str, stage: str, producer: str) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO clip_stages (clip_id, stage, producer) VALUES (?, ?, ?)",
            [clip_id, stage, producer],
        )

    def pending(self, speaker: str, stage: str, producer: str) -> list[dict]:
        """Clips of a speaker whose stage has not been done by this producer version."""
        return self.rows(
            """SELECT c.* FROM clips c
               LEFT JOIN clip_stages s ON s.clip_id = c.clip_id AND s.stage = ? AND s.producer = ?
               WHERE c.speaker = ? AND s.clip_id IS NULL ORDER BY c.clip_id""",
            [stage, producer, speaker],
        )

    def metrics_for(self, clip_ids: list[str]) -> dict[str, dict[str, float | None]]:
        out: dict[str, dict[str, float | None]] = {c: {} for c in clip_ids}
        if clip_ids:
            for r in self.rows("SELECT clip_id, name, value FROM metrics WHERE list_contains(?, clip_id)", [clip_ids]):
                out[r["clip_id"]][r["name"]] = r["value"]
        return out

    def log_error(self, source: str, speaker: str, error: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO ingest_errors (source, speaker, error) VALUES (?, ?, ?)", [source, speaker, error])

    def clear_error(self, source: str, speaker: str) -> None:
        self.con.execute("DELETE FROM ingest_errors WHERE source = ? AND speaker = ?", [source, speaker])


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
