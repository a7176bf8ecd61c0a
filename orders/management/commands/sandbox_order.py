"""manage.py sandbox_order: play the sandbox platform and send an order message to our inbox."""

from django.core.management.base import BaseCommand, CommandError

from common.cli import int_arg, text_arg
from orders.services import PLATFORM_STATES, OrderError, sandbox_order_simulate

from ._common import shop_by_ref


class Command(BaseCommand):
    help = ("Sandbox shops only: play the platform and send an order message (paid by default) to our inbox, "
            "as a real platform's push would arrive.")

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, type=text_arg(100),
                            help="sandbox shop id, app key or name")
        parser.add_argument("--item", required=True, type=text_arg(64),
                            help="item id of one of the shop's products (an unknown one is refused with the list)")
        parser.add_argument("--quantity", type=int_arg(low=1, high=999), default=1)
        parser.add_argument("--amount-fen", type=int_arg(low=0, high=10**9), default=100,
                            help="amount paid, in fen")
        parser.add_argument("--status", default="paid", choices=PLATFORM_STATES,
                            help="the platform status the message reports (default paid)")
        parser.add_argument("--order-no", type=text_arg(64),
                            help="move an existing sandbox order instead of creating one")

    def handle(self, *args, shop, item, quantity, amount_fen, status, order_no, **options):
        try:
            event = sandbox_order_simulate(shop=shop_by_ref(shop), item_id=item, quantity=quantity,
                                           amount_fen=amount_fen, status=status, order_no=order_no)
        except OrderError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"sandbox order {event.platform_order_id} sent as {status} (inbox #{event.pk})"))
