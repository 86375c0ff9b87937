"""Vetting screens on labelled mixtures: is each defect rejected for the right reason, and is
one voice alone accepted in every language?

    .venv/bin/python benchmarks/bench_screens.py [--pool tune|held|both|none] [--per-condition 8] [--clean 12]
        [--languages held|tune|none] [--talkers 4] [--natural LANG:DIR] [--keep DIR]

For each pool of `testing.mixtures` (TUNE: English Allison and the voices and music the screens
were tuned on; HELD: French June and voices, languages and music they never saw), one speaker is
vetted with `--clean` clean files and `--per-condition` files of every defect, one item per file,
as a user would vet them. A clip counts as caught only when it is rejected with the defect's own
reason (`RIGHT_REASON`); "first" counts those whose advice leads with it. Prints, per pool:
detection per condition, clean acceptance, `music` on voice-only mixtures and the confusion
between conditions and reasons. With --keep, the stores and audio stay in DIR, and a second run
only re-decides (the screens' figures are kept in the store).

`--languages held` then vets, for each held language (`testing.voices.HELD_LANGS`, never used to
train the scene classifier or set a threshold), up to `--talkers` of its voices, each as a speaker
with 8 clips alone and 4 with a second voice (same language and another in turn), and prints per
language: one voice accepted, rejected as `multiple_speakers`, flagged `possible_second_voice`,
and two voices caught. `--natural zh:DIR` does the same with a folder of one language's recordings
(WAV files; a `manifest.tsv` with file and speaker columns groups them by voice).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.core import audio  # noqa: E402
from clonebench.curate.vet import VetOptions, vet  # noqa: E402
from clonebench.testing import degrade, mixtures, multilingual, voices  # noqa: E402
from clonebench.testing.demo_corpus import write_audio  # noqa: E402

RIGHT_REASON = {
    "overlap": "multiple_speakers", "babble": "noise", "music": "music", "noise": "noise", "slow": "too_slow",
    "fast": "too_fast", "reverb": "reverb", "clipping": "clipping", "telephone": "low_bandwidth",
}
VOICE_ONLY = ("clean", "overlap", "babble", "slow", "fast", "reverb", "clipping", "telephone")


def build(pool: mixtures.Pool, folder: Path, clean: int, per_condition: int) -> dict[str, str]:
    """Write the pool's files (unless there already); returns file stem -> condition."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = {}
    for condition in mixtures.CONDITIONS:
        for i in range(clean if condition == "clean" else per_condition):
            stem = f"{condition}_{i:02d}"
            labels[stem] = condition
            if not (folder / f"{stem}.wav").exists():
                item = mixtures.make(pool, condition, i)
                write_audio(folder / f"{stem}.wav", item.audio)
                (folder / f"{stem}.recipe").write_text(item.recipe + "\n")
    return labels


def score(pool: mixtures.Pool, root: Path, clean: int, per_condition: int) -> None:
    folder = root / pool.name
    labels = build(pool, folder, clean, per_condition)
    t = time.perf_counter()
    doc = vet(VetOptions(speaker=pool.name, db=root / f"{pool.name}.duckdb", lang=pool.main, inputs=[folder])).to_json()
    took = time.perf_counter() - t
    caught, first, music_on_voices = defaultdict(list), defaultdict(list), []
    confusion: dict[str, Counter] = defaultdict(Counter)
    misses = []
    for c in doc["clips"]:
        stem = Path(c["source"]).stem
        condition = labels[stem]
        reasons = c["reasons"]
        confusion[condition].update(reasons or ["accepted"])
        if condition in VOICE_ONLY:
            music_on_voices.append("music" in reasons)
        if condition == "clean":
            caught["clean"].append(not reasons)
            if reasons:
                misses.append(f"{stem}: clean, rejected for {reasons}")
            continue
        right = RIGHT_REASON[condition]
        caught[condition].append(right in reasons)
        first[condition].append(bool(reasons) and reasons[0] == right)
        if right not in reasons:
            recipe = (folder / f"{stem}.recipe").read_text().strip()
            misses.append(f"{stem}: {recipe} -> {reasons or 'accepted'}")
    print(f"\n== pool {pool.name}: {pool.main} main voice, {len(doc['clips'])} clips, vetted in {took:.0f} s")
    print(f"{'condition':<11} {'right reason':>13} {'first':>7}")
    for condition in mixtures.CONDITIONS:
        hits = caught[condition]
        line = f"{condition:<11} {sum(hits):>4}/{len(hits):<3} {sum(hits) / max(1, len(hits)):5.2f}"
        if condition != "clean":
            line += f" {sum(first[condition]):>3}/{len(first[condition])}"
        print(line + ("   (accepted)" if condition == "clean" else f"   ({RIGHT_REASON[condition]})"))
    print(f"music on voice-only mixtures: {sum(music_on_voices)}/{len(music_on_voices)} = "
          f"{sum(music_on_voices) / max(1, len(music_on_voices)):.3f}")
    print("confusion (condition: reason counts over its clips):")
    for condition in mixtures.CONDITIONS:
        print(f"  {condition:<10} " + ", ".join(f"{r} {n}" for r, n in confusion[condition].most_common()))
    for m in misses:
        print(f"  miss {m}")


ALONE, TWO = 8, 4  # clips per talker in the language part


def vet_talker(root: Path, name: str, lang: str, clips: dict[str, tuple[str, np.ndarray]]) -> list[tuple[str, dict]]:
    """Vet one talker's clips (stem -> (condition, audio)) as one speaker; (condition, clip) pairs."""
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (_, x) in clips.items():
        if not (folder / f"{stem}.wav").exists():
            write_audio(folder / f"{stem}.wav", x)
    doc = vet(VetOptions(speaker=name, db=root / "languages.duckdb", lang=lang, inputs=[folder])).to_json()
    return [(clips[Path(c["source"]).stem][0], c) for c in doc["clips"]]


def language_rows(results: dict[str, list[tuple[str, dict]]]) -> None:
    print(f"{'language':<10} {'talkers':>7} {'alone accepted':>15} {'alone multi':>12} {'alone flagged':>14} "
          f"{'two caught':>11} {'two flagged':>12}")
    for lang, pairs in results.items():
        alone = [c for cond, c in pairs if cond == "clean"]
        two = [c for cond, c in pairs if cond == "overlap"]
        ok = sum(c["status"] == "accepted" for c in alone)
        multi = sum("multiple_speakers" in c["reasons"] for c in alone)
        flagged = sum("possible_second_voice" in c["flags"] for c in alone)
        caught = sum("multiple_speakers" in c["reasons"] for c in two)
        two_flagged = sum("possible_second_voice" in c["flags"] for c in two)
        talkers = len({c["source"].split("/")[-2] for _, c in pairs})
        print(f"{lang:<10} {talkers:>7} {ok:>5}/{len(alone):<3} {ok / max(1, len(alone)):5.2f} {multi:>12} {flagged:>14} "
              f"{caught:>4}/{len(two):<2} {caught / max(1, len(two)):4.2f} {two_flagged:>12}")
    for lang, pairs in results.items():
        for cond, c in pairs:
            if (cond == "clean" and c["status"] != "accepted") or (cond == "overlap" and "multiple_speakers" not in c["reasons"]):
                print(f"  {lang} {cond}: {c['source'].split('/')[-2]}/{Path(c['source']).name} -> "
                      f"{c['reasons'] or 'accepted'} {c['flags'] or ''}")


def score_languages(split: str, root: Path, per_lang: int) -> None:
    talkers = multilingual.talkers(split)
    langs = voices.HELD_LANGS if split == "held" else voices.TUNE_LANGS
    results: dict[str, list] = {}
    t = time.perf_counter()
    for lang in langs:
        # round-robin over the engines, so a language's few talkers are as different as they can be
        by_engine: dict[str, list] = {}
        for k in talkers:
            if k.lang == lang:
                by_engine.setdefault(k.label.split(":")[0], []).append(k)
        mine = [k for row in itertools.zip_longest(*by_engine.values()) for k in row if k is not None]
        for talker in mine[:per_lang]:
            clips = {f"alone_{i:02d}": ("clean", multilingual.make(talker, "clean", 2 * i, talkers).audio) for i in range(ALONE)}
            clips.update({f"two_{i:02d}": ("overlap", multilingual.make(talker, "overlap", 2 * i + 1, talkers).audio)
                          for i in range(TWO)})
            name = talker.label.replace(":", "_").replace("+", "_")
            results.setdefault(lang, []).extend(vet_talker(root / f"languages-{split}", name, lang, clips))
    print(f"\n== {split} languages, {len(talkers)} talkers installed, vetted in {time.perf_counter() - t:.0f} s")
    language_rows(results)


def score_natural(spec: str, root: Path) -> None:
    """A folder of one language's recordings: each voice alone, and mixed with the folder's others."""
    lang, folder = spec.split(":", 1)
    folder = Path(folder)
    manifest = folder / "manifest.tsv"
    speaker_of = {}
    if manifest.exists():
        for line in manifest.read_text(encoding="utf-8").splitlines()[1:]:
            cols = line.split("\t")
            speaker_of[cols[0]] = cols[2]
    files = sorted(folder.glob("*.wav"))
    by_voice: dict[str, list[np.ndarray]] = {}
    for f in files:
        by_voice.setdefault(speaker_of.get(f.name, f.stem), []).append(audio.read_wav(f)[0])
    rng = np.random.default_rng(0)
    results: dict[str, list] = {}
    for voice, xs in by_voice.items():
        others = [x for v, ys in by_voice.items() if v != voice for x in ys]
        clips = {f"alone_{i:02d}": ("clean", x) for i, x in enumerate(xs)}
        for i, x in enumerate(xs[:max(2, len(xs) // 2)] if others else []):
            other = others[int(rng.integers(len(others)))]
            other = np.resize(other, len(x))
            clips[f"two_{i:02d}"] = ("overlap", degrade.mix_at_snr(x, other, (0.0, 5.0)[i % 2]))
        results.setdefault(f"{lang} (natural)", []).extend(vet_talker(root / f"natural-{lang}", f"natural_{voice}", lang, clips))
    print(f"\n== natural {lang} recordings from {folder}: {len(files)} files, {len(by_voice)} voices")
    language_rows(results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=("tune", "held", "both", "none"), default="both")
    ap.add_argument("--per-condition", type=int, default=8)
    ap.add_argument("--clean", type=int, default=12)
    ap.add_argument("--languages", choices=("held", "tune", "none"), default="held")
    ap.add_argument("--talkers", type=int, default=4, help="voices per language")
    ap.add_argument("--natural", action="append", default=[], metavar="LANG:DIR")
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-screens-"))
    pools = {"tune": [mixtures.TUNE], "held": [mixtures.HELD], "both": [mixtures.TUNE, mixtures.HELD], "none": []}[args.pool]
    for pool in pools:
        score(pool, root, args.clean, args.per_condition)
    if args.languages != "none":
        score_languages(args.languages, root, args.talkers)
    for spec in args.natural:
        score_natural(spec, root)


if __name__ == "__main__":
    main()
