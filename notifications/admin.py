from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin_mixins import ReadOnlyAdminMixin
from common.fields import mask

from .events import EVENTS
from .models import Channel, Delivery, Notification, Subscription, Template
from .services import channel_send_test, deliveries_retry_now


class ChannelForm(forms.ModelForm):
    new_secret = forms.CharField(
        label=_("设置新密钥"), required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("留空则保留原密钥。密钥加密保存，不会再次显示明文。"))

    class Meta:
        model = Channel
        fields = ("name", "kind", "enabled", "shop", "config", "rate_limit_per_minute")

    def save(self, commit=True):
        obj = super().save(commit=False)
        if self.cleaned_data.get("new_secret"):
            obj.secret = self.cleaned_data["new_secret"]
        if commit:
            obj.save()
            self.save_m2m()
        return obj


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ("event", "shop", "enabled")


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("name", "kind", "enabled", "shop", "secret_masked", "rate_limit_shown", "updated_at")
    list_filter = ("kind", "enabled", "shop")
    search_fields = ("name",)
    readonly_fields = ("secret_masked", "created_at", "updated_at")
    fields = ("name", "kind", "enabled", "shop", "config", "secret_masked", "new_secret", "rate_limit_per_minute",
              "created_at", "updated_at")
    inlines = [SubscriptionInline]
    actions = ["send_test"]

    @admin.display(description=_("当前密钥"))
    def secret_masked(self, obj):
        return mask(obj.secret) if obj and obj.secret else _("（未设置）")

    @admin.display(description=_("每分钟上限"))
    def rate_limit_shown(self, obj):
        try:
            return obj.rate_limit
        except ValueError:
            return "-"

    @admin.action(description=_("发送测试消息"))
    def send_test(self, request, queryset):
        for channel in queryset[:20]:
            d = channel_send_test(channel=channel)
            if d.status == Delivery.Status.SENT:
                self.message_user(request, _("%(name)s：测试消息已发送。") % {"name": channel.name}, messages.SUCCESS)
            else:
                self.message_user(request, _("%(name)s：%(status)s，%(error)s") % {
                    "name": channel.name, "status": d.get_status_display(), "error": d.last_error or "-"},
                    messages.ERROR if d.status in (Delivery.Status.FAILED, Delivery.Status.UNKNOWN)
                    else messages.WARNING)


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("event", "channel", "shop", "enabled")
    list_filter = ("event", "channel", "shop", "enabled")
    list_editable = ("enabled",)
    list_select_related = ("channel", "shop")


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("event", "subject", "updated_at")
    readonly_fields = ("default_template", "variables")
    fields = ("event", "subject", "body", "default_template", "variables")

    @admin.display(description=_("默认模板"))
    def default_template(self, obj):
        event = EVENTS.get(obj.event) if obj else None
        if not event:
            return "-"
        return format_html("<pre style='white-space:pre-wrap'>{}\n\n{}</pre>", event.subject, event.body)

    @admin.display(description=_("可用变量（示例值）"))
    def variables(self, obj):
        event = EVENTS.get(obj.event) if obj else None
        if not event:
            return _("保存前请先选择事件；保存时会用示例数据试渲染模板。")
        return format_html("<pre>{}</pre>", "\n".join(f"{k} = {v}" for k, v in event.sample.items()))


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("channel", "status", "attempts", "due_at", "sent_at", "last_error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "event", "shop", "created_at", "delivery_count")
    list_filter = ("event", "shop")
    date_hierarchy = "created_at"
    readonly_fields = ("event", "shop", "context", "recipient_masked", "created_at")
    exclude = ("recipient",)
    inlines = [DeliveryInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).select_related("shop").annotate(n_deliveries=Count("deliveries"))

    @admin.display(description=_("投递数"), ordering="n_deliveries")
    def delivery_count(self, obj):
        return obj.n_deliveries

    @admin.display(description=_("收件人（买家）"))
    def recipient_masked(self, obj):
        return mask(obj.recipient) or "-"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ("id", "event", "channel", "status", "attempts", "due_at", "sent_at", "short_error")
    list_filter = ("status", "channel", "notification__event")
    list_select_related = ("channel", "notification")
    date_hierarchy = "created_at"
    readonly_fields = ("notification", "channel", "status", "attempts", "due_at", "lease_until", "attempted_at",
                       "sent_at", "last_error", "subject", "text", "external_id", "created_at", "updated_at")
    actions = ["retry_now"]

    @admin.display(description=_("事件"), ordering="notification__event")
    def event(self, obj):
        return obj.notification.get_event_display()

    @admin.display(description=_("最近错误"))
    def short_error(self, obj):
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def has_retry_permission(self, request):
        return request.user.has_perm("notifications.change_delivery")

    @admin.action(description=_("立即重试"), permissions=["retry"])
    def retry_now(self, request, queryset):
        ids = list(queryset.exclude(status__in=[Delivery.Status.SENT, Delivery.Status.SENDING])
                   .values_list("pk", flat=True)[:1000])
        n = deliveries_retry_now(ids=ids)
        self.message_user(request, _("已重新排队 %(n)d 条投递。") % {"n": n}, messages.SUCCESS)
