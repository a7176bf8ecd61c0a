"""KYC under real row locks (PostgreSQL): the same webhook three times at once, and a result racing the link's
expiry. Whatever the interleaving, the order is shipped once or closed once, never both."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from kyc.models import SumsubInboxEvent, Verification
from kyc.work import kyc_sweep
from orders.models import Order, SandboxCall, SandboxOrder
from shipping.tasks import sweep_shipments

from .conftest import deliver, kyc_product, open_session, sandbox_paid, verification_of

pytestmark = pytest.mark.django_db(transaction=True)


def run_together(*fns):
    barrier = threading.Barrier(len(fns))
    results: list = [None] * len(fns)
    errors: list = []

    def worker(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return results


def started(sumsub, shop, order_no):
    kyc_product(shop)
    order = sandbox_paid(shop, order_no)
    v = verification_of(order)
    assert open_session(v).status_code == 200
    return order, Verification.objects.select_related("applicant").get(pk=v.pk)


def test_the_same_webhook_three_times_at_once_ships_once(postgres, sumsub, sandbox_shop):
    order, v = started(sumsub, sandbox_shop, "CC1")
    hook = sumsub.review(v.applicant.applicant_id, answer="GREEN")

    answers = run_together(*[lambda: deliver(hook).status_code] * 3)

    assert answers == [200, 200, 200]
    assert SumsubInboxEvent.objects.count() == 1
    assert Order.objects.get(pk=order.pk).status == "shipped"
    assert SandboxCall.objects.filter(method="ship_virtual", response__ok=True).count() == 1


def test_a_result_racing_the_expiry_ends_one_way_only(postgres, sumsub, sandbox_shop, clock):
    order, v = started(sumsub, sandbox_shop, "CC2")
    applicant_id = v.applicant.applicant_id
    hook = sumsub.review(applicant_id, answer="GREEN")
    sumsub.applicants[applicant_id]["review"] = {"reviewStatus": "init", "levelName": v.level_name}  # not yet
    clock.advance(hours=72, seconds=1)

    run_together(lambda: deliver(hook).status_code, kyc_sweep)
    # Whatever the race left due is done now: a close on the platform, or a shipment whose dispatch found the
    # order locked by the other side (the shipping sweeper's job).
    kyc_sweep()
    sweep_shipments()

    v = Verification.objects.get(pk=v.pk)
    shipped = SandboxCall.objects.filter(method="ship_virtual", response__ok=True).count()
    closed = SandboxCall.objects.filter(method="close", response__ok=True).count()
    assert shipped + closed == 1
    expected = {"approved": ("shipped", "shipped"), "expired": ("closed", "closed")}[v.status]
    assert (Order.objects.get(pk=order.pk).status, SandboxOrder.objects.get(order_no="CC2").status) == expected
