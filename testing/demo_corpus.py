"""The demo corpus: real speech from Debian's Asterisk prompts, plus deliberately bad takes.

datasets/demo/
  allison/   English, ~90 s of clean prompts in one long recording, plus six degraded takes
             (noise, music, echo, fast speech, clipping, telephone band) in several formats,
             and one French clip by someone else (a speaker mismatch)
  june/      French, ~90 s as separate files: 44.1 kHz stereo 24-bit wav, with a transcript TSV
  eve/       an espeak-ng English voice with only ~35 s: not enough to enrol
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from clonebench.core.audio import encode, resample

from . import corpus, degrade

log = logging.getLogger(__name__)
SR = corpus.SR

EVE_LINES = [
    "Thank you for calling. Your call is important to us, please stay on the line.",
    "The quick brown fox jumps over the lazy dog near the quiet river bank.",
    "Please enter your account number, followed by the pound key, to continue.",
    "Our offices are open from nine in the morning until five in the evening.",
    "If you know the extension of the person you are calling, dial it now.",
    "To hear these options again, please stay on the line or press star.",
]


def write_audio(path: Path, x: np.ndarray, sr: int = SR, **kwargs) -> None:
    """Write any format by extension (`clonebench.audio.encode`; wav/flac keep `subtype`), atomically."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".tmp-" + path.name)
    if path.suffix in (".wav", ".flac"):
        sf.write(str(tmp), x, sr, format=path.suffix[1:].upper(), **kwargs)
    else:
        tmp.write_bytes(encode(x, sr, {".mp3": "mp3", ".m4a": "m4a", ".ogg": "opus"}[path.suffix]))
    tmp.replace(path)


def build_demo(root: Path) -> dict[str, dict]:
    """Write the demo corpus under root/demo; returns {speaker: {"dir", "lang", "transcripts"}}."""
    demo = root / "demo"
    done = demo / ".complete"
    speakers = {
        "allison": {"dir": demo / "allison", "lang": "en", "transcripts": None},
        "june": {"dir": demo / "june", "lang": "fr", "transcripts": demo / "june" / "transcripts.tsv"},
        "eve": {"dir": demo / "eve", "lang": "en", "transcripts": None},
    }
    if done.exists():
        return speakers
    en, fr = corpus.prompts("en"), corpus.prompts("fr")

    # allison: one long clean session, then six short bad takes
    _, clean = corpus.take_seconds(en, 90)
    write_audio(demo / "allison" / "session1.wav", corpus.join(clean))
    _, extra = corpus.take_seconds(en, 60, start=len(clean) + 5)
    takes = [extra[i : i + 2] for i in range(0, 12, 2)]
    music = corpus.music(30, index=3)
    bad = {
        "noisy_street.wav": lambda x: degrade.add_white_noise(x, 0, seed=1),
        "radio_on.flac": lambda x: degrade.mix_at_snr(x, music, 5),
        "bathroom.ogg": lambda x: degrade.add_reverb(x, SR, 1.0, seed=2),
        "rushed.mp3": lambda x: degrade.time_stretch(x, SR, 1.8),
        "too_hot.wav": lambda x: degrade.hard_clip(x, 14),
        "phone_call.m4a": lambda x: degrade.telephone_band(x, SR),
    }
    for (name, fn), parts in zip(bad.items(), takes):
        write_audio(demo / "allison" / "takes" / name, fn(corpus.join(parts, gap_s=0.4)))
    _, june_clip = corpus.take_seconds(fr, 6, start=40)
    write_audio(demo / "allison" / "takes" / "borrowed_mic.wav", corpus.join(june_clip, gap_s=0.3))

    # june: separate files, 44.1 kHz stereo 24-bit, with a transcript file
    long_fr = [p for p in fr if len(p.text.split()) >= 7]  # whole sentences, mostly over 3 s
    chosen, audio = corpus.take_seconds(long_fr, 90)
    lines = []
    for p, x in zip(chosen, audio):
        y = resample(x, SR, 44100)
        write_audio(demo / "june" / f"{p.name}.wav", np.stack([y, 0.9 * y], axis=1), 44100, subtype="PCM_24")
        lines.append(f"{p.name}\t{p.text}")
    (demo / "june" / "transcripts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # eve: a synthetic voice with too little audio
    write_audio(demo / "eve" / "eve.wav", corpus.join([corpus.espeak(t, "en+f3") for t in EVE_LINES]))
    done.write_text("ok\n")
    return speakers
