"""Eval items: the built-in eval sets, and manifests of audio made by any system.

A manifest is a UTF-8 TSV, one item per line:

    file<TAB>speaker<TAB>lang<TAB>text[<TAB>prompt[<TAB>synth_s[<TAB>ttfa_s]]]

- `file` and `prompt` are relative to the audio folder (or absolute);
- `lang` is `en`, `zh`, `zh-en` (mixed) or another Whisper language code;
- `prompt` is the reference clip the system was given (for SIM-o), `synth_s` the seconds it
  took to synthesize the file (for RTF), `ttfa_s` the time until its first audio. All optional; a header line starting with `file` and
  lines starting with `#` are skipped.

Items are matched across runs by their key: speaker, language and text (plus a counter when
the same text is said more than once), never by file name, so two systems' outputs for the
same eval set pair up whatever they named their files.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clonebench.core.errors import UserError
from clonebench.core.languages import EVAL_LANGS

BUILTIN_SETS = {"en": "en.tsv", "zh": "zh.tsv", "zh-en": "zh-en.tsv", "ja": "ja.tsv", "ko": "ko.tsv",
                "yue": "yue.tsv"}


@dataclass
class ManifestItem:
    item_key: str
    speaker: str
    lang: str
    text: str
    path: Path | None = None
    prompt: Path | None = None
    synth_s: float | None = None
    error: str | None = None
    ttfa_s: float | None = None


@dataclass(frozen=True)
class EvalSentence:
    sentence_id: str
    category: str
    lang: str
    text: str


def builtin_set(lang: str) -> list[EvalSentence]:
    if lang not in BUILTIN_SETS:
        raise UserError(f"no built-in eval set for {lang!r}; built-in: {', '.join(BUILTIN_SETS)}")
    text = resources.files(__package__).joinpath("sets", BUILTIN_SETS[lang]).read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            sid, category, sentence = line.split("\t")
            out.append(EvalSentence(sid, category, lang, sentence))
    return out


def load_eval_set(name: str) -> list[EvalSentence]:
    """'default' (every built-in language), a built-in language, or a TSV file of
    id<TAB>lang<TAB>text lines."""
    if name == "default":
        return [s for lang in BUILTIN_SETS for s in builtin_set(lang)]
    if name in BUILTIN_SETS:
        return builtin_set(name)
    path = Path(name)
    if not path.is_file():
        raise UserError(f"eval set {name!r}: not a built-in set ({', '.join(['default', *BUILTIN_SETS])}) and no such file")
    out = []
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 3 or cols[1] not in EVAL_LANGS or not cols[2].strip():
            raise UserError(f"{path}:{n}: expected id<TAB>lang<TAB>text with a known lang ({', '.join(sorted(EVAL_LANGS))})")
        out.append(EvalSentence(cols[0], "custom", cols[1], cols[2].strip()))
    return out


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None


def _resolve(audio_dir: Path, name: str) -> Path:
    p = Path(name)
    return p if p.is_absolute() else audio_dir / p


def item_key(speaker: str, lang: str, text: str, seen: dict[str, int]) -> str:
    base = f"{speaker}|{lang}|{text}"
    seen[base] = seen.get(base, 0) + 1
    return base if seen[base] == 1 else f"{base}#{seen[base]}"


def read_manifest(path: Path, audio_dir: Path) -> list[ManifestItem]:
    """Items of a manifest. A bad line becomes an item with an error, never an exception."""
    items: list[ManifestItem] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(_read_lines(path), 1):
        if not line.strip() or line.startswith("#") or (n == 1 and line.split("\t")[0].strip().lower() == "file"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        where = f"{path.name}:{n}"
        if len(cols) < 4:
            items.append(ManifestItem(f"!{where}", "?", "?", line[:200], error=f"{where}: expected file<TAB>speaker<TAB>lang<TAB>text, got {len(cols)} column(s)"))
            continue
        file, speaker, lang, text = cols[:4]
        error = None
        if not file or not speaker:
            error = f"{where}: empty file or speaker column"
        elif lang not in EVAL_LANGS:
            error = f"{where}: unknown language {lang!r} (use one of {', '.join(sorted(EVAL_LANGS))})"
        elif not text:
            error = f"{where}: empty text for {file}"
        timing: dict[str, float | None] = {"synth_s": None, "ttfa_s": None}
        for col, name in ((5, "synth_s"), (6, "ttfa_s")):
            if error is None and len(cols) > col and cols[col]:
                try:
                    timing[name] = float(cols[col])
                    if not timing[name] > 0:
                        raise ValueError
                except ValueError:
                    error = f"{where}: {name} must be a positive number of seconds, got {cols[col]!r}"
        key = item_key(speaker or "?", lang, text, seen) if error is None else f"!{where}"
        items.append(ManifestItem(key, speaker or "?", lang, text, _resolve(audio_dir, file) if file else None,
                              _resolve(audio_dir, cols[4]) if len(cols) > 4 and cols[4] else None,
                              timing["synth_s"], error, timing["ttfa_s"]))
    if not items:
        raise UserError(f"{path}: no items (expected lines of file<TAB>speaker<TAB>lang<TAB>text)")
    return items
