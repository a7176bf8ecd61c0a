from django.core.management.base import BaseCommand, CommandError

from accounts.models import Platform
from accounts.services import shop_upsert


class Command(BaseCommand):
    help = "Create or update a shop (platform + app key identify it) without prompts."

    def add_arguments(self, parser):
        parser.add_argument("--platform", required=True, choices=Platform.values)
        parser.add_argument("--name", required=True)
        parser.add_argument("--app-key", required=True)
        parser.add_argument("--app-secret", required=True)
        parser.add_argument("--session", default=None, help="seller session / access token")
        parser.add_argument("--seller-id", default=None)

    def handle(self, *args, platform, name, app_key, app_secret, session, seller_id, **options):
        try:
            shop, created = shop_upsert(platform=platform, name=name, app_key=app_key, app_secret=app_secret,
                                        session_token=session, seller_id=seller_id)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{'created' if created else 'updated'} shop #{shop.pk} {shop}"))
