"""Re-encrypt every encrypted field with the newest key of FIELD_ENCRYPTION_KEYS."""

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from common.cli import int_arg
from common.fields import encrypted_fields, fernet


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column with the first key of FIELD_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int_arg(low=1, high=10000), default=500,
                            help="rows per transaction")

    def handle(self, *args, batch, **options):
        try:
            f = fernet()
        except (ImproperlyConfigured, ValueError) as exc:  # empty, or a key that is not a Fernet key
            raise CommandError(f"FIELD_ENCRYPTION_KEYS is not usable: {exc}") from None
        total = 0
        for model in apps.get_models():
            names = encrypted_fields(model)
            if not names or model._meta.proxy or not model._meta.managed:
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            pk = model._meta.pk.column
            changed = 0
            # Work on the raw tokens: MultiFernet.rotate keeps the plaintext out of Python objects.
            qs = model._base_manager.order_by("pk").values_list("pk", flat=True)
            ids = list(qs)
            for start in range(0, len(ids), batch):
                chunk = ids[start:start + batch]
                with transaction.atomic(), connection.cursor() as cur:
                    cols = ", ".join(connection.ops.quote_name(n) for n in names)
                    marks = ", ".join(["%s"] * len(chunk))
                    cur.execute(f"SELECT {pk}, {cols} FROM {table} WHERE {pk} IN ({marks})", chunk)
                    for row in cur.fetchall():
                        try:
                            updates = {n: f.rotate(v.encode()).decode()
                                       for n, v in zip(names, row[1:], strict=True) if v}
                        except InvalidToken:
                            raise CommandError(
                                f"{model._meta.label} #{row[0]}: a value cannot be decrypted with any key of "
                                f"FIELD_ENCRYPTION_KEYS (was a key removed before re-encrypting?); rows before "
                                f"this batch are done, run again once the old key is back") from None
                        if not updates:
                            continue
                        sets = ", ".join(f"{connection.ops.quote_name(n)} = %s" for n in updates)
                        cur.execute(f"UPDATE {table} SET {sets} WHERE {pk} = %s", [*updates.values(), row[0]])
                        changed += 1
            if changed:
                self.stdout.write(f"{model._meta.label}: {changed} rows re-encrypted")
            total += changed
        self.stdout.write(self.style.SUCCESS(f"done: {total} rows re-encrypted with the newest key"))
