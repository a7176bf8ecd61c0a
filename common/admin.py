"""The system's own records in the admin: refused webhook calls (aggregated) and process heartbeats."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .admin_mixins import FieldLabelsMixin, PIIMaskMixin, ReadOnlyAdminMixin, pretty_json
from .models import Heartbeat, RejectedWebhook


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(PIIMaskMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Webhook calls refused before storage: evidence for staff (bad signatures, oversize bodies, hostile
    bytes). Repeats within a window are one row with a count (common.rejects). The body excerpt may be a
    real platform message (a rotated secret): its values are masked without `accounts.view_pii`."""

    pii_fields = ("body_excerpt",)
    pretty_fields = pii_fields
    list_display = ("last_seen_at", "source", "reason", "remote_addr", "count", "received_at", "body_size")
    list_filter = ("source",)
    search_fields = ("reason", "=remote_addr")
    date_hierarchy = "last_seen_at"
    show_full_result_count = False
    fields = ("received_at", "last_seen_at", "count", "reported_count", "source", "reason", "remote_addr", "path",
              "body_size", "headers_pretty", "body_excerpt")
    readonly_fields = fields

    @admin.display(description=_("请求头"))
    def headers_pretty(self, obj):
        return pretty_json(obj.headers or {})


@admin.register(Heartbeat)
class HeartbeatAdmin(FieldLabelsMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """When each process kind (worker, beat) last proved it was alive (also read by /healthz/)."""

    field_labels = {"name": _("进程"), "seen_at": _("最近心跳")}

    list_display = ("name", "seen_at")
    fields = ("name", "seen_at")
    readonly_fields = fields
