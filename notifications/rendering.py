"""Rendering of event templates (Django template syntax, plain text: no HTML escaping)."""

from __future__ import annotations

from django.template import Context, Engine, TemplateSyntaxError

from .events import get_event

_engine = Engine(autoescape=False)
_INVALID = "\x00INVALID\x00"
_strict = Engine(autoescape=False, string_if_invalid=_INVALID)


class TemplateProblem(Exception):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def render(event_key: str, context: dict) -> tuple[str, str]:
    """(subject, text) for an event: the staff override if there is one, else the default."""
    from .models import Template

    event = get_event(event_key)
    override = Template.objects.filter(event=event_key).values_list("subject", "body").first()
    subject, body = override if override else (event.subject, event.body)
    ctx = Context(context, autoescape=False)
    return _engine.from_string(subject).render(ctx).strip(), _engine.from_string(body).render(ctx).strip()


def validate_template(event_key: str, subject: str, body: str) -> None:
    """Compile and render both parts with the event's sample context; unknown variables are errors."""
    event = get_event(event_key)
    for field, source in (("subject", subject), ("body", body)):
        try:
            out = _strict.from_string(source).render(Context(dict(event.sample), autoescape=False))
        except TemplateSyntaxError as exc:
            raise TemplateProblem(field, f"模板语法错误：{exc}") from exc
        except Exception as exc:
            raise TemplateProblem(field, f"模板无法渲染：{exc.__class__.__name__}: {exc}") from exc
        if _INVALID in out:
            names = "、".join(sorted(event.sample)) or "（无）"
            raise TemplateProblem(field, f"模板引用了该事件不提供的变量。可用变量：{names}")
        if field == "body" and not out.strip():
            raise TemplateProblem(field, "正文渲染结果为空。")
