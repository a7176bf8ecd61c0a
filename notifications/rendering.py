"""Rendering of event templates: plain text through the shared template sandbox (common.text_templates)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from common.text_templates import TemplateProblem as _Problem
from common.text_templates import check_template, render_template

from .events import get_event


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
    return render_template(subject, context), render_template(body, context)


def validate_template(event_key: str, subject: str, body: str) -> None:
    """Compile and render both parts with the event's sample context; unknown variables are errors."""
    event = get_event(event_key)
    for field, source in (("subject", subject), ("body", body)):
        try:
            out = check_template(source, event.sample)
        except _Problem as exc:
            if exc.kind == "syntax":
                raise TemplateProblem(field, _("Template syntax error: %(detail)s") % {"detail": exc.detail}) from exc
            if exc.kind == "unknown_variable":
                names = ", ".join(sorted(event.sample)) or _("(none)")
                raise TemplateProblem(field, _("The template uses a variable this event does not provide. "
                                               "Available variables: %(names)s") % {"names": names}) from exc
            if exc.kind == "forbidden":
                raise TemplateProblem(field, _("The tag “%(tag)s” is not allowed in a message template.")
                                      % {"tag": exc.detail}) from exc
            raise TemplateProblem(field, _("The template cannot be rendered: %(detail)s")
                                  % {"detail": exc.detail}) from exc
        if field == "body" and not out:
            raise TemplateProblem(field, _("The body renders as empty text."))
