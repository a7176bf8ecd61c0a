"""Staff-editable plain-text templates (delivery content, notification texts): the one sandbox they share.

A template is Django template syntax rendered as plain text against a fixed context of plain values —
strings, numbers, booleans, dates, and lists or dicts of those — never model objects, so a template has
nothing to walk to (`{{ order.shop.app_secret }}` is just an unknown variable). Output is not HTML-escaped:
text is stored raw and escaped exactly once where it is shown (an HTML page escapes it, an SMS does not).
Tags that reach outside the template or change escaping (`include`, `extends`, `load`, `debug`, `url`,
`csrf_token`, `autoescape`) are refused when checked and when rendered.

- `check_template(source, sample)`: save-time validation. Compiles, refuses those tags, and renders with the
  sample context in strict mode, so a variable the context does not provide is an error (`TemplateProblem`
  with `kind` "syntax", "forbidden", "unknown_variable" or "render"; callers word the message).
- `render_template(source, context)`: run time. A missing variable renders as "".
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache

from django.template import Context, Engine, TemplateSyntaxError
from django.template.defaulttags import AutoEscapeControlNode, CsrfTokenNode, DebugNode, LoadNode, URLNode
from django.template.loader_tags import ExtendsNode, IncludeNode

PLAIN_TYPES = (str, int, float, Decimal, bool, type(None), date, datetime, time)
FORBIDDEN_NODES = (IncludeNode, ExtendsNode, LoadNode, DebugNode, URLNode, CsrfTokenNode, AutoEscapeControlNode)
_INVALID = "\x00INVALID\x00"
_engine = Engine(autoescape=False, string_if_invalid="")
_strict = Engine(autoescape=False, string_if_invalid=_INVALID)


class TemplateProblem(ValueError):
    """A template that cannot be used. `kind`: syntax | forbidden | unknown_variable | render."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


def plain_context(context: dict) -> dict:
    """The context itself, after checking every value is plain (TypeError names the first one that is not)."""
    for key, value in context.items():
        _check_plain(value, key)
    return context


def _check_plain(value, path: str) -> None:
    if isinstance(value, PLAIN_TYPES):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(f"template context {path!r} has a non-string key")
            _check_plain(item, f"{path}.{k}")
        return
    raise TypeError(f"template context value {path!r} is a {type(value).__name__}: pass plain values only")


@lru_cache(maxsize=256)
def _compile(source: str, strict: bool):
    template = (_strict if strict else _engine).from_string(source)
    for cls in FORBIDDEN_NODES:
        found = template.nodelist.get_nodes_by_type(cls)
        if found:
            raise TemplateProblem("forbidden", found[0].token.contents.split()[0] if found[0].token else cls.__name__)
    return template


def _compiled(source: str, strict: bool = False):
    try:
        return _compile(source, strict)
    except TemplateSyntaxError as exc:
        raise TemplateProblem("syntax", str(exc)) from exc


def render_template(source: str, context: dict) -> str:
    """Render as plain text (stripped). Raises TemplateProblem for a template that does not compile."""
    template = _compiled(source)
    return template.render(Context(plain_context(dict(context)), autoescape=False)).strip()


def check_template(source: str, sample: dict) -> str:
    """Validate a template against the sample of its context; returns the sample rendering (stripped)."""
    template = _compiled(source, strict=True)
    try:
        out = template.render(Context(plain_context(dict(sample)), autoescape=False))
    except TemplateProblem:
        raise
    except Exception as exc:  # a filter given the wrong type, …
        raise TemplateProblem("render", f"{exc.__class__.__name__}: {exc}") from exc
    if _INVALID in out:
        raise TemplateProblem("unknown_variable", ", ".join(sorted(sample)))
    return out.strip()
