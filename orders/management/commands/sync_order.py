"""manage.py sync_order: re-read orders from their platform and bring them in line."""

from django.core.management.base import BaseCommand, CommandError

from common.cli import text_arg
from common.http import PlatformError
from orders.models import Order
from orders.services import order_refresh

from ._common import shop_by_ref


class Command(BaseCommand):
    help = "Re-read orders from their platform and bring them in line (creates unknown ones)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, type=text_arg(100), help="shop id, app key or name")
        parser.add_argument("order_ids", nargs="+", metavar="ORDER_ID", type=text_arg(64), help="platform order ids")

    def handle(self, *args, shop, order_ids, **options):
        shop = shop_by_ref(shop)
        failed = 0
        for oid in order_ids:
            order = Order.objects.filter(shop=shop, platform_order_id=oid).first() or Order(
                shop=shop, platform_order_id=oid)
            try:
                result = order_refresh(order=order)
            except PlatformError as exc:
                failed += 1
                self.stderr.write(f"{oid}: {exc}")
                continue
            self.stdout.write(f"{oid}: {result.outcome} → {result.order.status}"
                              f"{' (' + ', '.join(result.applied) + ')' if result.applied else ''}")
        if failed:
            raise CommandError(f"{failed} of {len(order_ids)} orders could not be synced")
