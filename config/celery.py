"""The Celery app. Tasks are `DjangoTask`s, so `task.delay_on_commit()` is available everywhere and
is what services use: a message leaves only once the transaction that made the work has committed."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("xianyu_ops", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# Database connections in the worker are kept the way Django keeps them between requests (CONN_MAX_AGE, the
# health check, an unusable connection closed): Celery's Django fixup would otherwise close every connection
# after every task (unless CELERY_DB_REUSE_MAX is set, which config.settings does) — a new PostgreSQL
# connection for each shipment, KYC step or notification.
def _close_old_connections(task=None, **kwargs):
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


task_prerun.connect(_close_old_connections, weak=False)
task_postrun.connect(_close_old_connections, weak=False)
