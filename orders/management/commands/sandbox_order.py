from django.core.management.base import BaseCommand, CommandError

from orders.services import OrderError, sandbox_order_simulate

from ._common import shop_by_ref


class Command(BaseCommand):
    help = "Sandbox shops only: play the platform and send a paid (or other status) order message to our inbox."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True)
        parser.add_argument("--item", required=True, help="item id of one of the shop's products")
        parser.add_argument("--quantity", type=int, default=1)
        parser.add_argument("--amount-fen", type=int, default=100)
        parser.add_argument("--status", default="paid")
        parser.add_argument("--order-no")

    def handle(self, *args, shop, item, quantity, amount_fen, status, order_no, **options):
        try:
            event = sandbox_order_simulate(shop=shop_by_ref(shop), item_id=item, quantity=quantity,
                                           amount_fen=amount_fen, status=status, order_no=order_no)
        except OrderError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"sandbox order {event.platform_order_id} sent (inbox #{event.pk})"))
