"""Demo data for trying the admin and the sandbox platform. Safe to run again: what exists is kept."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction

from accounts.models import Platform
from accounts.services import shop_upsert
from common.cli import clean_text
from orders.models import Product
from orders.services import product_save

DEFAULT_PASSWORD = "admin123456"
SHOP_KEY = "sandbox-demo"

PRODUCTS = [
    {"item_id": "demo-instant", "title": "会员兑换说明（自动发货·即时）", "kind": Product.Kind.VIRTUAL,
     "auto_ship": True, "ship_delay_min": 0, "ship_delay_max": 0, "stock": 100, "low_stock_threshold": 10,
     "delivery_template": "感谢购买「{{ item_title }}」！\n订单 {{ order_no }} 的兑换说明："
                          "{{ delivery_url }}"},
    {"item_id": "demo-delayed", "title": "软件授权（自动发货·5–30 分钟）", "kind": Product.Kind.VIRTUAL,
     "auto_ship": True, "ship_delay_min": 5, "ship_delay_max": 30, "stock": -1,
     "delivery_template": "您好，「{{ item_title }}」的授权信息请查看：{{ delivery_url }}"},
    {"item_id": "demo-kyc", "title": "需实名认证的虚拟商品（KYC 后自动发货）", "kind": Product.Kind.VIRTUAL,
     "auto_ship": True, "ship_delay_min": 0, "ship_delay_max": 0, "stock": -1, "needs_kyc": True,
     "delivery_template": "实名认证已通过，感谢购买「{{ item_title }}」！兑换说明：{{ delivery_url }}"},
    {"item_id": "demo-physical", "title": "实物周边（人工发货）", "kind": Product.Kind.PHYSICAL, "auto_ship": False,
     "logistics_company": "顺丰速运", "express_code": "SF", "stock": 20, "low_stock_threshold": 3},
]


class Command(BaseCommand):
    help = ("Demo data, safe to run twice: staff roles, an `admin` superuser (password from DEMO_ADMIN_PASSWORD, "
            f"default {DEFAULT_PASSWORD}), a sandbox shop and four products.")

    def handle(self, *args, **options):
        try:
            self._seed()
        except DatabaseError as exc:
            raise CommandError(f"the database is not ready ({exc}); run `manage.py migrate` first") from None

    def _seed(self):
        call_command("setup_roles", stdout=self.stdout, stderr=self.stderr)
        with transaction.atomic():
            password, user_note = self._admin()
            shop, shop_created = shop_upsert(platform=Platform.SANDBOX, name="演示沙箱店", app_key=SHOP_KEY,
                                             app_secret="sandbox-demo-secret")
            created = []
            for spec in PRODUCTS:
                if not Product.objects.filter(shop=shop, item_id=spec["item_id"]).exists():
                    product_save(product=Product(shop=shop, **spec))
                    created.append(spec["item_id"])

        self.stdout.write(f"sandbox shop #{shop.pk} {shop.name} ({'created' if shop_created else 'exists'}); "
                          f"products created: {', '.join(created) or 'none (all exist)'}")
        self.stdout.write(self.style.SUCCESS(
            f"Admin: {settings.PUBLIC_BASE_URL}/admin/  username: admin  password: {password}{user_note}"))
        self.stdout.write(f"Try an order: manage.py sandbox_order --shop {SHOP_KEY} --item demo-instant")

    def _admin(self) -> tuple[str, str]:
        User = get_user_model()
        explicit = os.environ.get("DEMO_ADMIN_PASSWORD")
        if explicit:
            try:
                explicit = clean_text(explicit, max_length=128, strip=False)
            except ValueError as exc:
                raise CommandError(f"DEMO_ADMIN_PASSWORD {exc}") from None
        password = explicit or DEFAULT_PASSWORD
        user = User.objects.filter(username="admin").first()
        if user is None:
            User.objects.create_superuser("admin", email="admin@example.com", password=password)
            return password, ""
        if explicit:
            user.set_password(password)
            user.save(update_fields=["password"])
            return password, " (reset from DEMO_ADMIN_PASSWORD)"
        note = " (existing user; set DEMO_ADMIN_PASSWORD to reset it)"
        if not (user.is_staff and user.is_superuser and user.is_active):
            note += " — warning: this existing `admin` user is not an active superuser"
        return "(unchanged)", note
