"""Accounts in the admin: staff users and their roles, shops (credentials write-only), buyers (contacts
masked without `accounts.view_pii`), and login lockouts (django-axes), which staff can clear."""

from axes.admin import AccessAttemptAdmin as AxesAccessAttemptAdmin
from axes.admin import AccessFailureLogAdmin as AxesAccessFailureLogAdmin
from axes.admin import AccessLogAdmin as AxesAccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from common.admin_mixins import PIIMaskMixin

from .models import BuyerIdentity, Platform, Shop, User
from .roles import ROLES
from .services import login_lockout_clear

SANDBOX_BADGE = ('<span style="background:#f0ad4e;color:#fff;padding:1px 6px;border-radius:3px;'
                 'font-weight:bold">{}</span>')


def sandbox_badge():
    return format_html(SANDBOX_BADGE, _("Sandbox"))


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    """Staff accounts; roles are groups (manage.py setup_roles), PII access is the `view_pii` permission."""

    form = UserChangeForm
    add_form = UserCreationForm
    change_password_form = AdminPasswordChangeForm

    list_display = ("username", "first_name", "last_name", "email", "is_staff", "is_superuser", "is_active",
                    "roles", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active", "groups")

    @admin.display(description=_("roles"))
    def roles(self, obj):
        labels = {name: spec["label"] for name, spec in ROLES.items()}
        return "、".join(labels.get(g.name, g.name) for g in obj.groups.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")


@admin.register(Shop)
class ShopAdmin(PIIMaskMixin, ModelAdmin):
    """Seller accounts. Credentials are write-only: nobody sees them in clear here."""

    secret_fields = ("app_secret", "session_token")
    list_display = ("name", "platform_badge", "app_key", "is_active", "session_expires_at", "app_secret")
    list_filter = ("platform", "is_active")
    search_fields = ("name", "app_key", "seller_id")
    fieldsets = (
        (None, {"fields": ("platform", "name", "app_key", "seller_id", "is_active")}),
        (_("Credentials"), {"fields": ("app_secret", "session_token", "session_expires_at"),
                   "description": _("Secrets are stored encrypted and nobody sees them in clear; enter a new value "
                                    "to replace one, leave it blank to keep it.")}),
        (_("Record"), {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description=_("platform"), ordering="platform")
    def platform_badge(self, obj):
        if obj.platform == Platform.SANDBOX:
            return format_html("{} {}", sandbox_badge(), obj.get_platform_display())
        return obj.get_platform_display()


@admin.register(BuyerIdentity)
class BuyerIdentityAdmin(PIIMaskMixin, ModelAdmin):
    """Buyers as platforms know them: contacts masked unless `view_pii`; the access token never in clear."""

    pii_fields = ("phone", "email")
    secret_fields = ("access_token",)
    list_display = ("nick", "platform", "platform_user_id", "phone", "email", "created_at")
    list_filter = ("platform",)
    search_fields = ("nick", "=platform_user_id")
    show_full_result_count = False
    fields = ("platform", "platform_user_id", "nick", "phone", "email", "access_token", "access_token_expires_at",
              "created_at", "updated_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # buyers come from platform orders

    def has_change_permission(self, request, obj=None):
        return False  # a platform's record: nothing to edit here


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(BaseGroupAdmin, ModelAdmin):
    """Roles are groups (accounts.roles, `manage.py setup_roles`)."""


for _model, _base in ((AccessLog, AxesAccessLogAdmin), (AccessFailureLog, AxesAccessFailureLogAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(_base.__name__, (_base, ModelAdmin), {"__module__": __name__}))


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)


@admin.register(AccessAttempt)
class AccessAttemptAdmin(AxesAccessAttemptAdmin, ModelAdmin):
    """Failed admin logins by client address (django-axes). "Clear lockout" lets the address log in again
    at once (staff with the delete permission on access attempts)."""

    actions = ["clear_lockout", *AxesAccessAttemptAdmin.actions]

    @admin.action(description=_("Clear lockout (allow logging in again)"), permissions=["delete"])
    def clear_lockout(self, request, queryset):
        n = login_lockout_clear(attempts=queryset)
        self.message_user(request, format_lazy(_("Cleared {n} lockout record(s)."), n=n), messages.SUCCESS)
