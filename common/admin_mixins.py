"""Admin helpers shared by every app: PII masking by permission, read-only logs, inbox event admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from .fields import mask
from .inbox import INBOX_HANDLERS, process
from .models import InboxEvent

PII_PERMISSION = "accounts.view_pii"


def can_view_pii(request) -> bool:
    return request.user.has_perm(PII_PERMISSION)


def shown(request, value: str | None) -> str:
    """A personal value as this staff member may see it."""
    return value or "" if can_view_pii(request) else mask(value)


def pii_display(field: str, label, request):
    """A list/detail column showing a personal field masked unless the staff member may see PII.
    Built per request (admin instances are shared between threads)."""

    def display(obj):
        return shown(request, getattr(obj, field))

    display.short_description = label
    return display


class ReadOnlyAdminMixin:
    """For logs: nothing can be added, changed or deleted from the admin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class InboxEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "source", "topic", "key", "status", "attempts", "received_at", "processed_at")
    list_filter = ("status", "source", "topic")
    search_fields = ("key",)
    date_hierarchy = "received_at"
    readonly_fields = ("source", "key", "topic", "status", "attempts", "result", "last_error", "received_at",
                       "processed_at", "next_attempt_at", "headers", "body_pretty", "traceback")
    exclude = ("body",)
    actions = ["replay"]

    @admin.display(description=_("原始消息体"))
    def body_pretty(self, obj):
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", obj.body[:20000])

    def has_change_permission(self, request, obj=None):
        return request.method == "GET" or super().has_change_permission(request, obj)

    @admin.action(description=_("重新处理所选消息"))
    def replay(self, request, queryset):
        handler = INBOX_HANDLERS[self.model]
        results: dict[str, int] = {}
        for pk in queryset.values_list("pk", flat=True)[:500]:
            status = process(self.model, pk, handler, force=True)
            results[status] = results.get(status, 0) + 1
        summary = "，".join(f"{InboxEvent.Status(k).label if k in InboxEvent.Status.values else k} {v} 条"
                           for k, v in results.items())
        level = messages.WARNING if results.get(InboxEvent.Status.FAILED) else messages.SUCCESS
        self.message_user(request, f"已重新处理：{summary}", level)
