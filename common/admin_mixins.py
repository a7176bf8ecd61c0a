"""Admin helpers every app reuses (DESIGN.md §1, §6).

- `PIIMaskMixin` (common.admin_masking, re-exported here): personal data masked without
  `accounts.view_pii`, credentials never shown and write-only.
- `ReadOnlyAdminMixin`: logs and records — nothing can be added, changed or deleted from the admin.
- `InboxEventAdmin`: the admin of any `common.models.InboxEvent` subclass, with a "重新处理" action.
- `FieldLabelsMixin`, `titled_filter`: labels for models declared without verbose names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from .admin_masking import (  # noqa: F401 (re-exported: the apps' admin modules import them from here)
    PII_PERMISSION,
    PIIMaskMixin,
    SensitiveField,
    brief_json,
    can_view_pii,
    masked_leaves,
    pretty_json,
    render_sensitive,
    shown,
)
from .models import InboxEvent

ADMIN_ROLE = "admin"


def is_admin(user) -> bool:
    """A superuser or a member of the administrators' role (accounts.roles)."""
    return bool(user.is_active and (user.is_superuser or user.groups.filter(name=ADMIN_ROLE).exists()))


class AdminOnlyMixin:
    """Pages only administrators see, whatever model permissions a group was given (the beat scheduler's
    internals): hidden from the index and navigation, and refused (403) to everyone else."""

    def has_module_permission(self, request):
        return is_admin(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return is_admin(request.user) and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return is_admin(request.user) and super().has_change_permission(request, obj)

    def has_add_permission(self, request, *args):
        return is_admin(request.user) and super().has_add_permission(request, *args)

    def has_delete_permission(self, request, obj=None):
        return is_admin(request.user) and super().has_delete_permission(request, obj)


class ReadOnlyAdminMixin:
    """For logs: nothing can be added, changed or deleted from the admin (viewing needs the view permission)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InboxEventAdmin(PIIMaskMixin, ReadOnlyAdminMixin, ModelAdmin):
    """Admin for any InboxEvent subclass. Set `replay_task` to the dotted name of the Celery task that
    processes one event by primary key (or override `replay`). A platform's raw message may carry buyer
    data: its values are masked for staff without `accounts.view_pii` (keys stay readable)."""

    pii_fields = ("body",)
    pretty_fields = ("body",)

    replay_task: str | None = None
    replay_limit = 1000

    list_display = ("source", "key", "topic", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "source", "topic")
    search_fields = ("=key",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ["replay_selected"]

    leading_fields = ("source", "key", "topic")
    trailing_fields = ("status", "attempts", "result", "last_error", "received_at", "processed_at",
                       "next_attempt_at", "headers_pretty", "body", "traceback")

    def get_fields(self, request, obj=None):
        known = {*self.leading_fields, *self.trailing_fields, "headers", "body", "id"}
        extra = [f.name for f in self.model._meta.concrete_fields if f.name not in known]
        return self._arrange(request, obj, [*self.leading_fields, *extra, *self.trailing_fields])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("request headers"))
    def headers_pretty(self, obj):
        return pretty_json(obj.headers or {})

    # --- replay ---------------------------------------------------------------------------------

    def has_replay_permission(self, request) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_replay_task(self):
        """The Celery task named by `replay_task`, looked up only when needed."""
        if not self.replay_task:
            return None
        from celery import current_app

        try:
            return current_app.tasks[self.replay_task]
        except KeyError:
            return import_string(self.replay_task)

    def replay(self, pk) -> None:
        """Start processing one event again. The row is the truth: if the broker is down, the sweeper
        finds the pending event."""
        from .inbox import nudge

        task = self.get_replay_task()
        if task is None:
            raise NotImplementedError(f"{type(self).__name__} has no replay_task")
        nudge(task, pk)

    @admin.action(description=_("Process again"), permissions=["replay"])
    def replay_selected(self, request, queryset):
        S = InboxEvent.Status
        now = timezone.now()
        if self.replay_task is None and type(self).replay is InboxEventAdmin.replay:
            self.message_user(request, _("No task is set up to process this kind of message again."), messages.ERROR)
            return
        pks = list(queryset.order_by("pk").values_list("pk", flat=True)[: self.replay_limit + 1])
        truncated = len(pks) > self.replay_limit
        pks = pks[: self.replay_limit]
        with transaction.atomic():
            # An event a worker holds right now (lease not expired) is left alone.
            busy = set(self.model.objects.filter(pk__in=pks, status=S.PROCESSING, next_attempt_at__gt=now)
                       .values_list("pk", flat=True))
            todo = [pk for pk in pks if pk not in busy]
            self.model.objects.filter(pk__in=todo).update(status=S.PENDING, next_attempt_at=now, processed_at=None)
            for pk in todo:
                transaction.on_commit(lambda pk=pk: self.replay(pk))
        msg = format_lazy(_("Queued {n} message(s) again."), n=len(todo))
        self.message_user(request, msg, messages.SUCCESS if todo else messages.WARNING)
        if busy:
            busy_msg = _("{n} message(s) are being processed right now: skipped.")
            self.message_user(request, format_lazy(busy_msg, n=len(busy)), messages.WARNING)
        if truncated:
            more = _("At most {n} at a time: run the action again for the rest, or use the replay_events command.")
            self.message_user(request, format_lazy(more, n=self.replay_limit), messages.WARNING)


class FieldLabelsMixin:
    """Chinese labels for model fields declared without a verbose name (models owned elsewhere):
    `field_labels = {"order_no": _("order no.")}` labels their list columns and form/detail rows."""

    field_labels: dict[str, Any] = {}

    def _column(self, name: str) -> Callable:
        def column(obj):
            return getattr(obj, name)

        column.__name__ = name
        column.short_description = self.field_labels[name]
        column.admin_order_field = name
        return column

    def get_list_display(self, request):
        return [self._column(n) if isinstance(n, str) and n in self.field_labels else n
                for n in super().get_list_display(request)]

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["labels"] = {**self.field_labels, **(kwargs.get("labels") or {})}
        return super().get_form(request, obj, change=change, **kwargs)


def titled_filter(title, base=admin.AllValuesFieldListFilter):
    """A list filter class showing `title` instead of the field's verbose name."""

    class TitledFilter(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return TitledFilter
