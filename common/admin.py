from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .admin_mixins import FieldLabelsMixin, ReadOnlyAdminMixin, pretty_json
from .models import Heartbeat, RejectedWebhook


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Webhook calls refused before storage: evidence for staff (bad signatures, oversize bodies)."""

    list_display = ("received_at", "source", "reason", "remote_addr", "body_size")
    list_filter = ("source",)
    search_fields = ("reason", "=remote_addr")
    date_hierarchy = "received_at"
    show_full_result_count = False
    fields = ("received_at", "source", "reason", "remote_addr", "path", "body_size", "headers_pretty",
              "body_excerpt_pretty")
    readonly_fields = fields

    @admin.display(description=_("请求头"))
    def headers_pretty(self, obj):
        return pretty_json(obj.headers or {})

    @admin.display(description=_("消息体片段"))
    def body_excerpt_pretty(self, obj):
        return pretty_json(obj.body_excerpt or "")


@admin.register(Heartbeat)
class HeartbeatAdmin(FieldLabelsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """When each process kind (worker, beat) last proved it was alive (also read by /healthz/)."""

    field_labels = {"name": _("进程"), "seen_at": _("最近心跳")}

    list_display = ("name", "seen_at")
    fields = ("name", "seen_at")
    readonly_fields = fields
