"""`manage.py poll_facetoface [--all | --id N …]`: query face-to-face applications on Alipay now.

Without options: what is due (as the beat sweeper would). `--all`: every application still being polled
or submitted. `--id N`: those applications, due or not."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from payments.models import POLLED, ApplicationStatus, FacetofaceApplication
from payments.services.onboarding import (
    OnboardingError,
    application_advance,
    application_run_now,
    applications_due,
    applications_flag_overdue,
)


class Command(BaseCommand):
    help = "Query face-to-face applications on Alipay now: the due ones, --all, or --id N."

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--all", action="store_true", help="every application still polled or submitting")
        group.add_argument("--id", type=int, action="append", dest="ids", metavar="N", help="this application")

    def handle(self, *args, all=False, ids=None, **options):
        failed = 0
        if ids:
            for pk in ids:
                try:
                    self._show(application_run_now(application_id=pk))
                except OnboardingError as exc:
                    failed += 1
                    self.stderr.write(f"#{pk}: {exc}")
        elif all:
            pks = FacetofaceApplication.objects.filter(
                status__in=[*POLLED, ApplicationStatus.SUBMITTING]).order_by("pk").values_list("pk", flat=True)
            for pk in pks:
                try:
                    self._show(application_run_now(application_id=pk))
                except OnboardingError as exc:
                    failed += 1
                    self.stderr.write(f"#{pk}: {exc}")
        else:
            pks = applications_due()
            for pk in pks:
                application_advance(application_id=pk)
                self._show(FacetofaceApplication.objects.get(pk=pk))
            if not pks:
                self.stdout.write("nothing due")
        flagged = applications_flag_overdue()
        if flagged:
            self.stdout.write(f"{flagged} application(s) flagged: under review for too long")
        if failed:
            raise CommandError(f"{failed} application(s) could not be queried")

    def _show(self, app: FacetofaceApplication) -> None:
        due = timezone.localtime(app.due_at).strftime("%Y-%m-%d %H:%M") if app.due_at else "-"
        flag = "  [needs attention: " + app.attention_reason + "]" if app.needs_attention else ""
        self.stdout.write(f"#{app.pk} {app.shop_name}: {app.get_status_display()} "
                          f"({app.alipay_status or '-'}), queries {app.query_count}, next {due}"
                          f"{'  error: ' + app.last_error if app.last_error else ''}{flag}")
