"""The system's own records in the admin: refused webhook calls (aggregated) and process heartbeats."""

from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin

from .admin_mixins import AdminOnlyMixin, FieldLabelsMixin, PIIMaskMixin, ReadOnlyAdminMixin, is_admin, pretty_json
from .models import Heartbeat, RejectedWebhook


@admin.register(RejectedWebhook)
class RejectedWebhookAdmin(PIIMaskMixin, ReadOnlyAdminMixin, ModelAdmin):
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

    @admin.display(description=_("request headers"))
    def headers_pretty(self, obj):
        return pretty_json(obj.headers or {})


@admin.register(Heartbeat)
class HeartbeatAdmin(FieldLabelsMixin, ReadOnlyAdminMixin, ModelAdmin):
    """When each process kind (worker, beat) last proved it was alive (also read by /healthz/)."""

    field_labels = {"name": _("process"), "seen_at": _("last heartbeat")}

    list_display = ("name", "seen_at")
    fields = ("name", "seen_at")
    readonly_fields = fields


# --- the beat scheduler's tables: administrators only --------------------------------------------------------
def _reregister_beat():
    from django_celery_beat import admin as beat_admin
    from django_celery_beat.models import (
        ClockedSchedule,
        CrontabSchedule,
        IntervalSchedule,
        PeriodicTask,
        SolarSchedule,
    )

    bases = {PeriodicTask: beat_admin.PeriodicTaskAdmin, ClockedSchedule: beat_admin.ClockedScheduleAdmin,
             CrontabSchedule: beat_admin.CrontabScheduleAdmin, SolarSchedule: beat_admin.SolarScheduleAdmin,
             IntervalSchedule: beat_admin.IntervalScheduleAdmin}
    for model, base in bases.items():
        if admin.site.is_registered(model):
            admin.site.unregister(model)
        admin.site.register(model, type(base.__name__, (AdminOnlyMixin, base, ModelAdmin), {
            "__module__": __name__, "__doc__": "The beat scheduler's table; administrators only."}))


_reregister_beat()


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdminMixin, ModelAdmin):
    """The operation log: every add, change and delete done through the admin, by whom and when (Django's
    admin history). Order and verification events keep the business history of each order."""

    list_display = ("action_time", "user", "content_type", "object_link", "action_flag_shown", "change_shown")
    list_filter = ("action_flag", "content_type", "user")
    search_fields = ("object_repr", "=object_id", "user__username")
    list_select_related = ("user", "content_type")
    date_hierarchy = "action_time"
    show_full_result_count = False
    fields = ("action_time", "user", "content_type", "object_id", "object_repr", "action_flag_shown",
              "change_shown")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return is_admin(request.user)

    def has_module_permission(self, request):
        return is_admin(request.user)

    @admin.display(description=_("object"), ordering="object_repr")
    def object_link(self, obj):
        url = obj.get_admin_url()
        return format_html('<a href="/admin/{}">{}</a>', url, obj.object_repr) if url else obj.object_repr

    @admin.display(description=_("action"), ordering="action_flag")
    def action_flag_shown(self, obj):
        return {ADDITION: _("Added"), CHANGE: _("Changed"), DELETION: _("Deleted")}.get(obj.action_flag, "-")

    @admin.display(description=_("change"))
    def change_shown(self, obj):
        return obj.get_change_message()
