"""An offline API reference page rendered from an OpenAPI 3 document.

FastAPI's `/docs` loads Swagger UI from a CDN and is blank without network access. `docs_html`
renders the same schema (as `FastAPI.openapi()` returns it) into one self-contained HTML page:
inline CSS, no scripts, no external URLs, every string escaped.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1000px;padding:1em 1.5em;
color:#1f2328;background:#fff}
h1{margin-bottom:.1em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
section{border:1px solid #d0d7de;border-radius:6px;margin:1em 0;padding:.6em 1em}
section h3{margin:.2em 0;font-family:ui-monospace,monospace;font-size:1.05em}
.m{display:inline-block;min-width:4.2em;text-align:center;border-radius:4px;color:#fff;padding:0 .4em;
margin-right:.5em;text-transform:uppercase;font-size:.85em}
.get{background:#1f6feb}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}
.delete{background:#cf222e}.head,.options,.trace{background:#57606a}
.desc{white-space:pre-wrap;margin:.3em 0}.muted{color:#57606a}.sec{color:#9a6700;font-weight:600}
.dep{color:#cf222e;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.4em 0;font-size:.93em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f6f8fa}
code{font-family:ui-monospace,monospace;background:#f6f8fa;padding:0 .2em;border-radius:3px}
h4{margin:.7em 0 .2em}h5{margin:.5em 0 .1em;font-family:ui-monospace,monospace}
nav ul{columns:2;padding-left:1.2em}
"""


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _json(value: Any) -> str:
    return _e(json.dumps(value, ensure_ascii=False))


def _anchor(method: str, path: str) -> str:
    """`post /v1/tts` -> `post-v1-tts`."""
    return re.sub(r"[^a-z0-9]+", "-", f"{method} {path}".lower()).strip("-")


class _Doc:
    """The OpenAPI document with `$ref` resolution."""

    def __init__(self, openapi: dict) -> None:
        self.d = openapi

    def resolve(self, obj: Any, _depth: int = 0) -> Any:
        while isinstance(obj, dict) and "$ref" in obj and _depth < 20:
            node: Any = self.d
            for part in str(obj["$ref"]).lstrip("#/").split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
            obj, _depth = node, _depth + 1
        return obj

    @staticmethod
    def ref_name(schema: Any) -> str | None:
        if isinstance(schema, dict):
            if "$ref" in schema:
                return str(schema["$ref"]).rsplit("/", 1)[-1]
            if len(schema.get("allOf", [])) == 1:
                return _Doc.ref_name(schema["allOf"][0])
        return None

    def type_of(self, schema: Any) -> str:
        """A short type name: `string`, `integer | null`, `array of Voice`, `Voice`."""
        if not isinstance(schema, dict) or not schema:
            return "any"
        if name := self.ref_name(schema):
            return name
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return " | ".join(dict.fromkeys(self.type_of(s) for s in schema[key]))
        if "allOf" in schema:
            return " & ".join(self.type_of(s) for s in schema["allOf"])
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(map(str, kind))
        if kind == "array":
            return f"array of {self.type_of(schema.get('items'))}"
        if kind is None and "const" in schema:
            kind = type(schema["const"]).__name__.replace("str", "string")
        text = str(kind or ("object" if "properties" in schema else "any"))
        return f"{text} ({schema['format']})" if schema.get("format") else text

    def branches(self, schema: Any) -> list[dict]:
        """The schema itself plus its non-null anyOf/oneOf branches (Optional[...] in pydantic)."""
        schema = self.resolve(schema) if isinstance(schema, dict) else {}
        out = [schema]
        for key in ("anyOf", "oneOf", "allOf"):
            for sub in schema.get(key, []):
                sub = self.resolve(sub)
                if isinstance(sub, dict) and sub.get("type") != "null":
                    out.extend(self.branches(sub))
        return out

    def facts(self, schema: Any) -> list[str]:
        """Allowed values and constraints, e.g. `one of: "wav", "mp3"`, `≥ 0.5`, `length ≤ 200`."""
        out: list[str] = []
        for s in self.branches(schema):
            if "enum" in s:
                out.append("one of: " + ", ".join(_json(v) for v in s["enum"]))
            if "const" in s:
                out.append(f"always {_json(s['const'])}")
            for key, sign in (("minimum", "≥"), ("maximum", "≤"), ("exclusiveMinimum", ">"),
                              ("exclusiveMaximum", "<"), ("minLength", "length ≥"), ("maxLength", "length ≤"),
                              ("minItems", "items ≥"), ("maxItems", "items ≤"), ("multipleOf", "multiple of")):
                if key in s and not isinstance(s[key], bool):
                    out.append(f"{sign} {_e(s[key])}")
            if "pattern" in s:
                out.append(f"pattern <code>{_e(s['pattern'])}</code>")
        return list(dict.fromkeys(out))


def _refs(node: Any) -> list[str]:
    """Every `$ref` inside a schema (not following them)."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _prop_rows(doc: _Doc, schema: dict, seen: set[str], nested: list[tuple[str, dict]]) -> str:
    """Table rows for an object schema's properties; referenced object schemas go to `nested`."""
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        for ref in _refs(prop):
            target = doc.resolve({"$ref": ref})
            name_ = ref.rsplit("/", 1)[-1]
            if name_ not in seen and isinstance(target, dict) and "properties" in target:
                seen.add(name_)
                nested.append((name_, target))
        default = f"<code>{_json(prop['default'])}</code>" if isinstance(prop, dict) and "default" in prop else ""
        desc = _e(prop.get("description", "")) if isinstance(prop, dict) else ""
        rows.append(f"<tr><td><code>{_e(name)}</code></td><td>{_e(doc.type_of(prop))}</td>"
                    f"<td>{'yes' if name in required else 'no'}</td><td>{default}</td>"
                    f"<td>{'; '.join(doc.facts(prop))}</td><td class=desc>{desc}</td></tr>")
    return "".join(rows)


def _schema_block(doc: _Doc, schema: Any) -> str:
    """A schema's property table (and those of object schemas it refers to)."""
    name = doc.ref_name(schema)
    body = doc.resolve(schema)
    if not isinstance(body, dict) or "properties" not in body:
        facts = "; ".join(doc.facts(schema))
        return f"<p>{_e(doc.type_of(schema))}{' — ' + facts if facts else ''}</p>"
    seen = {name} if name else set()
    todo: list[tuple[str, dict]] = []
    parts = [_prop_table(doc, body, seen, todo, name)]
    while todo:
        ref, target = todo.pop(0)
        parts.append(_prop_table(doc, target, seen, todo, ref))
    return "".join(parts)


def _prop_table(doc: _Doc, schema: dict, seen: set[str], todo: list[tuple[str, dict]], name: str | None) -> str:
    head = f"<h5>{_e(name)}</h5>" if name else ""
    if schema.get("description"):
        head += f"<div class='desc muted'>{_e(schema['description'])}</div>"
    return (f"{head}<table><tr><th>field</th><th>type</th><th>required</th><th>default</th><th>allowed</th>"
            f"<th>description</th></tr>{_prop_rows(doc, schema, seen, todo)}</table>")


def _security(doc: _Doc, requirements: list[dict] | None, lead: str = "needs") -> str:
    """`needs Authorization: Bearer KEY` and the like; empty when the operation is open."""
    if not requirements:
        return ""
    schemes = doc.d.get("components", {}).get("securitySchemes", {})
    options = []
    for req in requirements:
        needs = []
        for name in req:
            s = doc.resolve(schemes.get(name, {}))
            kind, scheme = s.get("type"), str(s.get("scheme", "")).lower()
            if kind == "http" and scheme == "bearer":
                needs.append("Authorization: Bearer KEY")
            elif kind == "http" and scheme == "basic":
                needs.append("Authorization: Basic USER:PASSWORD (base64)")
            elif kind == "apiKey":
                needs.append(f"{s.get('in', 'header')} {s.get('name', name)}: KEY")
            else:
                needs.append(f"{name} ({kind or 'security scheme'})")
        options.append(" and ".join(needs) if needs else "nothing")
    return f"<p class=sec>{_e(lead)} {_e(' or '.join(options))}</p>"


def _parameters(doc: _Doc, params: list) -> str:
    rows = []
    for p in (doc.resolve(p) for p in params):
        schema = p.get("schema", {})
        default = f"<code>{_json(doc.resolve(schema)['default'])}</code>" if "default" in doc.resolve(schema) else ""
        desc = p.get("description") or doc.resolve(schema).get("description", "")
        rows.append(f"<tr><td><code>{_e(p.get('name', ''))}</code></td><td>{_e(p.get('in', ''))}</td>"
                    f"<td>{_e(doc.type_of(schema))}</td><td>{'yes' if p.get('required') else 'no'}</td>"
                    f"<td>{default}</td><td>{'; '.join(doc.facts(schema))}</td><td class=desc>{_e(desc)}</td></tr>")
    return ("<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th>required</th><th>default</th>"
            f"<th>allowed</th><th>description</th></tr>{''.join(rows)}</table>")


def _request_body(doc: _Doc, body: dict) -> str:
    body = doc.resolve(body)
    req = "required" if body.get("required") else "optional"
    parts = [f"<h4>Request body <span class=muted>({req})</span></h4>"]
    if body.get("description"):
        parts.append(f"<div class=desc>{_e(body['description'])}</div>")
    for media, content in body.get("content", {}).items():
        schema = (content or {}).get("schema")
        name = doc.ref_name(schema)
        parts.append(f"<p><code>{_e(media)}</code>{' — ' + _e(name) if name else ''}</p>")
        if schema:
            parts.append(_schema_block(doc, schema))
    return "".join(parts)


def _responses(doc: _Doc, responses: dict) -> str:
    rows = []
    for code, resp in responses.items():
        resp = doc.resolve(resp)
        media = []
        for kind, content in (resp.get("content") or {}).items():
            schema = (content or {}).get("schema")
            label = doc.type_of(schema) if schema else ""
            media.append(f"<code>{_e(kind)}</code>{' — ' + _e(label) if label else ''}")
        rows.append(f"<tr><td><code>{_e(code)}</code></td><td class=desc>{_e(resp.get('description', ''))}</td>"
                    f"<td>{'<br>'.join(media)}</td></tr>")
    return ("<h4>Responses</h4><table><tr><th>status</th><th>description</th><th>media types</th></tr>"
            f"{''.join(rows)}</table>")


def _operation(doc: _Doc, anchor: str, method: str, path: str, op: dict, path_params: list) -> str:
    parts = [f"<section id='{_e(anchor)}'><h3><a href='#{_e(anchor)}'><span class='m {method}'>{method}</span></a>"
             f"{_e(path)}</h3>"]
    if op.get("summary"):
        parts.append(f"<p><b>{_e(op['summary'])}</b></p>")
    if op.get("deprecated"):
        parts.append("<p class=dep>deprecated</p>")
    if op.get("description"):
        parts.append(f"<div class=desc>{_e(op['description'])}</div>")
    parts.append(_security(doc, op["security"] if "security" in op else doc.d.get("security")))
    own = {(p.get("name"), p.get("in")) for p in map(doc.resolve, op.get("parameters", []))}
    params = [p for p in path_params if (doc.resolve(p).get("name"), doc.resolve(p).get("in")) not in own]
    params += op.get("parameters", [])
    if params:
        parts.append(_parameters(doc, params))
    if op.get("requestBody"):
        parts.append(_request_body(doc, op["requestBody"]))
    if op.get("responses"):
        parts.append(_responses(doc, op["responses"]))
    parts.append("</section>")
    return "".join(parts)


def docs_html(openapi: dict) -> str:
    """A self-contained HTML reference for an OpenAPI 3 document (a dict, as `FastAPI.openapi()` gives)."""
    doc = _Doc(openapi)
    info = openapi.get("info", {})
    title = str(info.get("title") or "API")
    ops: list[tuple[str, str, str, dict, list]] = []  # (anchor, method, path, operation, path-level params)
    used: set[str] = set()
    for path, item in (openapi.get("paths") or {}).items():
        item = doc.resolve(item)
        for method in METHODS:
            if isinstance(item.get(method), dict):
                anchor = base = _anchor(method, path)
                k = 2
                while anchor in used:
                    anchor, k = f"{base}-{k}", k + 1
                used.add(anchor)
                ops.append((anchor, method, path, item[method], item.get("parameters", [])))

    # group by each operation's first tag, tags in the document's order first; else path order
    tag_info = {t.get("name"): t for t in openapi.get("tags", []) if isinstance(t, dict)}
    groups: dict[str | None, list] = {name: [] for name in tag_info}
    for op in ops:
        groups.setdefault((op[3].get("tags") or [None])[0], []).append(op)
    groups = {k: v for k, v in groups.items() if v}
    tagged = any(k is not None for k in groups)

    nav, body = [], []
    for tag, members in groups.items():
        if tagged:
            label = tag if tag is not None else "other"
            body.append(f"<h2 id='tag-{_e(_anchor('', str(label)))}'>{_e(label)}</h2>")
            if tag_info.get(tag, {}).get("description"):
                body.append(f"<div class='desc muted'>{_e(tag_info[tag]['description'])}</div>")
        for anchor, method, path, op, path_params in members:
            summary = f" — {_e(op['summary'])}" if op.get("summary") else ""
            nav.append(f"<li><a href='#{_e(anchor)}'><code>{_e(method.upper())} {_e(path)}</code></a>{summary}</li>")
            body.append(_operation(doc, anchor, method, path, op, path_params))

    head = [f"<h1>{_e(title)}</h1>"]
    if info.get("version"):
        head.append(f"<p class=muted>version {_e(info['version'])} · OpenAPI {_e(openapi.get('openapi', '3'))}</p>")
    if info.get("description"):
        head.append(f"<div class=desc>{_e(info['description'])}</div>")
    head.append(_security(doc, openapi.get("security"), "unless an operation says otherwise, requests need"))
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            "<link rel=icon href='data:,'>"   # no icon: the browser asks the server for none (it would need a key)
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
            f"{''.join(head)}<nav><h2>Operations</h2><ul>{''.join(nav)}</ul></nav>{''.join(body)}</body></html>\n")
