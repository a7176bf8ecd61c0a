"""manage.py shop_add: create or update a shop without prompts."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Platform, Shop
from accounts.services import shop_upsert
from common.cli import text_arg


def _max(field: str) -> int:
    return Shop._meta.get_field(field).max_length


class Command(BaseCommand):
    help = "Create or update a shop (platform + app key identify it) without prompts."

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, choices=Platform.values)
        parser.add_argument("--name", required=True, type=text_arg(_max("name")))
        parser.add_argument("--app-key", required=True, type=text_arg(_max("app_key")))
        parser.add_argument("--app-secret", required=True, type=text_arg(1000))
        parser.add_argument("--session", default=None, type=text_arg(4000, blank=True),
                            help="seller session / access token")
        parser.add_argument("--seller-id", default=None, type=text_arg(_max("seller_id"), blank=True))

    def handle(self, *args, platform, name, app_key, app_secret, session, seller_id, **options):
        try:
            shop, created = shop_upsert(platform=platform, name=name, app_key=app_key, app_secret=app_secret,
                                        session_token=session, seller_id=seller_id)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{'created' if created else 'updated'} shop #{shop.pk} {shop}"))
