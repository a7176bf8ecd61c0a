"""`manage.py kyc_check`: are the Sumsub credentials accepted, and do the levels we use exist?

Exit status 0 when KYC can work (Sumsub answers with our signature and knows every level in use, or the local
sandbox stands in during development), 1 otherwise, with the reason."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.http import ConfigurationError, PlatformError
from kyc.clients import SumsubClient, is_sandbox_token, sumsub_configured
from kyc.models import KycPolicy
from kyc.services import sandbox_active


class Command(BaseCommand):
    help = "Check the Sumsub credentials (a signed request), the webhook secret and the verification levels in use."

    def add_arguments(self, parser):
        parser.add_argument("--level", action="append", default=[], help="also check this level name (repeatable)")

    def handle(self, *args, level, **options):
        if not sumsub_configured():
            if sandbox_active():
                self.stdout.write(self.style.WARNING(
                    "Sumsub is not configured (SUMSUB_APP_TOKEN / SUMSUB_SECRET_KEY): the local KYC sandbox stands "
                    "in for it. Fine for development; never expose it to buyers."))
                return
            raise CommandError("Sumsub is not configured (SUMSUB_APP_TOKEN / SUMSUB_SECRET_KEY) and KYC_SANDBOX is "
                               "off: buyers cannot verify.")
        mode = "sandbox" if is_sandbox_token() else "production"
        self.stdout.write(f"Sumsub {settings.SUMSUB_BASE_URL} ({mode} app token)")
        wanted = {settings.SUMSUB_LEVEL_NAME, *KycPolicy.objects.exclude(level_name="")
                  .values_list("level_name", flat=True), *[name.strip() for name in level if name.strip()]}
        try:
            known = set(SumsubClient().level_names())
        except ConfigurationError as exc:
            raise CommandError(f"Sumsub refused our credentials or signature: {exc}") from exc
        except PlatformError as exc:
            raise CommandError(f"Sumsub could not be reached: {exc}") from exc
        self.stdout.write(f"credentials accepted; levels at Sumsub: {', '.join(sorted(known)) or '(none)'}")
        missing = sorted(wanted - known)
        if missing:
            raise CommandError(f"level(s) not found at Sumsub: {', '.join(missing)}")
        if not settings.SUMSUB_WEBHOOK_SECRET:
            raise CommandError("SUMSUB_WEBHOOK_SECRET is empty: every Sumsub webhook would be refused.")
        self.stdout.write(self.style.SUCCESS(f"KYC ready: level(s) {', '.join(sorted(wanted))} exist, "
                                             "webhook secret set."))
