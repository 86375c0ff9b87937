"""Rendering plumbing: one Jinja2 environment (autoescape on), inline CSS/JS, data URIs,
relative audio links and atomic writes. Every report is one self-contained HTML file that
works from file:// with no network.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from markupsafe import Markup

PALETTE = {  # Okabe-Ito: distinguishable with the common colour-vision deficiencies
    "accepted": "#009E73", "rejected": "#D55E00", "blue": "#0072B2", "orange": "#E69F00",
    "sky": "#56B4E9", "purple": "#CC79A7", "grey": "#999999", "black": "#000000",
}


@lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = fmt_num
    return env


def fmt_num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:.0f}"
    return str(v)


def _static(name: str) -> Markup:
    # Our own CSS/JS, shipped with the package: trusted, so not escaped.
    return Markup(resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8"))


def render(template: str, out: Path, **context) -> Path:
    html = environment().get_template(template).render(css=_static("report.css"), js=_static("report.js"),
                                                        palette=PALETTE, **context)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, out)
    return out


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def audio_src(path: str | Path, report_dir: Path, embed: bool) -> str:
    """A link relative to the report (so the report and the data folder can move together),
    or the file itself as a data URI."""
    path = Path(path)
    if embed:
        mime = "audio/wav" if path.suffix.lower() == ".wav" else "audio/mpeg" if path.suffix.lower() == ".mp3" else "audio/flac"
        return data_uri(path.read_bytes(), mime)
    rel = os.path.relpath(path.resolve(), report_dir.resolve())
    return quote(Path(rel).as_posix())
