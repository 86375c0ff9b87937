"""The vetting screens on clean speech in Japanese, Korean and Cantonese: espeak-ng's voices, which
no screen was tuned on (a held-out check), read the front-end fixture sentences.

    python benchmarks/bench_languages.py [--clips 12] [--langs ja,ko,yue]

Per language, one speaker of `--clips` files, each one sentence of `tests/fixtures/frontend`
(Japanese as Open JTalk's katakana reading, since espeak-ng reads kana but not kanji), its text
given, vetted with the language's code. Every clip is one clean voice, so each rejection is a
screen's error on that language: printed are the share accepted and every reason's count (scene,
speaking rate, transcript reliability, language), with the rate each clip was measured at.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.core import audio  # noqa: E402
from clonebench.curate.vet import VetOptions, vet  # noqa: E402
from clonebench.testing import corpus  # noqa: E402

VOICES = {"ja": "ja", "ko": "ko", "yue": "yue"}
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "frontend"


def spoken_text(text: str, lang: str) -> str:
    if lang != "ja":
        return text
    import pyopenjtalk

    return pyopenjtalk.g2p(text, kana=True)


def store_heard(db: Path, speaker: str) -> list[tuple[str, str, float | None]]:
    """(given text, what Whisper heard, the character error rate) for the speaker's clips."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            """SELECT g.text, a.text, round(m.value, 2) FROM clips c
               JOIN transcripts g ON g.clip_id = c.clip_id AND g.kind = 'given'
               JOIN transcripts a ON a.clip_id = c.clip_id AND a.kind = 'asr'
               LEFT JOIN metrics m ON m.clip_id = c.clip_id AND m.name = 'transcript_cer'
               WHERE c.speaker = ? ORDER BY c.clip_id""", [speaker]).fetchall()
    finally:
        con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=12)
    ap.add_argument("--langs", default="ja,ko,yue")
    args = ap.parse_args()
    print(f"{'lang':<5} {'clips':>5} {'accepted':>8}  reasons (clips)                      rate min-median-max")
    with tempfile.TemporaryDirectory() as tmp:
        for lang in args.langs.split(","):
            sentences = (FIXTURES / f"sentences_{lang}.txt").read_text(encoding="utf-8").splitlines()
            # every fifth sentence: a spread over numbers, dates and plain speech
            chosen = [s for s in sentences[::5] if s.strip()][: args.clips]
            folder = Path(tmp) / lang
            lines = []
            for k, text in enumerate(chosen):
                x = corpus.espeak(spoken_text(text, lang), VOICES[lang])
                pad = np.zeros(int(0.3 * corpus.SR), np.float32)
                audio.write_wav(folder / f"{lang}{k:02d}.wav", np.concatenate([pad, x, pad]), corpus.SR)
                lines.append(f"{lang}{k:02d}.wav\t{text}")
            (folder / "texts.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
            result = vet(VetOptions(speaker=f"espeak_{lang}", db=Path(tmp) / "store.duckdb", lang=lang,
                                    inputs=[folder], transcripts=folder / "texts.tsv"))
            reasons = Counter(r for c in result.clips for r in c.reasons)
            accepted = sum(c.status == "accepted" for c in result.clips)
            rates = sorted(c.metrics.get("articulation_rate") or 0.0 for c in result.clips)
            print(f"{lang:<5} {len(result.clips):>5} {accepted / len(result.clips):>8.0%}  "
                  f"{', '.join(f'{r} {n}' for r, n in reasons.most_common()) or 'none':<36} "
                  f"{rates[0]:.1f}-{rates[len(rates) // 2]:.1f}-{rates[-1]:.1f}")
            heard = store_heard(Path(tmp) / "store.duckdb", f"espeak_{lang}")
            for given, asr, cer in heard[:3]:
                print(f"      given {given!r}  heard {asr!r}  CER {cer}")


if __name__ == "__main__":
    main()
