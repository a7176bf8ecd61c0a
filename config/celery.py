"""The Celery app. Tasks are `DjangoTask`s, so `task.delay_on_commit()` is available everywhere and
is what services use: a message leaves only once the transaction that made the work has committed."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("xianyu_ops", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
