from django.core.management.base import BaseCommand, CommandError

from common.cli import int_arg, text_arg
from common.inbox import INBOX_HANDLERS, INBOX_MODELS, process
from common.models import InboxEvent


class Command(BaseCommand):
    help = ("Re-run stored webhook events. By default the failed and unprocessed ones; --failed only the "
            "failed ones; --all also the processed and ignored ones (handlers are idempotent).")

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--failed", action="store_true", help="only failed events")
        which.add_argument("--all", action="store_true", help="every event, even processed ones")
        parser.add_argument("--source", type=text_arg(32),
                            help="only this source (xianguanjia, goofish, sandbox, …)")
        parser.add_argument("--id", type=int_arg(low=1, high=2**63 - 1), action="append", dest="ids",
                            help="only this event id (repeatable)")
        parser.add_argument("--limit", type=int_arg(low=1, high=1_000_000), default=10000)

    def handle(self, *args, failed, all, source, ids, limit, **options):
        S = InboxEvent.Status
        total = bad = 0
        for model in INBOX_MODELS:
            handler = INBOX_HANDLERS[model]
            qs = model.objects.order_by("received_at")
            if failed:
                qs = qs.filter(status=S.FAILED)
            elif not all:
                qs = qs.filter(status__in=[S.FAILED, S.PENDING, S.PROCESSING])
            if source:
                qs = qs.filter(source=source)
            if ids:
                qs = qs.filter(pk__in=ids)
            for pk in qs.values_list("pk", flat=True)[:limit]:
                status = process(model, pk, handler, force=True)
                total += 1
                bad += status == S.FAILED
                self.stdout.write(f"{model._meta.label} #{pk}: {status}")
        if not total:
            self.stdout.write("no stored events match" + (f" (source {source!r})" if source else ""))
        self.stdout.write(f"replayed {total} events, {bad} failed")
        if bad:
            raise CommandError(f"{bad} events failed again; see their last_error in the admin")

