"""Sum the dashboard's daily figures now (common.stats): the recent days again, and every missing day of the chart.

`--rebuild` first forgets every kept day: after orders were loaded with past dates (a backfill, bench/admin's
generator), so the dashboard does not show the figures of before."""

from django.core.management.base import BaseCommand

from common.stats import rebuild_daily_stats, refresh_daily_stats


class Command(BaseCommand):
    help = "Sum the dashboard's daily figures (with --rebuild: forget the kept ones first)."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="forget every kept day first")

    def handle(self, *args, rebuild=False, **options):
        if rebuild:
            self.stdout.write(f"forgot {rebuild_daily_stats()} kept day(s)")
        self.stdout.write(f"summed {refresh_daily_stats()} recent day(s); the last 30 days are kept")
