import os

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from accounts.services import shop_upsert
from orders.models import Product

TEMPLATE = "感谢购买 {{ product.title }}！\n{% for code in codes %}卡密：{{ code }}\n{% endfor %}查看：{{ delivery_url }}"


class Command(BaseCommand):
    help = "Demo data, safe to run again: roles, an admin login, a sandbox shop and three products."

    def handle(self, *args, **options):
        call_command("setup_roles", stdout=self.stdout, stderr=self.stderr)
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin123456")
        User = get_user_model()
        user, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True,
                                                                                "is_superuser": True})
        if created:
            user.set_password(password)
            user.save()
        shop, _ = shop_upsert(platform="sandbox", name="演示沙箱店", app_key="sandbox-demo",
                              app_secret="sandbox-demo-secret")
        products = [
            {"item_id": "demo-card", "title": "会员激活码（自动发货）", "kind": "virtual", "auto_ship": True,
             "ship_delay_min": 0, "ship_delay_max": 0, "delivery_template": TEMPLATE, "stock": 0},
            {"item_id": "demo-delay", "title": "软件授权（随机 5–30 分钟发货）", "kind": "virtual", "auto_ship": True,
             "ship_delay_min": 5, "ship_delay_max": 30, "delivery_template": TEMPLATE, "stock": -1},
            {"item_id": "demo-physical", "title": "实物周边（人工发货）", "kind": "physical", "auto_ship": False,
             "logistics_company": "顺丰速运", "express_code": "SF", "stock": 20, "low_stock_threshold": 3},
        ]
        for spec in products:
            Product.objects.get_or_create(shop=shop, item_id=spec["item_id"], defaults=spec)
        self.stdout.write(self.style.SUCCESS(
            f"demo ready: log in at /admin/ as admin / {password if created else '(existing password)'}; "
            f"sandbox shop #{shop.pk} with {len(products)} products "
            "(try: manage.py sandbox_order --shop sandbox-demo --item demo-card)"))
