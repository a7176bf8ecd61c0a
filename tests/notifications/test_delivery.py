"""Fan-out, rate limits, the sweeper, crash recovery, bad input, alerts and the admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.test import Client

from accounts.models import Shop
from notifications import services
from notifications.models import AlertGate, Channel, Delivery, Notification, Subscription, Template
from notifications.services import deliveries_sweep, notify
from tests.fakes.notify import FakeAliyunSms, FakeWeCom

pytestmark = pytest.mark.django_db(transaction=True)
S = Delivery.Status


def make_shop(name="店铺A", key="k1") -> Shop:
    return Shop.objects.create(platform="sandbox", name=name, app_key=key, app_secret="s")


# --- rate limit: queue, never drop ----------------------------------------------------------------------


def test_burst_of_100_reaches_wecom_in_full_at_most_20_per_minute(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        with transaction.atomic():
            for i in range(100):
                notify("order.paid", order=f"B{i:03}", item="x", quantity=1, amount="1")
        assert len(fake.accepted) == 20

        for _ in range(30):  # the beat sweeper, every 20 seconds of simulated time
            if len(fake.accepted) == 100:
                break
            clock.advance(seconds=20)
            deliveries_sweep()

        assert len(fake.accepted) == 100 and fake.throttled == 0
        assert set(Delivery.objects.values_list("status", flat=True)) == {S.SENT}
        assert Delivery.objects.filter(attempts=1).count() == 100
        orders = sorted(doc["text"]["content"].split()[1] for _, doc in fake.accepted)
        assert orders == [f"B{i:03}" for i in range(100)]
        times = fake.send_times()
        for t in times:
            assert sum(1 for u in times if t <= u < t + timedelta(seconds=60)) <= 20


def test_budget_counts_sends_in_the_last_60_seconds_from_the_database(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        ch = subscribe("wecom", secret="k", base_url=fake.url)
        ch.rate_limit_per_minute = 3
        ch.save()
        for i in range(5):
            notify("order.paid", order=f"C{i}", item="x", quantity=1, amount="1")
            clock.advance(seconds=10)
        # sent at t=0, 10, 20; the 4th and 5th wait until t=60 and t=70
        assert len(fake.accepted) == 3
        waiting = list(Delivery.objects.filter(status=S.PENDING).order_by("due_at").values_list("due_at", flat=True))
        start = fake.accepted[0][0]
        assert waiting == [start + timedelta(seconds=60), start + timedelta(seconds=60)]
        clock.t = start + timedelta(seconds=60)
        deliveries_sweep()
        assert len(fake.accepted) == 4  # only one slot freed at t=60
        clock.t = start + timedelta(seconds=70)
        deliveries_sweep()
        assert len(fake.accepted) == 5


def test_two_workers_racing_for_the_last_slot_send_once(postgres, clock, subscribe, monkeypatch):
    """The Channel row lock serialises the budget check: with one slot left, concurrent workers send one."""
    import threading

    from django.db import connection

    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        ch = subscribe("wecom", secret="k", base_url=fake.url)
        ch.rate_limit_per_minute = 1
        ch.save()
        from notifications import tasks

        with monkeypatch.context() as patch:
            patch.setattr(tasks.deliver, "delay", lambda *a, **k: None)  # workers below do the sending
            for i in range(6):
                notify("order.paid", order=f"P{i}", item="x", quantity=1, amount="1")
        ids = list(Delivery.objects.values_list("pk", flat=True))
        barrier = threading.Barrier(len(ids))
        results = []

        def worker(pk):
            try:
                barrier.wait()
                results.append(services.delivery_send(delivery_id=pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(pk,)) for pk in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == ["sent"] + ["throttled"] * 5
        assert len(fake.accepted) == 1 and fake.throttled == 0


# --- crash recovery ------------------------------------------------------------------------------------


def test_worker_killed_mid_fan_out_loses_nothing_and_sends_once(clock, subscribe, monkeypatch):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url, events=("order.paid", "stock.low"))
        subscribe("wecom", secret="k", base_url=fake.url, name="second", events=("order.paid",))

        # The broker is gone when the transaction commits: no worker hears of the deliveries.
        from notifications import tasks

        def broker_down(*args, **kwargs):
            raise ConnectionError("broker down")

        with monkeypatch.context() as patch:
            patch.setattr(tasks.deliver, "delay", broker_down)
            notify("order.paid", order="K1", item="x", quantity=1, amount="1")
            notify("stock.low", title="激活码", item_id="i", remaining=1, threshold=5)
        assert Delivery.objects.filter(status=S.PENDING).count() == 3 and fake.accepted == []

        # A worker took one of them and died after marking it `sending` (the request never went out).
        d = Delivery.objects.order_by("pk").first()
        Delivery.objects.filter(pk=d.pk).update(status=S.SENDING, attempts=1, attempted_at=clock(),
                                                lease_until=clock() + services.LEASE)
        assert deliveries_sweep() == 2  # the two pending ones; the leased one is still leased
        assert len(fake.accepted) == 2

        clock.advance(minutes=6)  # the lease expires
        deliveries_sweep()
        clock.advance(minutes=10)
        deliveries_sweep()
        assert len(fake.accepted) == 3
        assert set(Delivery.objects.values_list("status", flat=True)) == {S.SENT}
        assert Delivery.objects.get(pk=d.pk).attempts == 2


def test_sms_left_sending_by_a_dead_worker_becomes_unknown(clock, subscribe):
    with FakeAliyunSms(keys={"ak": "s"}, clock=clock) as fake:
        subscribe("sms", secret="s", base_url=fake.url, access_key_id="ak", sign_name="闲鱼助手",
                  template_code="SMS_1", phone_numbers=["13800000000"])
        with transaction.atomic():
            notify("order.paid", order="U1", item="x", quantity=1, amount="1")
            Delivery.objects.update(status=S.SENDING, attempts=1, attempted_at=clock(),
                                    lease_until=clock() + services.LEASE)
        clock.advance(minutes=6)
        deliveries_sweep()
        clock.advance(hours=1)
        deliveries_sweep()
        d = Delivery.objects.get()
        assert d.status == S.UNKNOWN and "OutId" in d.last_error and fake.requests == []


def test_a_worker_whose_lease_was_taken_over_cannot_overwrite_the_result(clock, subscribe, monkeypatch):
    """Worker A marks the delivery `sending` and calls the channel; the call hangs past the lease, the sweeper
    hands the delivery to worker B, which sends it; then A's call comes back with an error. A's result is not
    recorded: the delivery stays sent, by B's attempt."""
    from common.http import PlatformError
    from notifications.channels.wecom import WeComChannel

    real_send = WeComChannel.send
    calls = []

    def send(channel, message):
        calls.append(message.delivery_id)
        if len(calls) == 1:  # worker A: stalls until its lease has run out and another worker took over
            clock.advance(minutes=6)
            assert deliveries_sweep() == 1
            raise PlatformError("late answer after a gateway timeout", retryable=False)
        return real_send(channel, message)

    monkeypatch.setattr(WeComChannel, "send", send)
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        notify("order.paid", order="L1", item="x", quantity=1, amount="1")
    d = Delivery.objects.get()
    assert len(calls) == 2 and len(fake.accepted) == 1  # B sent it; A never reached the robot
    assert (d.status, d.attempts, d.last_error) == (S.SENT, 2, "")


# --- fan-out rules -------------------------------------------------------------------------------------


def test_fan_out_per_shop_and_context_is_stored_as_json(clock, subscribe):
    a, b = make_shop("A", "ka"), make_shop("B", "kb")
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        everyone = subscribe("wecom", secret="k", base_url=fake.url, name="all")
        only_a = subscribe("wecom", secret="k", base_url=fake.url, name="only-a", events=())
        Subscription.objects.create(event="order.paid", channel=only_a, shop=a)
        a_channel = subscribe("wecom", secret="k", base_url=fake.url, name="a-owned", shop=a)
        off = subscribe("wecom", secret="k", base_url=fake.url, name="off")
        off.enabled = False
        off.save()

        n_a = notify("order.paid", shop=a, order="F1", item="x", quantity=1, amount=Decimal("19.90"),
                     paid_at=datetime(2026, 1, 1, 12, tzinfo=UTC))
        n_b = notify("order.paid", shop=b, order="F2", item="x", quantity=1, amount="1")
        n_none = notify("stock.out", title="x", item_id="i")

    assert set(n_a.deliveries.values_list("channel", flat=True)) == {everyone.pk, only_a.pk, a_channel.pk}
    assert set(n_b.deliveries.values_list("channel", flat=True)) == {everyone.pk}
    assert n_none.deliveries.count() == 0 and Notification.objects.filter(event="stock.out").exists()
    stored = Notification.objects.get(pk=n_a.pk).context
    assert stored["amount"] == "19.90" and stored["paid_at"] == "2026-01-01T12:00:00Z"
    d = Delivery.objects.filter(notification=n_a).first()
    assert d.subject == "订单 F1 已付款" and d.text == "订单 F1 已付款：x × 1，金额 19.90 元。"


def test_unknown_event_raises_and_writes_nothing(subscribe):
    subscribe("webhook", secret="s", url="http://127.0.0.1:9/")
    with pytest.raises(ValueError, match="unknown notification event 'order.payed'"):
        notify("order.payed", order="1")
    assert not Notification.objects.exists() and not Delivery.objects.exists()


def test_context_that_is_not_json_raises_type_error(subscribe):
    with pytest.raises(TypeError, match="JSON-serialisable"):
        notify("order.paid", order=object())
    assert not Notification.objects.exists()


def test_channel_with_missing_settings_fails_clearly_without_a_request(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", base_url=fake.url)  # no key
        subscribe("sms", secret="s", base_url=fake.url, access_key_id="ak")  # no sign_name / template_code
        notify("order.paid", order="M1", item="x", quantity=1, amount="1")
        clock.advance(hours=1)
        deliveries_sweep()
        assert fake.requests == []
    errors = dict(Delivery.objects.values_list("channel__kind", "last_error"))
    assert set(Delivery.objects.values_list("status", flat=True)) == {S.FAILED}
    assert "未设置机器人 key" in errors["wecom"] and "缺少配置项 sign_name" in errors["sms"]
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {0}


# --- templates -----------------------------------------------------------------------------------------


def test_template_override_is_used(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url)
        t = Template(event="order.paid", subject="", body="付款 {{ order }} / {{ amount }}")
        t.full_clean()
        t.save()
        notify("order.paid", order="T1", item="x", quantity=1, amount="5")
        assert fake.accepted[0][1]["text"]["content"] == "付款 T1 / 5"


@pytest.mark.parametrize("body, message", [
    ("{% if order %}未闭合", "模板语法错误"),
    ("订单 {{ order|no_such_filter }}", "模板语法错误"),
    ("订单 {{ ordr }}", "模板引用了该事件不提供的变量"),
    ("订单 {{ quantity|divisibleby:0 }}", "模板无法渲染"),
])
def test_template_that_does_not_render_is_refused_with_a_clear_message(body, message):
    t = Template(event="order.paid", subject="订单 {{ order }}", body=body)
    with pytest.raises(ValidationError) as err:
        t.full_clean()
    assert message in str(err.value.message_dict["body"])


# --- alerts --------------------------------------------------------------------------------------------


def test_rejected_webhooks_alert_once_per_source_per_10_minutes_with_count(clock):
    from common.inbox import webhook_rejected

    def reject(source="xianguanjia"):
        webhook_rejected.send(sender=None, source=source, reason="bad signature", remote_addr="203.0.113.9")

    reject()
    reject()
    reject()
    reject(source="sumsub")
    alerts = Notification.objects.filter(event="security.webhook_rejected").order_by("pk")
    assert [(n.context["source"], n.context["count"]) for n in alerts] == [("xianguanjia", 1), ("sumsub", 1)]
    clock.advance(minutes=10)
    reject()
    assert [(n.context["source"], n.context["count"]) for n in alerts.all()][-1] == ("xianguanjia", 3)
    assert AlertGate.objects.get(key="webhook_rejected:xianguanjia").pending_count == 0


def test_health_alert_when_checks_fail_and_not_repeated_for_30_minutes(clock, monkeypatch):
    import common.health

    report = {"ok": False, "checks": {"database": {"ok": True}, "worker": {"ok": False, "last_seen": None}}}
    monkeypatch.setattr(common.health, "check_health", lambda: report)
    from notifications.tasks import health_alert

    assert health_alert() is True
    assert health_alert() is False
    clock.advance(minutes=30)
    assert health_alert() is True
    n = Notification.objects.filter(event="health.alert").order_by("pk").last()
    assert n.context["failing"] == "worker" and n.context["count"] == 2
    monkeypatch.setattr(common.health, "check_health", lambda: {"ok": True, "checks": {}})
    assert health_alert() is False


def test_daily_summary_gathers_counts(clock, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        subscribe("wecom", secret="k", base_url=fake.url, events=("order.paid", "summary.daily"))
        subscribe("wecom", secret="bad", base_url=fake.url, name="bad")
        notify("order.paid", order="D1", item="x", quantity=1, amount="1")
        figures = services.summary_daily_gather(since=clock() - timedelta(days=1), until=clock() + timedelta(1))
        assert figures["notifications"] == 1 and figures["sent"] == 1 and figures["failed"] == 1
        services.SUMMARY_PROVIDERS.append(lambda since, until: {"订单": 7})
        try:
            clock.advance(seconds=1)
            services.summary_daily_send()
        finally:
            services.SUMMARY_PROVIDERS.pop()
        text = fake.accepted[-1][1]["text"]["content"]
        assert "通知 1 条，投递成功 1 条，失败 1 条" in text and "订单：7" in text


def test_periodic_tasks_are_declared():
    from common.apps import declared_periodic_tasks

    tasks = declared_periodic_tasks()
    assert tasks["notifications: sweep deliveries"] == ("notifications.tasks.sweep_deliveries",
                                                        timedelta(minutes=1))
    assert tasks["notifications: health alert"][1] == timedelta(minutes=5)


# --- admin ---------------------------------------------------------------------------------------------


@pytest.fixture
def admin_client():
    from accounts.models import User

    user = User.objects.create_superuser("root", "root@example.com", "pw")
    c = Client()
    c.force_login(user)
    return c


def test_admin_secret_is_masked_write_only_and_test_action_reports(clock, admin_client):
    with FakeWeCom(keys={"robot-key-123456"}, clock=clock) as fake:
        resp = admin_client.post("/admin/notifications/channel/add/", {
            "name": "运营群", "kind": "wecom", "enabled": "on", "wecom__base_url": fake.url,
            "new_secret": "robot-key-123456", "rate_limit_per_minute": "",
            "subscriptions-TOTAL_FORMS": "0", "subscriptions-INITIAL_FORMS": "0"})
        assert resp.status_code == 302, resp.content.decode()[:2000]
        ch = Channel.objects.get()
        assert ch.secret == "robot-key-123456" and ch.rate_limit == 20

        page = admin_client.get(f"/admin/notifications/channel/{ch.pk}/change/").content.decode()
        from common.fields import mask_secret

        assert "robot-key-123456" not in page and "3456" not in page and mask_secret("set") in page

        resp = admin_client.post("/admin/notifications/channel/", {"action": "send_test", "_selected_action": [ch.pk]},
                                 follow=True)
        assert "测试消息已发送" in resp.content.decode()
        assert "xianyu-ops 的测试消息（渠道：运营群）" in fake.accepted[0][1]["text"]["content"]


def test_admin_retry_now_requeues_a_failed_delivery(clock, admin_client, subscribe):
    with FakeWeCom(keys={"k"}, clock=clock) as fake:
        ch = subscribe("wecom", secret="wrong", base_url=fake.url)
        notify("order.paid", order="R1", item="x", quantity=1, amount="1")
        d = Delivery.objects.get()
        assert d.status == S.FAILED
        ch.secret = "k"
        ch.save()
        resp = admin_client.post("/admin/notifications/delivery/",
                                 {"action": "retry_now", "_selected_action": [d.pk]}, follow=True)
        assert "已重新排队 1 条投递" in resp.content.decode()
        d.refresh_from_db()
        assert d.status == S.SENT and d.attempts == 2 and len(fake.accepted) == 1
        n = d.notification_id
        for url in ("/admin/notifications/delivery/", f"/admin/notifications/delivery/{d.pk}/change/",
                    "/admin/notifications/notification/", f"/admin/notifications/notification/{n}/change/",
                    "/admin/notifications/subscription/", "/admin/notifications/template/add/"):
            assert admin_client.get(url).status_code == 200, url


def test_buyer_event_cannot_be_subscribed_by_a_chat_robot():
    ch = Channel.objects.create(name="群", kind="wecom", secret="k")
    with pytest.raises(ValidationError, match="面向买家的事件"):
        Subscription(event="kyc.link_ready", channel=ch).full_clean()
