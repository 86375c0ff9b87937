"""Each screen on audio where the answer is known: clean speech is accepted, each defect is
caught with its own reason code."""

from pathlib import Path

import duckdb
import pytest

from clonebench.curate.rules import REASONS
from clonebench.curate.screen import DNSMOS_BELOW_SNR_DB


def reasons_of(defect_set, stem):
    clips = defect_set["by_source"][stem]
    return {r for c in clips for r in c["reasons"]}


def test_clean_speech_is_accepted(defect_set):
    clean = [c for stem, cs in defect_set["by_source"].items() if stem.startswith("clean_") for c in cs]
    assert len(clean) >= 10
    accepted = [c for c in clean if c["status"] == "accepted"]
    # every clean clip passes; print the offenders if not
    assert len(accepted) == len(clean), [(c["source"], c["reasons"]) for c in clean if c["status"] != "accepted"]


@pytest.mark.parametrize("stem,reason", [
    ("defect_noise", "noise"),
    ("defect_music", "music"),
    ("defect_reverb", "reverb"),
    ("defect_fast", "too_fast"),
    ("defect_clipping", "clipping"),
    ("defect_bandwidth", "low_bandwidth"),
    ("defect_overlap", "multiple_speakers"),
    ("defect_babble", "noise"),
    ("defect_slow", "too_slow"),
])
def test_defect_gets_its_reason(defect_set, stem, reason):
    clips = defect_set["by_source"][stem]
    assert all(c["status"] == "rejected" for c in clips)
    assert reason in reasons_of(defect_set, stem)


@pytest.mark.parametrize("stem,reason", [
    ("defect_overlap", "multiple_speakers"), ("defect_babble", "noise"), ("defect_slow", "too_slow"),
    ("defect_music", "music"),
])
def test_the_right_reason_leads(defect_set, stem, reason):
    """Two voices also make Whisper unsure; the advice must lead with the second voice."""
    for c in defect_set["by_source"][stem]:
        assert c["reasons"][0] == reason, c["reasons"]


def test_voices_alone_are_never_music(defect_set):
    """YAMNet's music score rises on mixed voices; music needs music's own evidence."""
    for stem in ("defect_overlap", "defect_babble", "defect_two_voices", "defect_slow", "defect_fast", "defect_unintelligible"):
        assert "music" not in reasons_of(defect_set, stem), stem


def test_unintelligible_speech_is_not_accepted_and_decoding_is_bounded(defect_set):
    clips = defect_set["by_source"]["defect_unintelligible"]
    assert clips and all(c["status"] == "rejected" for c in clips)
    assert "low_asr_confidence" in reasons_of(defect_set, "defect_unintelligible")
    from clonebench.instruments.asr import MAX_TOKENS_PER_S

    for c in clips:  # whatever Whisper makes of it, its length is bounded by the audio's
        assert len(c["text"].split()) <= MAX_TOKENS_PER_S * (c["end_s"] - c["start_s"]) + 16


def test_two_voices_in_one_clip(defect_set):
    """The clip that spans the change of voice is rejected as multiple_speakers."""
    t = defect_set["boundaries"]["two_voices"]
    spanning = [c for c in defect_set["by_source"]["defect_two_voices"] if c["start_s"] + 1.0 < t < c["end_s"] - 1.0]
    assert spanning, defect_set["by_source"]["defect_two_voices"]
    for c in spanning:
        assert "multiple_speakers" in c["reasons"]


def test_reasons_come_from_the_fixed_vocabulary(defect_set):
    for c in defect_set["doc"]["clips"]:
        assert set(c["reasons"]) <= set(REASONS)


def test_json_document_shape(defect_set):
    doc = defect_set["doc"]
    assert doc["speaker"] == "alice"
    assert set(doc["enrollment"]) >= {"status", "accepted_s", "rejected_s", "advice"}
    assert doc["enrollment"]["status"] in ("ready", "insufficient")
    clip = doc["clips"][0]
    assert set(clip) >= {"source", "start_s", "end_s", "status", "reasons", "metrics", "text"}
    for key in ("snr_db", "music_prob", "music_mean", "scene_clean",
                "scene_overlap", "scene_babble", "scene_music", "scene_noise", "articulation_rate", "asr_script_share",
                "asr_repetition", "rt60_s", "speech_rate",
                "clip_ratio", "bandwidth_hz", "loudness_lufs", "silence_ratio", "duration_s", "spk_consistency",
                "asr_avg_logprob"):
        assert key in clip["metrics"], key
    assert doc["errors"] == []
    # DNSMOS runs where the background is audible, and only there
    for c in doc["clips"]:
        has_dnsmos = {"dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl"} <= set(c["metrics"])
        assert has_dnsmos == (c["metrics"]["snr_db"] < DNSMOS_BELOW_SNR_DB), c["metrics"]
    assert all("dnsmos_bak" in c["metrics"] for c in defect_set["by_source"]["defect_noise"])


def test_enrolment_totals_match_clips(defect_set):
    doc = defect_set["doc"]
    acc = sum(c["end_s"] - c["start_s"] for c in doc["clips"] if c["status"] == "accepted")
    rej = sum(c["end_s"] - c["start_s"] for c in doc["clips"] if c["status"] == "rejected")
    assert doc["enrollment"]["accepted_s"] == pytest.approx(acc, abs=0.05)
    assert doc["enrollment"]["rejected_s"] == pytest.approx(rej, abs=0.05)
    # ~10 clean clips of ~5 s are under the 60 s goal: the advice says how much is missing
    if doc["enrollment"]["status"] == "insufficient":
        assert "more of usable speech" in doc["enrollment"]["advice"][0]
    assert any("background music in 1 clip" in a for a in doc["enrollment"]["advice"])


def test_clean_transcripts_are_right(defect_set):
    from clonebench.core.textnorm import normalize
    clean = [c for stem, cs in defect_set["by_source"].items() if stem.startswith("clean_") for c in cs]
    words = " ".join(normalize(c["text"], "en") for c in clean).split()
    assert len(words) > 60  # real words came back, with clip-level text


def test_store_rows_and_view(defect_set):
    con = duckdb.connect(str(defect_set["db"]), read_only=True)
    try:
        n_clips = con.execute("SELECT count(*) FROM clips").fetchone()[0]
        assert n_clips == len(defect_set["doc"]["clips"])
        cols = [d[0] for d in con.execute("SELECT * FROM clip_verdicts LIMIT 0").description]
        assert cols == ["speaker", "source", "clip_id", "start_s", "end_s", "status", "reasons", "text", "flags",
                        "machine_status", "machine_reasons", "reviewed_by", "reviewed_at", "text_source"]
        assert con.execute("SELECT count(*) FROM clip_verdicts WHERE status IS NULL").fetchone()[0] == 0
        # nobody reviewed: the verdict that stands is the rules'
        assert con.execute("SELECT count(*) FROM clip_verdicts WHERE status IS DISTINCT FROM machine_status "
                           "OR reviewed_by IS NOT NULL OR text_source = 'reviewed'").fetchone()[0] == 0
        # provenance: every metric and transcript row names what produced it
        assert con.execute("SELECT count(*) FROM metrics WHERE producer IS NULL OR producer = ''").fetchone()[0] == 0
        assert con.execute("SELECT count(DISTINCT rule_set) FROM verdicts").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM words").fetchone()[0] > 50
        emb = con.execute("SELECT len(vector) FROM speaker_embeddings WHERE speaker = 'alice'").fetchone()
        assert emb and emb[0] == 256
        # clip caches at both rates exist
        p32, p16 = con.execute("SELECT path_32k, path_16k FROM clips LIMIT 1").fetchone()
        import soundfile as sf
        folder = defect_set["db"].parent     # the store records its clips relative to its folder
        assert sf.info(str(folder / p32)).samplerate == 32000 and sf.info(str(folder / p16)).samplerate == 16000
    finally:
        con.close()


def test_verdicts_survive_the_kernel_differences_between_cpus(defect_set):
    """The int8 YAMNet runs other kernels on other CPUs (AVX2 against VNNI or AVX-512), and its
    figures move. Recomputed with onnxruntime's fused int8 kernels, and on input dithered by one
    bit, every clip keeps its verdict and its first reason."""
    import numpy as np

    from clonebench.core import audio
    from clonebench.curate.rules import RuleSet, SpeakerContext, judge_clip
    from clonebench.instruments.scenes import SceneClassifier
    from clonebench.instruments.yamnet import YAMNet
    from clonebench.store import ASR, Store

    store = Store(defect_set["db"], read_only=True)
    try:
        clips = store.clips("alice")
        metrics = store.metrics_for([c.clip_id for c in clips])
        asr = store.transcripts("alice", ASR)
    finally:
        store.close()
    rules, ctx, scenes = RuleSet.load(), SpeakerContext("en", None, None), SceneClassifier()

    def verdict(m: dict, clip_id: str) -> tuple[bool, str | None]:
        a = asr.get(clip_id)
        j = judge_clip(m, a.language if a else None, a.language_prob if a else None, ctx, rules)
        return bool(j.reasons), j.reasons[0] if j.reasons else None

    rng = np.random.default_rng(0)
    arms = {"fused int8 kernels": (YAMNet(fused=True), 0.0), "one-bit dither": (YAMNet(), 1 / 32768)}
    changed = []
    for c in clips:
        x, _ = audio.read_wav(c.path_16k)
        before = verdict(metrics[c.clip_id], c.clip_id)
        for arm, (yamnet, dither) in arms.items():
            probs, embeddings = yamnet.run(x + dither * rng.uniform(-1, 1, len(x)).astype(np.float32))
            m = {**metrics[c.clip_id], **yamnet.screen(probs), **scenes.probabilities(embeddings)}
            if verdict(m, c.clip_id) != before:
                changed.append((Path(c.path_16k).name, arm, before, verdict(m, c.clip_id),
                                round(metrics[c.clip_id].get("scene_music") or 0, 3), round(m["scene_music"], 3)))
    assert not changed
