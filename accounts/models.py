from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from common.fields import EncryptedTextField


class User(AbstractUser):
    """Staff user. Roles are groups (manage.py setup_roles)."""

    class Meta(AbstractUser.Meta):
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")
        permissions = [("view_pii", _("Can view personal data and secrets in clear"))]


class Platform(models.TextChoices):
    GOOFISH = "goofish", _("Xianyu open platform")
    XIANGUANJIA = "xianguanjia", _("Xianguanjia")
    SANDBOX = "sandbox", _("Sandbox (local simulation)")


class Shop(models.Model):
    """A seller account on a platform, with the adapter that talks to it and its credentials."""

    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    name = models.CharField(pgettext_lazy("shop", "name"), max_length=100)
    app_key = models.CharField(_("App Key"), max_length=64, db_index=True)
    app_secret = EncryptedTextField(_("App Secret"))
    session_token = EncryptedTextField(_("session token"), blank=True, default="")
    session_expires_at = models.DateTimeField(_("token expires at"), null=True, blank=True)
    seller_id = models.CharField(_("seller ID"), max_length=64, blank=True)
    is_active = models.BooleanField(_("enabled"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("shop")
        verbose_name_plural = _("shops")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["platform", "app_key"], name="shop_unique_platform_app_key"),
        ]

    def __str__(self):
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def is_sandbox(self) -> bool:
        return self.platform == Platform.SANDBOX


class BuyerIdentity(models.Model):
    """A buyer as a platform knows them. Tokens and contacts are encrypted."""

    platform = models.CharField(_("platform"), max_length=16, choices=Platform.choices)
    platform_user_id = models.CharField(_("platform user ID"), max_length=128)
    nick = models.CharField(_("nickname"), max_length=128, blank=True)
    access_token = EncryptedTextField(_("access token"), blank=True, default="")
    access_token_expires_at = models.DateTimeField(_("token expires at"), null=True, blank=True)
    phone = EncryptedTextField(_("phone number"), blank=True, default="")
    email = EncryptedTextField(_("e-mail"), blank=True, default="")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("buyer")
        verbose_name_plural = _("buyers")
        constraints = [
            models.UniqueConstraint(fields=["platform", "platform_user_id"], name="buyer_unique_platform_user"),
        ]

    def __str__(self):
        return self.nick or self.platform_user_id
