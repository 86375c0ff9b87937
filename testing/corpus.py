"""Real speech from Debian's Asterisk prompt packages: the source of the demo and the test data.

Two real studio voices: English (Allison) and French (June), 16 kHz G.722, with transcripts.
espeak-ng adds synthetic English and French voices. Only English and French are used.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clonebench.core.errors import UserError

SOUNDS = Path("/usr/share/asterisk/sounds")
TRANSCRIPTS = {
    "en": Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"),
    "fr": Path("/usr/share/doc/asterisk-core-sounds-fr/core-sounds-fr.txt.gz"),
}
MUSIC_DIR = Path("/usr/share/asterisk/moh")
SR = 16000


@dataclass(frozen=True)
class Prompt:
    name: str
    lang: str
    path: Path
    text: str


def _transcripts(lang: str) -> dict[str, str]:
    path = TRANSCRIPTS[lang]
    if not path.exists():
        raise UserError(f"{path} is missing: install asterisk-core-sounds-{lang} (make setup does)")
    out = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            name, sep, text = line.partition(":")
            if sep and not line.startswith(";") and re.fullmatch(r"[\w-]+", name.strip()):
                out[name.strip()] = text.strip()
    return out


def prompts(lang: str, min_words: int = 4) -> list[Prompt]:
    """Spoken prompts with a usable transcript (no tones, no bracketed notes), sorted by name."""
    folder = SOUNDS / lang
    if not folder.exists():
        raise UserError(f"{folder} is missing: install asterisk-core-sounds-{lang}-g722 (make setup does)")
    texts = _transcripts(lang)
    out = []
    for path in sorted(folder.glob("*.g722")):
        text = texts.get(path.stem, "")
        if text and "[" not in text and len(text.split()) >= min_words:
            out.append(Prompt(path.stem, lang, path, text))
    return out


def load_prompt(prompt: Prompt) -> np.ndarray:
    """Decode a G.722 prompt to 16 kHz mono float32 (raw G.722 has no header: name the format)."""
    import av

    with av.open(str(prompt.path), format="g722") as c:
        frames = [f.to_ndarray().reshape(-1) for f in c.decode(c.streams.audio[0])]
    return (np.concatenate(frames).astype(np.float32) / 32768.0)


def join(parts: list[np.ndarray], gap_s: float = 0.7, sr: int = SR) -> np.ndarray:
    """Concatenate utterances with pauses, as one long recording."""
    gap = np.zeros(int(gap_s * sr), np.float32)
    out = [gap]
    for p in parts:
        out += [p, gap]
    return np.concatenate(out)


def take_seconds(items: list[Prompt], seconds: float, start: int = 0) -> tuple[list[Prompt], list[np.ndarray]]:
    """Prompts from `start` on until their audio adds up to `seconds`."""
    chosen, audio, total = [], [], 0.0
    for p in items[start:]:
        x = load_prompt(p)
        if len(x) / SR > 14.0:  # keep single prompts under the clip maximum
            continue
        chosen.append(p)
        audio.append(x)
        total += len(x) / SR
        if total >= seconds:
            break
    return chosen, audio


def espeak(text: str, voice: str, speed_wpm: int = 160) -> np.ndarray:
    """Synthesize with espeak-ng (Debian package) and return 16 kHz mono float32."""
    from clonebench.core.audio import decode, resample

    exe = shutil.which("espeak-ng")
    if exe is None:
        raise UserError("espeak-ng is not installed (make setup installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tts.wav"
        subprocess.run([exe, "-v", voice, "-s", str(speed_wpm), "-w", str(out), text], check=True, capture_output=True)
        audio = decode(out)
    return resample(audio.samples, audio.sample_rate, SR)


def music(seconds: float, index: int = 0) -> np.ndarray:
    """A stretch of Asterisk's music-on-hold, 16 kHz mono."""
    from clonebench.core.audio import decode, resample

    files = sorted(MUSIC_DIR.glob("*.wav"))
    if not files:
        raise UserError(f"no music in {MUSIC_DIR}: install asterisk-moh-opsound-wav (make setup does)")
    audio = decode(files[index % len(files)])
    x = resample(audio.samples, audio.sample_rate, SR)
    start = min(len(x) // 4, max(0, len(x) - int(seconds * SR)))
    return x[start : start + int(seconds * SR)]
