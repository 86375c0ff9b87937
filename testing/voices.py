"""Synthetic voices in many languages, from Debian's speech packages: espeak-ng's own voices,
the MBROLA diphone voices (read through espeak-ng), Festival's voices and SVOX Pico.

They give the screens one-voice and two-voice speech in languages no real recording here covers.
`LANG_SPLIT` says which languages may be used to train the scene classifier and set thresholds
("tune") and which are only ever scored ("held"): a held language is never heard in training.

Voices whose package is not installed are skipped by `available()`; `make setup` installs the
ones the tests use, `scripts/setup-system.sh --voices` all of them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from clonebench.core.errors import UserError

from . import corpus, degrade

SR = 16000

TUNE_LANGS = ("en", "de", "nl", "pt", "pl", "cs", "fi", "sv", "tr", "hu", "ro", "el", "hi", "id", "hr", "ca",
              "ja", "af", "et", "lt")
HELD_LANGS = ("fr", "it", "ru", "es", "zh", "ko")
LANG_SPLIT = {**{lang: "tune" for lang in TUNE_LANGS}, **{lang: "held" for lang in HELD_LANGS}}


@dataclass(frozen=True)
class Voice:
    engine: str  # 'espeak' | 'mbrola' | 'festival' | 'pico'
    name: str  # the engine's own name: espeak voice, 'mb-it3', Festival's voice_* command, Pico's locale
    lang: str  # ISO 639-1: which phrasebook sentences it reads
    encoding: str = "utf-8"  # Festival's diphone voices read Latin-1 or Latin-2 text

    @property
    def label(self) -> str:
        return f"{self.engine}:{self.name}"


def _espeak(lang: str, *names: str) -> list[Voice]:
    return [Voice("espeak", n, lang) for n in names]


def _mbrola(lang: str, *names: str) -> list[Voice]:
    return [Voice("mbrola", f"mb-{n}", lang) for n in names]


VOICES: tuple[Voice, ...] = tuple(
    _espeak("en", "en-us+m3", "en-gb-x-rp+f3", "en+m7", "en-gb-scotland+f2", "en-029+f5", "en-us-nyc+m4")
    + _espeak("fr", "fr-fr+m1", "fr-be+f4", "fr+f2") + _espeak("de", "de+m2", "de+f3") + _espeak("nl", "nl+m1")
    + _espeak("pt", "pt+f1", "pt-br+m3") + _espeak("pl", "pl+m4") + _espeak("cs", "cs+f2") + _espeak("fi", "fi+m1")
    + _espeak("sv", "sv+f4") + _espeak("tr", "tr+m2") + _espeak("hu", "hu+f1") + _espeak("ro", "ro+m3")
    + _espeak("el", "el+f2") + _espeak("hi", "hi+m1") + _espeak("id", "id+f3") + _espeak("hr", "hr+m5")
    + _espeak("ca", "ca+f1") + _espeak("ja", "ja+m2") + _espeak("af", "af+f2") + _espeak("et", "et+m1")
    + _espeak("lt", "lt+f4")
    + _espeak("it", "it+m1", "it+f3") + _espeak("ru", "ru+m2", "ru+f2") + _espeak("es", "es+m3", "es-419+f1")
    + _espeak("zh", "cmn-latn-pinyin+m1", "cmn-latn-pinyin+f2") + _espeak("ko", "ko+m1")
    + _mbrola("en", "us1", "us3") + _mbrola("fr", "fr1", "fr4") + _mbrola("de", "de1", "de2", "de6")
    + _mbrola("nl", "nl2", "nl3") + _mbrola("pt", "br1", "br4", "pt1") + _mbrola("pl", "pl1") + _mbrola("cs", "cz2")
    + _mbrola("sv", "sw1", "sw2") + _mbrola("tr", "tr1", "tr2") + _mbrola("hu", "hu1") + _mbrola("ro", "ro1")
    + _mbrola("el", "gr2") + _mbrola("hi", "in1", "in2") + _mbrola("id", "id1") + _mbrola("hr", "cr1")
    + _mbrola("af", "af1") + _mbrola("et", "ee1") + _mbrola("lt", "lt1") + _mbrola("ja", "jp2")
    + _mbrola("it", "it3", "it4") + _mbrola("es", "es1", "es3", "mx2", "vz1")
    + [Voice("festival", "voice_cmu_us_slt_arctic_hts", "en"), Voice("festival", "voice_kal_diphone", "en"),
       Voice("festival", "voice_czech_dita", "cs", "iso-8859-2"), Voice("festival", "voice_czech_machac", "cs", "iso-8859-2"),
       Voice("festival", "voice_suo_fi_lj_diphone", "fi", "latin-1"), Voice("festival", "voice_hy_fi_mv_diphone", "fi", "latin-1"),
       Voice("festival", "voice_upc_ca_ona_hts", "ca"),
       Voice("festival", "voice_lp_diphone", "it", "latin-1"), Voice("festival", "voice_pc_diphone", "it", "latin-1"),
       Voice("festival", "voice_msu_ru_nsh_clunits", "ru")]
    + [Voice("pico", "en-US", "en"), Voice("pico", "en-GB", "en"), Voice("pico", "de-DE", "de"), Voice("pico", "fr-FR", "fr"),
       Voice("pico", "es-ES", "es"), Voice("pico", "it-IT", "it")]
)


def voices(split: str | None = None, lang: str | None = None) -> list[Voice]:
    """The voices of one split ('tune' or 'held') and/or one language that are installed here."""
    return [v for v in VOICES if (split is None or LANG_SPLIT[v.lang] == split) and (lang is None or v.lang == lang)
            and available(v)]


@lru_cache(maxsize=None)
def available(voice: Voice) -> bool:
    """Whether the voice's Debian package is installed (a one-word probe synthesis succeeds)."""
    try:
        return len(speak(voice, "1")) > 0
    except (UserError, subprocess.CalledProcessError, OSError, RuntimeError):
        return False


def speak(voice: Voice, text: str, speed: float = 1.0) -> np.ndarray:
    """`text` read by `voice`, 16 kHz mono float32 at peak 0.5. `speed` scales the reading rate."""
    if voice.engine in ("espeak", "mbrola"):  # MBROLA voices are driven by espeak-ng
        if voice.lang == "zh":  # espeak-ng reads Chinese characters as English letters; it reads pinyin
            text = _pinyin(text)
        x = corpus.espeak(text, voice.name, speed_wpm=int(160 * speed))
    elif voice.engine in ("festival", "pico"):
        x = _synthesize_file(voice, text, speed)
    else:
        raise ValueError(f"unknown engine {voice.engine!r}")
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (0.5 / peak)).astype(np.float32) if peak > 0 else x


def _synthesize_file(voice: Voice, text: str, speed: float) -> np.ndarray:
    """Festival or Pico: each writes a WAV file, read back at 16 kHz."""
    from clonebench.core.audio import decode, resample

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tts.wav"
        if voice.engine == "festival":
            src = Path(tmp) / "text.txt"
            src.write_bytes(text.encode(voice.encoding, errors="replace"))
            stretch = f"(Parameter.set 'Duration_Stretch {1 / speed:.3f})"
            subprocess.run([_exe("text2wave"), "-eval", f"({voice.name})", "-eval", stretch, str(src), "-o", str(out)],
                           check=True, capture_output=True)
        else:
            subprocess.run([_exe("pico2wave"), "-l", voice.name, "-w", str(out), text], check=True, capture_output=True)
        if not out.exists() or out.stat().st_size < 100:
            raise RuntimeError(f"{voice.label} wrote no audio")
        audio = decode(out)
    x = resample(audio.samples, audio.sample_rate, SR)
    if voice.engine == "pico" and speed != 1.0:  # Pico has no rate setting
        x = degrade.time_stretch(x, SR, speed)
    return x


def _pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3)).replace("。", ",").replace("，", ",").replace("、", ",")


def _exe(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise UserError(f"{name} is not installed (scripts/setup-system.sh --voices installs it)")
    return exe
