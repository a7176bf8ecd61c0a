from datetime import timedelta

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def declared_periodic_tasks() -> dict[str, tuple[str, timedelta]]:
    """Every app's `periodic_tasks` (name -> (task name, interval))."""
    tasks: dict[str, tuple[str, timedelta]] = {}
    for config in apps.get_app_configs():
        tasks.update(getattr(config, "periodic_tasks", {}))
    return tasks


def install_periodic_tasks(sender=None, using="default", **kwargs):
    """Create or update django-celery-beat rows for the tasks the apps declare in code."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, every) in declared_periodic_tasks().items():
        schedule, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=int(every.total_seconds()), period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.using(using).update_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True,
                                 "description": "declared in code (AppConfig.periodic_tasks)"})


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = _("System")
    periodic_tasks = {
        "health: heartbeat": ("common.tasks.heartbeat", timedelta(minutes=1)),
        "security: report rejected webhooks": ("common.tasks.report_rejected_webhooks", timedelta(minutes=1)),
        "dashboard: refresh the daily figures": ("common.tasks.refresh_daily_stats", timedelta(minutes=10)),
    }

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)

        post_migrate.connect(install_periodic_tasks, sender=self)
