"""The verdicts: clip metrics in, `accepted`/`rejected` with reason codes out, under a versioned
`RuleSet` (rule_set.py holds its thresholds).

Clip rules need only the clip's own metrics. Two rules need the whole speaker: the speaking
rate relative to the speaker's usual rate, and the speaker centroid (for `speaker_mismatch` and
the centroid half of `multiple_speakers`). `SpeakerContext` holds those, computed once per
speaker before any clip is judged.

A clip keeps every reason that fired, most likely cause first (`primary_order`): two voices at
once also make Whisper unsure and can make it hear another language, so the advice a person
reads leads with the second voice, not with the language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from clonebench.store import Clip, Enrolment, Verdict

from .rule_set import RuleSet

REASONS = (
    "noise", "music", "reverb", "too_fast", "too_slow", "clipping", "low_bandwidth", "too_quiet",
    "silence", "too_short", "too_long", "multiple_speakers", "speaker_mismatch", "wrong_language",
    "low_asr_confidence", "transcript_mismatch",
)

# What to tell a person, per reason: (problem, fix).
ADVICE = {
    "noise": ("background noise or chatter", "record in a quiet room, away from other people talking, fans and traffic, closer to the microphone"),
    "music": ("background music", "re-record in a quiet room with music and TV off"),
    "reverb": ("echo or room reverb", "record in a smaller or furnished room (curtains, sofa, carpet), closer to the microphone"),
    "too_fast": ("speech too fast", "read at a relaxed, natural pace"),
    "too_slow": ("speech too slow or halting", "read at a natural pace without long hesitations"),
    "clipping": ("distortion from clipping", "lower the input gain so the loudest words stay below full scale"),
    "low_bandwidth": ("telephone-quality (narrow-band) audio", "record with a real microphone at 32 kHz or more, not over a phone line or a low-bitrate codec"),
    "too_quiet": ("audio too quiet", "raise the input gain or move closer to the microphone"),
    "silence": ("mostly silence", "check the microphone is live and trim long pauses"),
    "too_short": ("clips under the minimum length", "record whole sentences of 3-15 s"),
    "too_long": ("clips over the maximum length", "leave short pauses between sentences so they can be cut"),
    "multiple_speakers": ("a second voice", "record alone, one speaker per take"),
    "speaker_mismatch": ("a different person's voice", "check that these files belong to this speaker"),
    "wrong_language": ("speech in another language", "record in the speaker's enrolment language, or vet with --lang"),
    "low_asr_confidence": ("speech the recogniser could not read (unsure, repeating or in the wrong script)",
                           "articulate clearly, and check that --lang is the language spoken"),
    "transcript_mismatch": ("transcripts that do not match the audio", "correct the transcript file, or re-record the lines as written"),
    "other": ("clips a reviewer rejected", "read the reviewers' notes in the speaker report"),
}


# Weak evidence: the clip stays accepted, and a person is asked to listen. (problem, what to check)
FLAGS = {
    "possible_second_voice": ("a second voice may be present (the scene classifier leans that way, nothing else "
                              "confirms it)", "listen to the clip and reject it if another person speaks"),
}


@dataclass(frozen=True)
class ClipJudgement:
    """One clip's verdict before it is stored: reasons reject it, flags only ask for a listen."""
    reasons: tuple[str, ...]  # most likely cause first; empty: accepted
    flags: tuple[str, ...] = ()


@dataclass
class SpeakerContext:
    lang: str  # the expected language (resolved from the majority when vetting with 'auto')
    centroid: np.ndarray | None  # robust centroid of the speaker's clip embeddings
    rate_range: tuple[float, float] | None  # the speaker's own normal rates; None with too few clips
    nuclei_range: tuple[float, float] | None = None  # the same from the signal's syllable nuclei


def usual_rate(rates: list[float]) -> float:
    """The middle of the densest half of the rates (the shorth): a speaker's usual rate even when
    up to half the clips were read too slowly or too fast, in either direction or both."""
    r = np.sort(np.asarray(rates, float))
    h = len(r) // 2 + 1
    widths = r[h - 1 :] - r[: len(r) - h + 1]
    start = int(np.argmin(widths))
    return float(np.median(r[start : start + h]))


def rate_fence(rates: list[float | None], rules: RuleSet) -> tuple[float, float] | None:
    """The speaker's own range of articulation rates, from clips that no signal screen rejected.

    A fixed share either side of the speaker's usual rate: sentence-to-sentence variation of a
    steady reader is about +-20 % (measured), and a reading slowed to 0.7x or sped to 1.5x
    falls outside. The fence is not widened by the spread of the clips themselves: slowed or
    hurried clips in the set would widen it until it caught nothing (the previous IQR fence,
    over every clip including noisy ones whose ASR lost words, did exactly that).
    """
    rates = [r for r in rates if r is not None and np.isfinite(r) and r > 0]
    if len(rates) < rules.rate.min_clips_for_fence:
        return None
    usual = usual_rate(rates)
    return usual * rules.rate.slow_ratio, usual * rules.rate.fast_ratio


def _rate_limits(absolute: tuple[float, float], fence: tuple[float, float] | None) -> tuple[float, float]:
    lo, hi = absolute
    return (max(lo, fence[0]), min(hi, fence[1])) if fence else (lo, hi)


def _below(m: dict, key: str, limit: float) -> bool:
    v = m.get(key)
    return v is not None and v < limit


def _above(m: dict, key: str, limit: float) -> bool:
    v = m.get(key)
    return v is not None and v > limit


# Most likely cause first. Defects of the recording explain what the recogniser and the speaker
# encoder then report (low confidence, another language, a wrong transcript, another speaker,
# an odd rate from misheard syllables), so they lead.
PRIMARY_ORDER = (
    "silence", "too_short", "too_long", "clipping", "multiple_speakers", "music", "noise", "low_bandwidth", "reverb",
    "too_quiet", "speaker_mismatch", "too_fast", "too_slow", "wrong_language", "transcript_mismatch", "low_asr_confidence",
)
SCENE_REASON = {"overlap": "multiple_speakers", "babble": "noise", "music": "music", "noise": "noise"}


def _scenes(m: dict) -> dict[str, float]:
    """The scene classifier's probabilities of a clip (0 where it was not run)."""
    return {k: m.get(f"scene_{k}") or 0.0 for k in SCENE_REASON}


def primary_order(reasons: set[str], m: dict) -> list[str]:
    """Every reason, most likely cause first. Among the defects of the recording, the scene the
    classifier is surest of leads (babble is `noise` before any `multiple_speakers` from the
    embeddings; two voices lead over the low DNSMOS background score they cause)."""
    order = list(PRIMARY_ORDER)
    scenes = _scenes(m)
    for scene, _ in sorted(scenes.items(), key=lambda kv: kv[1]):  # surest scene ends up first
        reason = SCENE_REASON[scene]
        if reason in reasons and scenes[scene] >= 0.5:  # the classifier's majority, not a rule threshold
            order.remove(reason)
            order.insert(order.index("clipping") + 1, reason)
    return [x for x in order if x in reasons]


def second_voice(m: dict, rules: RuleSet, noisy: bool = False, distorted: bool = False) -> str | None:
    """'reject', 'flag' or None: the overlap decision.

    The user's overlap model (`vet --overlap`, pyannote) decides where it ran. The speaker
    embeddings' evidence holds in every language: the two halves of the clip disagree, or one
    window strays far from the speaker's centroid while the clip as a whole is the speaker's (a
    clip that is all someone else is `speaker_mismatch`). Noise, music, echo, clipping and band
    limits move a window as far, so a stray window alone counts only on a clean clip; where the scene
    classifier already leans to two voices it confirms that, unless music, echo or distortion
    explain it (noise does not: a second voice reads as noise to the blind SNR and DNSMOS).
    The classifier hears language as well as voices (its first version, trained on English
    voices, called clean Italian and Russian two voices), so on its own it rejects only when it
    is sure, and where nothing confirms it the clip is flagged for a person.
    """
    c = rules.clip
    if (_below(m, "spk_consistency", c.min_spk_consistency) or _above(m, "spk_split_gap", c.max_spk_split_gap)
            or _above(m, "overlap_s", c.max_overlap_s)
            or (not (noisy or distorted) and _below(m, "spk_window_min_cos", c.min_window_cos)
                and not _below(m, "spk_centroid_cos", c.min_centroid_cos))):
        return "reject"
    p = m.get("scene_overlap") or 0.0
    if p < c.scene_overlap:
        return None
    if m.get("overlap_s") is not None:  # the user's overlap model heard no overlap: it takes precedence
        return "flag"
    supported = (_below(m, "spk_consistency", c.overlap_support_consistency)
                 or (not distorted and _below(m, "spk_window_min_cos", c.overlap_support_window)))
    return "reject" if p >= c.scene_overlap_strong or supported else "flag"


def judge_clip(m: dict, lang_detected: str | None, lang_prob: float | None, ctx: SpeakerContext,
               rules: RuleSet) -> ClipJudgement:
    """Reason codes for one clip, most likely cause first (`primary_order`), and its flags."""
    c = rules.clip
    r: set[str] = set()
    flags: list[str] = []
    if _below(m, "duration_s", c.min_duration_s):
        r.add("too_short")
    if _above(m, "duration_s", c.max_duration_s):
        r.add("too_long")
    if _above(m, "silence_ratio", c.max_silence_ratio) or _below(m, "speech_s", c.min_speech_s):
        r.add("silence")
    if _below(m, "loudness_lufs", c.min_loudness_lufs):
        r.add("too_quiet")
    if _above(m, "clip_ratio", c.max_clip_ratio):
        r.add("clipping")
    if _below(m, "bandwidth_hz", c.min_bandwidth_hz):
        r.add("low_bandwidth")
    scene = _scenes(m)
    # Music needs music's own evidence: the scene classifier, or YAMNet's music score held over
    # the clip where the classifier does not put two voices or a crowd ahead of it. YAMNet's
    # single-patch maximum alone reads 0.3-0.8 on voices mixed together.
    if scene["music"] >= c.scene_music or (
            _above(m, "music_mean", c.music_mean) and scene["music"] >= max(scene["overlap"], scene["babble"])):
        r.add("music")
    low_bak = _below(m, "dnsmos_bak", c.min_dnsmos_bak)
    if (_below(m, "snr_db", c.min_snr_db) or (low_bak and "music" not in r)
            or scene["babble"] >= c.scene_babble or scene["noise"] >= c.scene_noise):
        r.add("noise")
    if _above(m, "rt60_s", c.max_rt60_s):
        r.add("reverb")
    overlap = second_voice(m, rules, noisy="noise" in r, distorted=bool(r & {"music", "reverb", "clipping", "low_bandwidth"}))
    if overlap == "reject":
        r.add("multiple_speakers")
    elif overlap == "flag":
        flags.append("possible_second_voice")
    # Noise, music, echo, clipping and band limits move a voice's embedding as much as a change
    # of speaker does (measured: 0.56-0.77 to the centroid); under them the voice can't be judged.
    degraded = r & {"noise", "music", "reverb", "clipping", "low_bandwidth", "multiple_speakers"}
    if _below(m, "spk_centroid_cos", c.min_centroid_cos) and not degraded:
        r.add("speaker_mismatch")
    rate = rate_of(m)
    if rate is not None and not (r & {"silence", "noise", "music", "multiple_speakers"}):
        # The transcript's rate decides; the signal's own count, where measured, must agree.
        bounds = rules.rate_bounds(ctx.lang)
        lo, hi = _rate_limits(bounds, ctx.rate_range)
        nuclei = m.get("nuclei_rate")
        n_lo, n_hi = _rate_limits(bounds, ctx.nuclei_range)
        slack = rules.rate.nuclei_slack
        if rate > hi and (nuclei is None or nuclei > n_hi / slack):
            r.add("too_fast")
        elif rate < lo and (nuclei is None or nuclei < n_lo * slack):
            r.add("too_slow")
    if lang_detected and lang_detected != ctx.lang and (lang_prob or 0.0) >= c.min_language_prob:
        r.add("wrong_language")
    no_words = m.get("asr_words") == 0 and (m.get("speech_s") or 0.0) >= c.min_speech_s
    if (_below(m, "asr_avg_logprob", c.min_avg_logprob) or no_words
            or _below(m, "asr_script_share", c.min_script_share) or _above(m, "asr_repetition", c.max_repetition)):
        r.add("low_asr_confidence")
    if _above(m, "transcript_cer", c.max_transcript_cer):
        r.add("transcript_mismatch")
    return ClipJudgement(tuple(primary_order(r, m)), tuple(flags))


def rate_of(m: dict) -> float | None:
    """Articulation rate (syllables per second of articulated speech) where measured; the older
    speaking rate over VAD speech time otherwise (stores screened before articulation time).
    None where the recogniser's words span much less than the articulated speech: it missed a
    sentence, and the syllables it did hear say nothing about the rate."""
    rate = m.get("articulation_rate")
    span, spoken = m.get("asr_span_s"), m.get("articulation_s")
    if rate is not None and span is not None and spoken and span < 0.8 * spoken:
        return None
    return rate if rate is not None else m.get("speech_rate")


def enrolment(speaker: str, clips: Sequence[Clip], verdicts: Sequence[Verdict], rules: RuleSet) -> Enrolment:
    """The speaker's verdict: `ready` with enough accepted audio, else `insufficient` with advice.

    `verdicts` are the clips' under `rules`, each clip's reasons most likely cause first.
    """
    duration = {c.clip_id: c.duration_s for c in clips}
    accepted = sum(duration[v.clip_id] for v in verdicts if v.status == "accepted")
    rejected = sum(duration[v.clip_id] for v in verdicts if v.status == "rejected")
    goal = float(rules.enrolment.min_accepted_s)
    by_reason: dict[str, list[float]] = {}
    for v in verdicts:
        if v.reasons:  # advice follows each clip's most likely cause (reasons come ordered)
            by_reason.setdefault(v.reasons[0], []).append(duration[v.clip_id])
    advice = []
    if accepted < goal:
        missing = goal - accepted
        advice.append(
            f"record about {missing:.0f} s more of usable speech (roughly {int(np.ceil(missing / 6))} sentences of 5-8 s) "
            f"to reach the {goal:.0f} s goal"
        )
    # the causes that cost the most audio first: those are the ones worth fixing
    for reason, durs in sorted(by_reason.items(), key=lambda kv: (-sum(kv[1]), kv[0])):
        problem, fix = ADVICE[reason]
        n = len(durs)
        advice.append(f"{problem} in {n} clip{'s' if n != 1 else ''} ({sum(durs):.0f} s): {fix}")
    return Enrolment(speaker, rules.version, "ready" if accepted >= goal else "insufficient", round(accepted, 2),
                     round(rejected, 2), advice)
