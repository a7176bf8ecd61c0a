"""Shipping in batches (`shipment_dispatch_due`, the ship_shipment task): one transaction marks several due
shipments, then each is sent and recorded on its own. Each shipment keeps the exactly-once protocol: a failed
call leaves only that one to retry, a worker that dies mid-batch leaves the rest to be reconciled after their
lease, and attempts not started in time go back unsent."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, Product
from shipping import services, tasks
from shipping.models import CardCode, Handover, Shipment
from shipping.services import LEASE, cardcode_import, shipment_dispatch_due
from tests.fakes.server import Response

from .conftest import paid, travel

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) + timedelta(hours=1)
NOS = ["3002000000000000001", "3002000000000000002", "3002000000000000003"]


@pytest.fixture
def pool(fake, shop):
    """A zero-delay virtual product delivered through 闲管家's card pool (the bench's product)."""
    product = Product.objects.create(shop=shop, item_id="card-1", title="会员激活码", kind="virtual", auto_ship=True,
                                     card_kind_id="84", delivery_template="激活码：{{ codes }}")
    cardcode_import(product=product, lines=["B-1", "B-2", "B-3", "B-4"])
    fake.add_kind(84, item_id="card-1")
    return product


@pytest.fixture
def three(fake, shop, pool) -> list[Shipment]:
    return [paid(fake, shop, no).shipment for no in NOS]


def state(shipments) -> list[tuple[str, int, bool]]:
    return [(s.status, s.attempts, s.needs_reconcile)
            for s in Shipment.objects.filter(pk__in=[s.pk for s in shipments]).order_by("pk")]


def ship_calls(fake) -> list[int]:
    return [fake.ship_calls[no] for no in NOS]


def buyers_codes(fake) -> list[list[str]]:
    return [[c["card_no"] if isinstance(c, dict) else c for c in fake.buyer_received.get(no, [])] for no in NOS]


def fail_send_once(fake, order_no: str, status: int = 503) -> None:
    """The platform answers `status` to the first card-pool send of `order_no` (before doing anything)."""
    real, failed = fake.handle, []

    def flaky(req):
        if req.path.endswith("/dummy/send") and not failed and json.loads(req.body).get("order_no") == order_no:
            failed.append(order_no)
            return Response(status, {"code": status, "msg": "server error"})
        return real(req)

    fake.handle = flaky


def test_one_batch_ships_every_due_shipment_once_with_fewer_queries_than_one_by_one(fake, three):
    with travel(T0), CaptureQueriesContext(connection) as ctx:
        results = shipment_dispatch_due(limit=10, now=T0)
    assert results == {s.pk: "shipped" for s in three}
    assert state(three) == [("shipped", 1, False)] * 3
    assert ship_calls(fake) == [1, 1, 1]
    assert Order.objects.filter(platform_order_id__in=NOS, status="shipped").count() == 3
    assert CardCode.objects.filter(status="delivered").count() == 3
    assert Handover.objects.filter(status="delivered").count() == 3
    # one mark transaction for the batch, then per shipment: cancel check, upload step, one record transaction
    assert len(ctx.captured_queries) <= 4 + 3 * 13

    with travel(T0):
        assert shipment_dispatch_due(limit=10, now=T0) == {}  # nothing is due any more
    assert ship_calls(fake) == [1, 1, 1]


def test_a_failed_call_leaves_only_its_shipment_to_retry_and_a_second_run_changes_nothing(fake, three):
    fail_send_once(fake, NOS[1])
    with travel(T0):
        results = shipment_dispatch_due(limit=10, now=T0)
    assert [results[s.pk] for s in three] == ["shipped", "retry_wait", "shipped"]
    assert state(three) == [("shipped", 1, False), ("retry_wait", 1, True), ("shipped", 1, False)]
    failed = Shipment.objects.get(pk=three[1].pk)
    assert "503" in failed.last_error and failed.due_at > T0
    assert Order.objects.get(platform_order_id=NOS[1]).status == "ready_to_ship"

    with travel(T0):
        assert shipment_dispatch_due(limit=10, now=T0) == {}
        assert tasks.ship_shipment(three[1].pk) == "not-due"
    assert state(three) == [("shipped", 1, False), ("retry_wait", 1, True), ("shipped", 1, False)]
    assert fake.calls("dummy_send") == 2 and ship_calls(fake) == [1, 0, 1]  # the 503 came before the platform

    later = T0 + timedelta(seconds=301)  # SHIP_RETRY_DELAY_SECONDS later: reconciled (not shipped), then sent
    with travel(later):
        assert shipment_dispatch_due(limit=10, now=later) == {three[1].pk: "shipped"}
    assert state(three) == [("shipped", 1, False), ("shipped", 2, False), ("shipped", 1, False)]
    assert ship_calls(fake) == [1, 1, 1]
    assert [len(codes) for codes in buyers_codes(fake)] == [1, 1, 1]


def test_a_worker_killed_mid_batch_leaves_the_rest_to_be_reconciled_never_sent_twice(fake, three, monkeypatch):
    real, recorded = services._record_handover, []

    def killed_on_the_second(a, o):
        if recorded:
            raise SystemExit("worker killed after the second platform call")
        recorded.append(a.shipment_id)
        return real(a, o)

    monkeypatch.setattr(services, "_record_handover", killed_on_the_second)
    with travel(T0), pytest.raises(SystemExit):
        shipment_dispatch_due(limit=10, now=T0)
    monkeypatch.undo()
    # The first is shipped; the second went through on the platform but was not recorded; the third was marked
    # and never called. Both stay `sending` under their lease: nobody may take them yet.
    assert state(three) == [("shipped", 1, False), ("sending", 1, False), ("sending", 1, False)]
    assert ship_calls(fake) == [1, 1, 0]
    with travel(T0 + timedelta(minutes=1)):
        assert shipment_dispatch_due(limit=10, now=T0 + timedelta(minutes=1)) == {}
        assert tasks.ship_shipment(three[2].pk) == "busy"

    expired = T0 + LEASE + timedelta(seconds=1)
    with travel(expired):
        assert shipment_dispatch_due(limit=10, now=expired) == {three[1].pk: "shipped", three[2].pk: "shipped"}
    assert ship_calls(fake) == [1, 1, 1]  # the second was proven by kam/list, not sent again
    assert state(three) == [("shipped", 1, False), ("shipped", 2, False), ("shipped", 2, False)]
    assert [len(codes) for codes in buyers_codes(fake)] == [1, 1, 1]


def test_attempts_not_started_within_the_batch_budget_go_back_unsent(fake, three):
    with travel(T0):
        results = shipment_dispatch_due(limit=10, now=T0, budget=timedelta(seconds=-1))
    assert [results[s.pk] for s in three] == ["retry_wait"] * 3
    assert state(three) == [("retry_wait", 0, False)] * 3  # the attempt is not counted: nothing was sent
    assert fake.calls("dummy_send") == 0 and fake.calls("storage_create") == 0
    assert all(s.due_at <= T0 and s.lease_until is None
               for s in Shipment.objects.filter(pk__in=[s.pk for s in three]))

    with travel(T0):
        assert set(shipment_dispatch_due(limit=10, now=T0).values()) == {"shipped"}
    assert ship_calls(fake) == [1, 1, 1]
    assert state(three) == [("shipped", 1, False)] * 3


def test_the_task_ships_its_shipment_with_the_other_due_ones_and_a_later_message_is_a_read(fake, three):
    assert tasks.ship_shipment(three[1].pk) == "shipped"
    assert state(three) == [("shipped", 1, False)] * 3
    with CaptureQueriesContext(connection) as ctx:
        assert tasks.ship_shipment(three[0].pk) == "shipped"
    assert len(ctx.captured_queries) == 1
    assert ship_calls(fake) == [1, 1, 1]


def test_a_batch_respects_its_limit_and_rows_other_workers_hold(fake, three):
    with travel(T0):
        first = shipment_dispatch_due(limit=2, now=T0)
        assert sorted(first) == sorted(s.pk for s in three[:2])
        assert shipment_dispatch_due(limit=2, now=T0) == {three[2].pk: "shipped"}
    assert ship_calls(fake) == [1, 1, 1]


def test_the_task_s_own_shipment_is_in_its_batch_even_when_older_ones_fill_the_limit(fake, three, settings):
    settings.SHIP_BATCH_SIZE = 1
    assert tasks.ship_shipment(three[2].pk) == "shipped"
    assert state(three) == [("scheduled", 0, False), ("scheduled", 0, False), ("shipped", 1, False)]
    assert ship_calls(fake) == [0, 0, 1]
