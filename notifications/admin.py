"""Notifications in the admin: channels (the secret write-only), subscriptions, templates, and the log of
what was sent. A buyer-addressed notification's recipient, data and text are masked for staff without
`accounts.view_pii` (common.admin_mixins.PIIMaskMixin)."""

from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin, TabularInline

from common.admin_mixins import PIIMaskMixin, ReadOnlyAdminMixin

from .events import BUYER, EVENTS
from .forms import KIND_SETTINGS, ChannelForm, kind_field_names
from .models import Channel, ChannelKind, Delivery, Notification, Subscription, Template
from .services import channel_send_test, deliveries_retry_now


def addressed_to_a_buyer(notification: Notification) -> bool:
    event = EVENTS.get(notification.event)
    return bool(notification.recipient) or (event is not None and event.audience == BUYER)


class SubscriptionInline(TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = Subscription
    extra = 0
    fields = ("event", "shop", "enabled")


@admin.register(Channel)
class ChannelAdmin(PIIMaskMixin, ModelAdmin):
    secret_fields = ("secret",)
    list_display = ("name", "kind", "enabled", "shop", "secret", "rate_limit_shown", "updated_at")
    list_filter = ("kind", "enabled", "shop")
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    form = ChannelForm
    inlines = [SubscriptionInline]

    def get_fieldsets(self, request, obj=None):
        """The common fields, then one group of typed settings per kind (only the chosen kind's are used)."""
        kinds = sorted(KIND_SETTINGS, key=lambda k: obj is None or k != obj.kind)  # the channel's own kind first
        sets = [(None, {"fields": ("name", "kind", "enabled", "shop", "secret", "rate_limit_per_minute")})]
        for kind in kinds:
            sets.append((format_lazy(_("Settings: {kind}"), kind=ChannelKind(kind).label),
                         {"fields": kind_field_names(kind), "classes": ["channel-settings", f"kind-{kind}"],
                          "description": _("Used when the channel's kind is this one.")}))
        if obj is not None:
            sets.append((_("Record"), {"fields": ("created_at", "updated_at")}))
        return [(title, {**opts, "fields": self._arrange(request, obj, opts["fields"])}) for title, opts in sets]
    actions = ["send_test"]

    @admin.display(description=_("limit per minute"))
    def rate_limit_shown(self, obj):
        try:
            return obj.rate_limit
        except ValueError:
            return "-"

    @admin.action(description=_("Send a test message"))
    def send_test(self, request, queryset):
        for channel in queryset[:20]:
            d = channel_send_test(channel=channel)
            if d.status == Delivery.Status.SENT:
                self.message_user(request, _("%(name)s: test message sent.") % {"name": channel.name}, messages.SUCCESS)
            else:
                self.message_user(request, _("%(name)s: %(status)s, %(error)s") % {
                    "name": channel.name, "status": d.get_status_display(), "error": d.last_error or "-"},
                    messages.ERROR if d.status in (Delivery.Status.FAILED, Delivery.Status.UNKNOWN)
                    else messages.WARNING)


@admin.register(Subscription)
class SubscriptionAdmin(ModelAdmin):
    list_display = ("event", "channel", "shop", "enabled")
    list_filter = ("event", "channel", "shop", "enabled")
    list_editable = ("enabled",)
    list_select_related = ("channel", "shop")


@admin.register(Template)
class TemplateAdmin(ModelAdmin):
    list_display = ("event", "subject", "updated_at")
    readonly_fields = ("default_template", "variables")
    fields = ("event", "subject", "body", "default_template", "variables")

    @admin.display(description=_("default template"))
    def default_template(self, obj):
        event = EVENTS.get(obj.event) if obj else None
        if not event:
            return "-"
        return format_html("<pre style='white-space:pre-wrap'>{}\n\n{}</pre>", event.subject, event.body)

    @admin.display(description=_("variables (example values)"))
    def variables(self, obj):
        event = EVENTS.get(obj.event) if obj else None
        if not event:
            return _("Choose the event first; saving renders the template with example data as a test.")
        return format_html("<pre>{}</pre>", "\n".join(f"{k} = {v}" for k, v in event.sample.items()))


class DeliveryInline(TabularInline):
    hide_title = True  # no "<pk>: <str>" line above each row
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "due_at", "sent_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(PIIMaskMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "event", "shop", "created_at", "delivery_count")
    list_filter = ("event", "shop")
    date_hierarchy = "created_at"
    pii_fields = ("recipient", "context")
    pretty_fields = ("context",)
    fields = ("event", "shop", "recipient", "context", "created_at")
    readonly_fields = fields
    inlines = [DeliveryInline]

    def is_sensitive(self, obj, name):
        return name == "recipient" or addressed_to_a_buyer(obj)

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).select_related("shop").annotate(n_deliveries=Count("deliveries"))

    @admin.display(description=_("deliveries"), ordering="n_deliveries")
    def delivery_count(self, obj):
        return obj.n_deliveries



@admin.register(Delivery)
class DeliveryAdmin(PIIMaskMixin, ReadOnlyAdminMixin, ModelAdmin):
    list_display = ("id", "event", "channel", "status", "attempts", "due_at", "sent_at", "short_error")
    list_filter = ("status", "channel", "notification__event")
    list_select_related = ("channel", "notification")
    date_hierarchy = "created_at"
    readonly_fields = ("notification", "channel", "status", "attempts", "due_at", "lease_until", "attempted_at",
                       "sent_at", "last_error", "subject", "text", "external_id", "created_at", "updated_at")
    pii_fields = ("subject", "text")
    actions = ["retry_now"]

    def is_sensitive(self, obj, name):
        return addressed_to_a_buyer(obj.notification)

    @admin.display(description=_("event"), ordering="notification__event")
    def event(self, obj):
        return obj.notification.get_event_display()

    @admin.display(description=_("last error"))
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def has_retry_permission(self, request):
        return request.user.has_perm("notifications.change_delivery")

    @admin.action(description=_("Retry now"), permissions=["retry"])
    def retry_now(self, request, queryset):
        ids = list(queryset.exclude(status__in=[Delivery.Status.SENT, Delivery.Status.SENDING])
                   .values_list("pk", flat=True)[:1000])
        n = deliveries_retry_now(ids=ids)
        self.message_user(request, _("Queued %(n)d delivery(ies) again.") % {"n": n}, messages.SUCCESS)
