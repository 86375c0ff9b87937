"""The rule set: every threshold behind a verdict, one frozen record per section of `rules.toml`.

A rule file is checked whole when it loads: a value of the wrong type, a missing key or an
unknown one fails in one line naming the file, the section and the key. The store keeps each
rule set's thresholds whole (`rule_sets`), in the form `thresholds()` returns; `stored` reads
them back, including those written by older releases.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import logging
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.core.languages import LANGUAGES

log = logging.getLogger(__name__)

DEFAULT_RULES = Path(__file__).with_name("rules.toml")

# Thresholds older releases had and this one no longer reads: a user's copy of an old rule file
# may still hold them, and they are dropped with a warning rather than refused.
RETIRED = {
    "clip": {"music_prob", "music_prob_weak", "max_transcript_error"},
    "rate": {"iqr_k", "min_fence", "min_clips_for_iqr"},
}


@dataclass(frozen=True)
class ClipThresholds:
    """[clip]: what one clip's own metrics are judged against (the comments in rules.toml say why)."""
    min_duration_s: float
    max_duration_s: float
    max_silence_ratio: float
    min_speech_s: float
    min_loudness_lufs: float
    max_clip_ratio: float
    min_bandwidth_hz: float
    min_snr_db: float
    min_dnsmos_bak: float
    scene_music: float
    music_mean: float
    scene_babble: float
    scene_noise: float
    scene_overlap: float
    scene_overlap_strong: float
    max_rt60_s: float
    min_spk_consistency: float
    max_spk_split_gap: float
    min_centroid_cos: float
    min_window_cos: float
    overlap_support_consistency: float
    overlap_support_window: float
    min_clips_for_centroid: int
    max_overlap_s: float
    min_avg_logprob: float
    min_script_share: float
    max_repetition: float
    min_language_prob: float
    max_transcript_cer: float


@dataclass(frozen=True)
class SpeakerThresholds:
    """[speaker.FAMILY]: the speaker thresholds of [clip] for another encoder family's cosines."""
    min_spk_consistency: float
    max_spk_split_gap: float
    min_centroid_cos: float
    min_window_cos: float
    overlap_support_consistency: float
    overlap_support_window: float


@dataclass(frozen=True)
class RateThresholds:
    """[rate]: absolute articulation-rate bounds per language, and the speaker's own fence."""
    bounds: dict[str, tuple[float, float]]  # language code or "default" -> (low, high) syllables per second
    slow_ratio: float
    fast_ratio: float
    min_clips_for_fence: int
    nuclei_slack: float

    def table(self) -> dict:
        """The [rate] table as written: language keys, then the scalars."""
        scalars = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "bounds"}
        return {**{lang: list(b) for lang, b in self.bounds.items()}, **scalars}


@dataclass(frozen=True)
class EnrolmentThresholds:
    """[enrolment]: how much accepted audio makes a voice `ready`."""
    min_accepted_s: float


@dataclass(frozen=True)
class RuleSet:
    version: str
    clip: ClipThresholds
    rate: RateThresholds
    enrolment: EnrolmentThresholds
    speaker: dict[str, SpeakerThresholds] = field(default_factory=dict)  # encoder family -> replaces [clip]'s

    @classmethod
    def load(cls, path: Path | None = None) -> "RuleSet":
        """The built-in rules, or a user's rule file. A file copied from an older release lacks newer
        [clip] and [rate] thresholds: the built-in values fill in, with a warning naming them."""
        path = Path(path) if path else DEFAULT_RULES
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
        except OSError as e:
            raise UserError(f"{path}: cannot read the rule file ({e.strerror or type(e).__name__})") from None
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            raise UserError(f"{path}: not a TOML rule file ({e})") from None
        builtin = None if path.resolve() == DEFAULT_RULES.resolve() else _builtin_tables()
        reader = _Reader(str(path), {k: builtin[k] for k in ("clip", "rate", "speaker")} if builtin else {})
        rules = reader.rule_set(data, f"{reader.version(data)}+{hashlib.sha256(raw).hexdigest()[:8]}")
        if reader.filled:
            log.warning("%s has no %s: using the built-in value%s", path, ", ".join(reader.filled),
                        "s" * (len(reader.filled) > 1))
        if reader.retired:
            log.warning("%s: %s no longer used: ignored", path, ", ".join(reader.retired))
        return rules

    def thresholds(self) -> dict:
        """Every threshold, as the store keeps it (`rule_sets`): the tables of the rule file."""
        return {"clip": dataclasses.asdict(self.clip), "rate": self.rate.table(),
                "enrolment": dataclasses.asdict(self.enrolment),
                "speaker": {family: dataclasses.asdict(s) for family, s in self.speaker.items()}}

    @classmethod
    def stored(cls, store, version: str) -> "RuleSet | None":
        """The rule set that decided under `version` (None if the store predates rule-set storage).
        One stored by an older release may lack newer thresholds (today's built-in values stand in)
        or hold retired ones (ignored)."""
        t = store.rule_set(version)
        if not t:
            return None
        builtin = _builtin_tables()
        return _Reader(f"rule set {version} in the store", builtin, strict=False).rule_set(t, version)

    def for_encoder(self, encoder: str) -> "RuleSet":
        """The rules with the speaker thresholds of an encoder family (`[speaker.ecapa]`): cosine
        scales differ between encoders. The default encoder uses `[clip]` as written; another
        family's verdicts carry its name in the rule-set version."""
        family = re.split(r"[=:@]", encoder)[0]
        if family == "resemblyzer":
            return self
        if family not in self.speaker:
            raise UserError(f"the rule set has no [speaker.{family}] thresholds for encoder {encoder}: add them to your --rules file")
        clip = dataclasses.replace(self.clip, **dataclasses.asdict(self.speaker[family]))
        return dataclasses.replace(self, version=f"{self.version}+{family}", clip=clip)

    def rate_bounds(self, lang: str) -> tuple[float, float]:
        lo, hi = self.rate.bounds.get(lang, self.rate.bounds["default"])
        return float(lo), float(hi)


def _builtin_tables() -> dict:
    return tomllib.loads(DEFAULT_RULES.read_text(encoding="utf-8"))


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class _Reader:
    """Reads the tables of one rule file (or stored rule set) into the section records."""
    source: str                    # named first in every error: the file, or the stored rule set
    fallback: dict                 # section -> table whose values stand in for keys the source lacks
    strict: bool = True            # unknown keys fail; a stored rule set's are ignored
    filled: list[str] = field(default_factory=list)   # keys taken from `fallback`
    retired: list[str] = field(default_factory=list)  # retired keys dropped

    def fail(self, where: str, problem: str) -> UserError:
        return UserError(f"{self.source}: {where}: {problem}")

    def version(self, data: dict) -> str:
        v = data.get("version")
        if v is None:
            raise self.fail("version", "missing")
        if not isinstance(v, str):
            raise self.fail("version", f"expected a string, got {v!r}")
        return v

    def rule_set(self, data: dict, version: str) -> RuleSet:
        for key in data:
            if key not in ("version", "clip", "rate", "enrolment", "speaker", "provenance") and self.strict:
                section = isinstance(data[key], dict)
                raise self.fail(f"[{key}]" if section else key, "unknown section" if section else "unknown key")
        speaker = self.table(data.get("speaker", {}), "speaker")
        fallback = self.fallback.get("speaker", {})
        return RuleSet(
            version,
            self.record(ClipThresholds, self.section(data, "clip"), "clip"),
            self.rate(self.section(data, "rate")),
            self.record(EnrolmentThresholds, self.section(data, "enrolment"), "enrolment"),
            {family: self.record(SpeakerThresholds, self.table(t, f"speaker.{family}"), f"speaker.{family}",
                                 fallback.get(family, {}))
             for family, t in speaker.items()})

    def section(self, data: dict, name: str) -> dict:
        if name not in data and name not in self.fallback:
            raise self.fail(f"[{name}]", "missing")
        return self.table(data.get(name, {}), name)

    def table(self, t, where: str) -> dict:
        if not isinstance(t, dict):
            raise self.fail(f"[{where}]", f"expected a table, got {t!r}")
        return t

    def value(self, kind: str, v, where: str):
        if kind == "int" and not (isinstance(v, int) and not isinstance(v, bool)):
            raise self.fail(where, f"expected a whole number, got {v!r}")
        if not _is_number(v):
            raise self.fail(where, f"expected a number, got {v!r}")
        return v  # as written: the stored thresholds keep the file's own values

    def unknown(self, section: str, key: str, known: list[str], hint: str = "") -> None:
        if key in RETIRED.get(section, ()):
            self.retired.append(f"[{section}] {key}")
        elif self.strict:
            close = difflib.get_close_matches(key, known, n=1)
            raise self.fail(f"[{section}] {key}", "unknown key" + (f" (did you mean {close[0]}?)" if close else hint))

    def record(self, cls, table: dict, section: str, fallback: dict | None = None):
        """One section's record from its table, keys the table lacks taken from the fallback."""
        fallback = self.fallback.get(section, {}) if fallback is None else fallback
        names = [f.name for f in dataclasses.fields(cls)]
        for key in table:
            if key not in names:
                self.unknown(section, key, names)
        values = {}
        for f in dataclasses.fields(cls):
            if f.name in table:
                values[f.name] = self.value(f.type, table[f.name], f"[{section}] {f.name}")
            elif f.name in fallback:
                values[f.name] = fallback[f.name]
                self.filled.append(f.name)
            else:
                raise self.fail(f"[{section}] {f.name}", "missing")
        return cls(**values)

    def rate(self, table: dict) -> RateThresholds:
        """[rate] holds the scalars of `RateThresholds` and a [low, high] pair per language."""
        scalars = {f.name: f.type for f in dataclasses.fields(RateThresholds) if f.name != "bounds"}
        fallback = self.fallback.get("rate", {})
        self.filled += [k for k in fallback if k not in table]
        table = {**fallback, **table}
        bounds = {}
        for key, v in table.items():
            if key in scalars:
                continue
            if key != "default" and key not in LANGUAGES:
                self.unknown("rate", key, [*scalars, "default"], " (a language code, or default)")
            elif not (isinstance(v, list) and len(v) == 2 and all(_is_number(x) for x in v) and v[0] < v[1]):
                raise self.fail(f"[rate] {key}", f"expected [low, high] syllables per second, got {v!r}")
            else:
                bounds[key] = tuple(v)
        for key in ("default", *scalars):
            if key not in table:
                raise self.fail(f"[rate] {key}", "missing")
        return RateThresholds(bounds, **{k: self.value(kind, table[k], f"[rate] {k}") for k, kind in scalars.items()})
