"""`manage.py alipay_check`: are the Alipay settings right? Loads the keys, prints what to upload to Alipay,
and asks the gateway something harmless (`alipay.open.agent.order.query` for a batch that does not exist):
a signed refusal that verifies proves the gateway is reachable, Alipay accepts our signature and app id, and
ALIPAY_PUBLIC_KEY is Alipay's key. Exit status 0 when everything holds, 1 otherwise."""

import base64
import hashlib

from Cryptodome.PublicKey import RSA
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from common.http import ConfigurationError, PlatformError
from payments.client import AlipayClient, load_key


def _public_b64(pem: str) -> str:
    return base64.b64encode(RSA.import_key(pem).publickey().export_key(format="DER")).decode()


class Command(BaseCommand):
    help = "Check the Alipay settings: keys, app id, gateway, answer signatures."

    def handle(self, *args, **options):
        self.stdout.write(f"gateway      {settings.ALIPAY_GATEWAY_URL}")
        self.stdout.write(f"app id       {settings.ALIPAY_APP_ID or '(not set)'}")
        self.stdout.write(f"notify url   {settings.ALIPAY_NOTIFY_URL}")
        try:
            private = load_key(settings.ALIPAY_APP_PRIVATE_KEY, what="ALIPAY_APP_PRIVATE_KEY")
            public = load_key(settings.ALIPAY_PUBLIC_KEY, what="ALIPAY_PUBLIC_KEY")
            ours = _public_b64(private)
            theirs = _public_b64(public)
            client = AlipayClient()
        except (PlatformError, ValueError, IndexError, TypeError) as exc:
            raise CommandError(f"FAIL keys: {exc}") from exc
        self.stdout.write(f"app public key (upload this to Alipay as 应用公钥), sha256 "
                          f"{hashlib.sha256(ours.encode()).hexdigest()[:16]}:\n  {ours}")
        self.stdout.write(f"Alipay public key sha256 {hashlib.sha256(theirs.encode()).hexdigest()[:16]}")
        if not settings.DEBUG and not settings.ALIPAY_NOTIFY_URL.startswith("https://"):
            self.stderr.write("warning: ALIPAY_NOTIFY_URL is not https")
        try:
            client.agent_order_query(batch_no="0")
        except ConfigurationError as exc:
            raise CommandError(f"FAIL gateway answered: {exc}") from exc
        except PlatformError as exc:
            if not getattr(exc, "verified", False):
                raise CommandError(f"FAIL gateway: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(
                f"ok: the gateway answered with a signed, verified refusal ({exc.code}): keys, app id and "
                "gateway are right"))
            return
        self.stdout.write(self.style.SUCCESS("ok: the gateway answered"))
