from django.apps import AppConfig
from django.db.models.signals import post_migrate


def install_periodic_tasks(sender=None, using="default", **kwargs):
    """Create or update django-celery-beat rows for settings.PERIODIC_TASKS (declared in code)."""
    from django.conf import settings
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    for name, (task, every) in settings.PERIODIC_TASKS.items():
        seconds = int(every.total_seconds())
        schedule, _ = IntervalSchedule.objects.using(using).get_or_create(
            every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.using(using).update_or_create(
            name=name, defaults={"task": task, "interval": schedule, "enabled": True,
                                 "description": "declared in settings.PERIODIC_TASKS"})


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "系统"

    def ready(self):
        post_migrate.connect(install_periodic_tasks, sender=self)
