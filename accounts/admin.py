from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from common.admin_mixins import pii_display
from common.fields import mask

from .models import BuyerIdentity, Platform, Shop, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ("username", "first_name", "email", "is_staff", "is_active", "roles")

    @admin.display(description=_("角色"))
    def roles(self, obj):
        return "、".join(g.name for g in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


class ShopForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them; leave blank to keep the stored value."""

    new_app_secret = forms.CharField(label=_("App Secret（留空不修改）"), required=False,
                                     widget=forms.PasswordInput(render_value=False))
    new_session_token = forms.CharField(label=_("授权令牌（留空不修改）"), required=False,
                                        widget=forms.PasswordInput(render_value=False))

    class Meta:
        model = Shop
        fields = ("platform", "name", "app_key", "seller_id", "session_expires_at", "is_active")

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("new_app_secret"):
            self.add_error("new_app_secret", _("新店铺必须填写 App Secret"))
        return data

    def save(self, commit=True):
        shop = super().save(commit=False)
        if self.cleaned_data.get("new_app_secret"):
            shop.app_secret = self.cleaned_data["new_app_secret"]
        if self.cleaned_data.get("new_session_token"):
            shop.session_token = self.cleaned_data["new_session_token"]
        if commit:
            shop.save()
        return shop


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    form = ShopForm
    list_display = ("name", "platform_badge", "app_key", "is_active", "session_expires_at", "secret_masked")
    list_filter = ("platform", "is_active")
    search_fields = ("name", "app_key", "seller_id")
    readonly_fields = ("secret_masked", "session_masked", "created_at", "updated_at")

    @admin.display(description=_("平台"), ordering="platform")
    def platform_badge(self, obj):
        if obj.platform == Platform.SANDBOX:
            return format_html('<span style="background:#f0ad4e;color:#fff;padding:2px 6px;border-radius:3px">'
                               '沙箱</span>')
        return obj.get_platform_display()

    @admin.display(description=_("App Secret"))
    def secret_masked(self, obj):
        return mask(obj.app_secret) if obj.pk else ""

    @admin.display(description=_("授权令牌"))
    def session_masked(self, obj):
        return mask(obj.session_token) if obj.pk else ""


@admin.register(BuyerIdentity)
class BuyerIdentityAdmin(admin.ModelAdmin):
    list_filter = ("platform",)
    search_fields = ("nick", "platform_user_id")

    def _pii(self, request):
        if not hasattr(request, "_buyer_pii"):  # the same callables for fields and readonly_fields
            request._buyer_pii = [pii_display("phone", _("手机号"), request), pii_display("email", _("邮箱"), request)]
        return request._buyer_pii

    def get_list_display(self, request):
        return ("nick", "platform", "platform_user_id", *self._pii(request), "created_at")

    def get_fields(self, request, obj=None):
        return ("platform", "platform_user_id", "nick", *self._pii(request), "token_masked",
                "access_token_expires_at", "created_at", "updated_at")

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("访问令牌"))
    def token_masked(self, obj):
        return mask(obj.access_token)
