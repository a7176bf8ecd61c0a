from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.fields import EncryptedTextField


class User(AbstractUser):
    """Staff user. Roles are groups (manage.py setup_roles)."""

    class Meta(AbstractUser.Meta):
        verbose_name = _("员工")
        verbose_name_plural = _("员工")
        permissions = [("view_pii", _("可查看个人信息与密钥明文"))]


class Platform(models.TextChoices):
    GOOFISH = "goofish", _("闲鱼开放平台")
    XIANGUANJIA = "xianguanjia", _("闲管家")
    SANDBOX = "sandbox", _("沙箱（本地模拟）")


class Shop(models.Model):
    """A seller account on a platform, with the adapter that talks to it and its credentials."""

    platform = models.CharField(_("平台"), max_length=16, choices=Platform.choices)
    name = models.CharField(_("店铺名称"), max_length=100)
    app_key = models.CharField(_("App Key"), max_length=64, db_index=True)
    app_secret = EncryptedTextField(_("App Secret"))
    session_token = EncryptedTextField(_("授权令牌"), blank=True, default="")
    session_expires_at = models.DateTimeField(_("令牌过期时间"), null=True, blank=True)
    seller_id = models.CharField(_("卖家 ID"), max_length=64, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("店铺")
        verbose_name_plural = _("店铺")
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

    platform = models.CharField(_("平台"), max_length=16, choices=Platform.choices)
    platform_user_id = models.CharField(_("平台用户 ID"), max_length=128)
    nick = models.CharField(_("昵称"), max_length=128, blank=True)
    access_token = EncryptedTextField(_("访问令牌"), blank=True, default="")
    access_token_expires_at = models.DateTimeField(_("令牌过期时间"), null=True, blank=True)
    phone = EncryptedTextField(_("手机号"), blank=True, default="")
    email = EncryptedTextField(_("邮箱"), blank=True, default="")
    created_at = models.DateTimeField(_("创建时间"), auto_now_add=True)
    updated_at = models.DateTimeField(_("更新时间"), auto_now=True)

    class Meta:
        verbose_name = _("买家")
        verbose_name_plural = _("买家")
        constraints = [
            models.UniqueConstraint(fields=["platform", "platform_user_id"], name="buyer_unique_platform_user"),
        ]

    def __str__(self):
        return self.nick or self.platform_user_id
