"""Vetting screens on labelled mixtures: is each defect rejected for the right reason?

    .venv/bin/python benchmarks/bench_screens.py [--pool tune|held|both] [--per-condition 8] [--clean 12] [--keep DIR]

For each pool of `testing.mixtures` (TUNE: English Allison and the voices and music the screens
were tuned on; HELD: French June and voices, languages and music they never saw), one speaker is
vetted with `--clean` clean files and `--per-condition` files of every defect, one item per file,
as a user would vet them. A clip counts as caught only when it is rejected with the defect's own
reason (`RIGHT_REASON`); "first" counts those whose advice leads with it. Prints, per pool:
detection per condition, clean acceptance, `music` on voice-only mixtures and the confusion
between conditions and reasons. With --keep, the stores and audio stay in DIR, and a second run
only re-decides (the screens' figures are kept in the store).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clonebench.curate.vet import VetOptions, vet  # noqa: E402
from clonebench.testing import mixtures  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", choices=("tune", "held", "both"), default="both")
    ap.add_argument("--per-condition", type=int, default=8)
    ap.add_argument("--clean", type=int, default=12)
    ap.add_argument("--keep", type=Path)
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-screens-"))
    pools = {"tune": [mixtures.TUNE], "held": [mixtures.HELD], "both": [mixtures.TUNE, mixtures.HELD]}[args.pool]
    for pool in pools:
        score(pool, root, args.clean, args.per_condition)


if __name__ == "__main__":
    main()
