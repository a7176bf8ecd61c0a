from django.contrib import admin

from .admin_mixins import ReadOnlyAdminMixin
from .models import Heartbeat, RejectedWebhook


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("received_at", "source", "reason", "remote_addr", "body_size")
    list_filter = ("source", "reason")
    date_hierarchy = "received_at"
    readonly_fields = ("received_at", "source", "reason", "remote_addr", "path", "headers", "body_excerpt", "body_size")

    def has_change_permission(self, request, obj=None):
        return request.method == "GET"


@admin.register(Heartbeat)
class HeartbeatAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("name", "seen_at")
