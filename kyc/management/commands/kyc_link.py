"""`manage.py kyc_link ORDER_ID…`: print the buyer's verification link of each order (to paste into a chat, or
to open it yourself when trying the sandbox)."""

from django.core.management.base import BaseCommand, CommandError

from kyc.models import Verification


class Command(BaseCommand):
    help = "Print the KYC verification link (and its state) of the given platform order ids."

    def add_arguments(self, parser):
        parser.add_argument("order_ids", nargs="+", metavar="ORDER_ID")

    def handle(self, *args, order_ids, **options):
        missing = []
        for order_id in order_ids:
            v = (Verification.objects.select_related("order").filter(order__platform_order_id=order_id)
                 .order_by("-created_at", "-pk").first())
            if v is None:
                missing.append(order_id)
                continue
            self.stdout.write(f"{order_id}\t{v.get_status_display()}\t{v.url}")
        if missing:
            raise CommandError(f"no verification for: {', '.join(missing)} (does the product need KYC, and has the "
                               "worker processed the order yet?)")
