"""A Celery worker keeps its database connection from one task to the next, as Django does between requests:
Celery's Django fixup alone closed it after every task (a new PostgreSQL connection per shipment, which held
bench/ship at 53 orders/s). An unusable connection is still closed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from celery.signals import task_postrun, task_prerun
from django.db import connection

from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)


class Task:
    request = SimpleNamespace(is_eager=False)


def run_task_signals():
    """What the worker sends around one task, with the fixup installed as in a worker."""
    task = Task()
    task_prerun.send(sender=task, task=task, task_id="t", args=(), kwargs={})
    task_postrun.send(sender=task, task=task, task_id="t", args=(), kwargs={}, retval=None, state="SUCCESS")


@pytest.fixture
def worker_fixup():
    fixup = DjangoWorkerFixup(app)
    task_prerun.connect(fixup.on_task_prerun)
    task_postrun.connect(fixup.on_task_postrun)
    yield fixup
    task_prerun.disconnect(fixup.on_task_prerun)
    task_postrun.disconnect(fixup.on_task_postrun)


def test_the_connection_survives_tasks(postgres, worker_fixup):
    connection.ensure_connection()
    first = connection.connection
    for _ in range(3):
        run_task_signals()
        connection.ensure_connection()
    assert connection.connection is first


def test_an_unusable_connection_is_closed_after_a_task(postgres, worker_fixup):
    connection.ensure_connection()
    first = connection.connection
    connection.errors_occurred = True  # as after a lost server: Django health-checks it and drops it
    first.close()
    run_task_signals()
    connection.ensure_connection()
    assert connection.connection is not first
    with connection.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
