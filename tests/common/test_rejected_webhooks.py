"""Refused webhook calls cannot flood the database or the alerting (DESIGN.md §6): repeats aggregate into one
row with a counter, the table keeps a capped number of rows, and the security alert is sent by a task after
the refused request, at most once per source per alert interval."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from common.models import RejectedWebhook
from notifications.models import Notification

pytestmark = pytest.mark.django_db

BAD = "/webhooks/xianguanjia/?appid=nobody&timestamp=1&sign=bad"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def alerts() -> list[Notification]:
    return list(Notification.objects.filter(event="security.webhook_rejected").order_by("pk"))


def bad_call(ip: str = "203.0.113.9", body: bytes = b'{"order_no": "1"}'):
    return Client(REMOTE_ADDR=ip).post(BAD, data=body, content_type="application/json")


def test_thousands_of_bad_calls_leave_bounded_rows_and_one_alert(settings, django_capture_on_commit_callbacks):
    settings.REJECTED_WEBHOOK_MAX_ROWS = 50
    statuses = set()
    # The flood happens within one aggregation window and one alert interval, however slow the machine is
    # (on a loaded CI machine the 2,000 calls can take more than the 60 s interval, or cross a window edge).
    moment = timezone.now().replace(minute=0, second=30, microsecond=0)
    with (mock.patch("django.utils.timezone.now", return_value=moment),
          mock.patch("common.rejects.NUDGE_EVERY_SECONDS", 3600),
          django_capture_on_commit_callbacks(execute=True) as callbacks):
        for n in range(1500):
            statuses.add(bad_call(ip=f"198.51.100.{n % 120}").status_code)
        for _ in range(500):  # one address hammering
            statuses.add(bad_call(ip="203.0.113.200").status_code)

    assert statuses == {401}
    assert RejectedWebhook.objects.count() <= 50
    hammer = RejectedWebhook.objects.get(remote_addr="203.0.113.200")
    assert hammer.count == 500 and hammer.reason == "unknown appid"
    assert len(callbacks) == 1  # one report task queued for the whole flood
    assert len(alerts()) == 1
    assert alerts()[0].context["source"] == "xianguanjia"


def test_the_alert_is_sent_after_the_request_not_in_it(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        resp = bad_call()
    assert resp.status_code == 401
    assert alerts() == []  # nothing sent while the refused request was being answered
    assert len(callbacks) == 1

    callbacks[0]()  # the transaction committed: the report task runs (eagerly here)
    (alert,) = alerts()
    assert alert.context["count"] == 1 and alert.context["remote_addr"] == "203.0.113.9"
    assert RejectedWebhook.objects.get().reported_count == 1


def test_repeats_within_the_window_are_one_row_and_a_new_window_opens_a_new_one(settings):
    settings.REJECTED_WEBHOOK_WINDOW_SECONDS = 600
    start = timezone.now().replace(minute=0, second=0, microsecond=0)
    with mock.patch("django.utils.timezone.now", return_value=start + timedelta(seconds=5)):
        for _ in range(3):
            bad_call(body=b'{"first": 1}')
        bad_call(ip="203.0.113.10")
    with mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=11)):
        bad_call(body=b'{"later": 1}')

    rows = list(RejectedWebhook.objects.order_by("pk").values_list("remote_addr", "count", "body_excerpt"))
    assert rows == [("203.0.113.9", 3, '{"first": 1}'), ("203.0.113.10", 1, '{"order_no": "1"}'),
                    ("203.0.113.9", 1, '{"later": 1}')]


def test_the_periodic_report_counts_every_refusal_once_and_alerts_are_rate_limited(
        django_capture_on_commit_callbacks):
    from common.tasks import report_rejected_webhooks

    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(5):
            bad_call()
    (first,) = alerts()
    assert first.context["count"] == 5  # the nudge ran once the flood's transaction committed

    for _ in range(7):  # the nudge is gated for a minute: these wait for beat's periodic run
        bad_call()
    assert report_rejected_webhooks() == {"xianguanjia": 7}
    assert report_rejected_webhooks() == {}  # nothing counted twice
    assert len(alerts()) == 1  # within the 10-minute alert interval: counted, not sent

    later = timezone.now() + timedelta(minutes=11)
    with mock.patch("django.utils.timezone.now", return_value=later):
        bad_call(ip="203.0.113.11")
        assert report_rejected_webhooks() == {"xianguanjia": 1}
    assert [a.context["count"] for a in alerts()] == [5, 8]  # the 7 held back, and the new one


def test_the_recorded_address_is_the_one_the_proxy_saw_and_always_an_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.77").post(
        BAD, data=b"{}", content_type="application/json")
    Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-address").post(
        BAD, data=b"{}", content_type="application/json")
    assert sorted(RejectedWebhook.objects.values_list("remote_addr", flat=True)) == ["127.0.0.1", "203.0.113.77"]
