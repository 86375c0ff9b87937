"""The per-speaker quality report: enrolment banner, metric distributions with thresholds,
the clip table (player, thumbnails, reasons, transcript with low-confidence words and a diff
against the given text) and the speaker-embedding map."""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from clonebench.core import audio, textnorm
from clonebench.core.config import data_root_for
from clonebench.core.errors import UserError
from clonebench.store import ASR, GIVEN, REVIEWED, Store

from . import plots
from .html import audio_src, render

LOW_CONFIDENCE = 0.5  # word probability below which a word is highlighted

# (metric, title, rule keys whose values are drawn as thresholds)
DISTRIBUTIONS = [
    ("snr_db", "SNR (dB)", ["min_snr_db"]),
    ("dnsmos_bak", "DNSMOS BAK", ["min_dnsmos_bak"]),
    ("dnsmos_ovrl", "DNSMOS OVRL", []),
    ("scene_music", "music (scene classifier)", ["scene_music"]),
    ("scene_overlap", "two voices at once (scene classifier)", ["scene_overlap"]),
    ("scene_babble", "crowd behind the voice (scene classifier)", ["scene_babble"]),
    ("rt60_s", "reverb RT60 (s)", ["max_rt60_s"]),
    ("rate", "speaking rate (syll/s)", ["rate"]),
    ("loudness_lufs", "loudness (LUFS)", ["min_loudness_lufs"]),
    ("bandwidth_hz", "bandwidth (Hz)", ["min_bandwidth_hz"]),
    ("spk_centroid_cos", "cosine to speaker centroid", ["min_centroid_cos"]),
]
TABLE_METRICS = [("duration_s", "dur s"), ("snr_db", "SNR"), ("scene_overlap", "2 voices"), ("scene_music", "music"),
                 ("rt60_s", "RT60"), ("rate", "rate"), ("spk_centroid_cos", "spk cos")]
FOREIGN = {"speaker_mismatch", "multiple_speakers"}


def default_out(db: Path, name: str) -> Path:
    return data_root_for(db) / "reports" / f"{name}.html"


def speaker_report(db: Path, speaker: str, out: Path | None = None, embed_audio: bool = False) -> Path:
    from clonebench.curate.reviews import describe, verdict_text
    from clonebench.curate.rules import ADVICE, FLAGS, RuleSet, rate_of
    from clonebench.instruments.references import why_not_servable
    from clonebench.instruments.speakers import ENCODER

    out = Path(out) if out else default_out(db, speaker)
    with Store(db, read_only=True) as store:
        known = store.speaker(speaker)
        if known is None:
            raise UserError(f"speaker {speaker!r} is not in {db} (vet their recordings first)")
        lang = known.lang
        enrol = store.enrolment(speaker)
        given_prompt = store.speaker_prompt(speaker)
        views = store.clip_views(speaker)
        ids = [v.clip.clip_id for v in views]
        metrics = store.metrics_for(ids)
        texts = store.clip_transcripts(ids)
        words = store.words(ids)
        # the encoder of the newest vetting (the timbre-library entry it wrote), Resemblyzer by default
        encoder = store.newest_encoder(speaker) or ENCODER
        vectors, _ = store.embeddings(ids, encoder)
        # the thresholds that made the verdicts shown; today's built-in ones for a store that predates them
        rules = (RuleSet.stored(store, enrol.rule_set) if enrol else None) or RuleSet.load().for_encoder(encoder)
        undone = store.undone_reviews()
        reviews = [{"at": r.made_at, "reviewer": r.reviewer, "clip_id": r.clip_id, "what": describe(r), "source": r.source,
                    "taken_back": r.review_id in undone} for r in store.reviews(speaker=speaker)]

    rows = []
    for v in views:
        c = v.clip
        m = {**metrics[c.clip_id], "duration_s": c.duration_s}
        m["rate"] = rate_of(m)  # the rate the verdict judged: articulation rate, or the older speaking rate
        given = texts.get((c.clip_id, GIVEN))
        asr = texts[(c.clip_id, ASR)].text if (c.clip_id, ASR) in texts else ""
        rows.append({
            "clip_id": c.clip_id, "source": v.source, "start_s": c.start_s, "end_s": c.end_s,
            "path_16k": c.path_16k, "path_32k": c.path_32k, "duration_s": c.duration_s,
            "status": v.status or "pending", "reasons": list(v.reasons), "flags": list(v.flags), "metrics": m,
            "decided_by": v.review.status_by if v.review and v.review.status else None,
            "machine": verdict_text(v.machine_status, v.machine_reasons), "conflict": v.conflict,
            "reviewed_text": v.text if v.text_kind == REVIEWED else None,
            "text_by": v.review.text_by if v.review else None,
            "src": audio_src(c.path_32k, out.parent, embed_audio) if Path(c.path_32k).exists() else None,
            "wave": None, "spec": None,
            "words": [{"text": w.word, "low": (w.probability or 0) < LOW_CONFIDENCE} for w in words[c.clip_id]]
                     or [{"text": t, "low": False} for t in asr.split()],
            "diff": word_diff(given.text, asr, lang) if given else None, "given": given.text if given else None,
            "alignment": given.alignment_score if given else None,
        })
        try:
            x16, _ = audio.read_wav(c.path_16k)
            rows[-1]["wave"], rows[-1]["spec"] = plots.waveform_svg(x16), plots.spectrogram_png(x16)
        except (OSError, RuntimeError):
            pass  # a clip file removed since vetting: the row stays, without thumbnails

    charts = []
    for name, title, keys in DISTRIBUTIONS:
        by_status = {"accepted": [], "rejected": []}
        for r in rows:
            by_status.setdefault(r["status"], []).append(r["metrics"].get(name))
        if any(v is not None for vals in by_status.values() for v in vals):
            charts.append(plots.histogram(by_status, title, _thresholds(rules, keys, lang)))

    emb_map = None
    with_vec = [r for r in rows if r["clip_id"] in vectors]
    if len(with_vec) >= 3:
        pts, mean, comps = plots.pca_2d(np.stack([vectors[r["clip_id"]] for r in with_vec]))
        accepted = [vectors[r["clip_id"]] for r in with_vec if r["status"] == "accepted"]
        centre = (np.mean(accepted, axis=0) - mean) @ comps.T if accepted else None
        emb_map = plots.embedding_map(pts, [r["status"] for r in with_vec],
                                      [bool(FOREIGN & set(r["reasons"])) for r in with_vec], centre)

    advice = enrol.advice if enrol else []
    reason_names = {k: v[0] for k, v in {**ADVICE, **FLAGS}.items()}
    why_not = why_not_servable(speaker, enrol.status if enrol else "not decided", lang, given_prompt)
    return render("speaker.html.j2", out, speaker=speaker, lang=lang, enrolment=enrol, advice=advice, clips=rows,
                  why_not_served=why_not, given_prompt=given_prompt, reviews=reviews,
                  charts=charts, emb_map=emb_map, table_metrics=TABLE_METRICS, reason_names=reason_names,
                  goal_s=rules.enrolment.min_accepted_s, rule_set=rules.version)


def _thresholds(rules, keys: list[str], lang: str) -> list[float]:
    out = []
    for k in keys:
        if k == "rate":
            out += list(rules.rate_bounds(lang))
        else:
            out.append(float(getattr(rules.clip, k)))
    return out


def word_diff(given: str, asr: str, lang: str) -> list[dict]:
    """Word diff of the normalized given transcript against the ASR text:
    [{"op": "equal"|"del"|"ins", "text"}], del = in the given text only, ins = heard only."""
    a, b = textnorm.tokens(given, lang), textnorm.tokens(asr, lang)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append({"op": "equal", "text": " ".join(a[i1:i2])})
            continue
        if i2 > i1:
            out.append({"op": "del", "text": " ".join(a[i1:i2])})
        if j2 > j1:
            out.append({"op": "ins", "text": " ".join(b[j1:j2])})
    return out
