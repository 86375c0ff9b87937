"""The review app's HTML: Jinja2 with autoescape on, the page's data as JSON inside the page (made
safe for a <script> element), CSS and JS inline so a page is one request."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

from markupsafe import Markup

from .rows import METRICS, SpeakerPage, reason_names, review_reasons

KEYS = (("j / ↓", "next clip"), ("k / ↑", "previous clip"), ("space", "play / pause"), ("a", "accept"),
        ("r", "reject: then 1-9 for a reason, o for other + a note"), ("g", "agree with the rules"),
        ("e", "edit the text (Enter saves, Esc cancels)"), ("p", "pick as the speaker's reference"),
        ("u", "undo the clip's last review"), ("/", "filter this page"), ("?", "show these keys"))

_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def script_json(value) -> Markup:
    """JSON that is safe inside a <script> element: no character of it can end the element."""
    return Markup(json.dumps(value, ensure_ascii=False).translate(_SAFE))


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader(__package__, "templates"), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    static = resources.files(__package__) / "static"
    env.globals["css"] = Markup(static.joinpath("review.css").read_text(encoding="utf-8"))
    env.globals["js"] = Markup(static.joinpath("review.js").read_text(encoding="utf-8"))
    return env


def index_html(speakers: list[dict], reviewer: str, keys: bool) -> str:
    return _env().get_template("index.html.j2").render(speakers=speakers, reviewer=reviewer, keys=keys,
                                                         names=script_json(reason_names()))


def speaker_html(page: SpeakerPage, reviewer: str, keys: bool) -> str:
    data = {"page": page.to_json(), "reasons": review_reasons(), "names": reason_names(),
            "metrics": [{"key": k, "title": t, "higher_better": h} for k, t, h in METRICS]}
    return _env().get_template("speaker.html.j2").render(page=page, reviewer=reviewer, keys=keys, help=KEYS,
                                                           data=script_json(data))


def login_html(next_path: str, problem: str | None) -> str:
    return _env().get_template("login.html.j2").render(next=next_path, problem=problem)
