"""Load N orders (with their events and shipments) into the admin bench database, quickly.

Orders go in with PostgreSQL COPY (psycopg 3 `cursor.copy`), their events and shipments with one
INSERT … SELECT each over the new orders, then VACUUM ANALYZE. The tables are emptied first: this database
(`xianyu_bench_admin` by default) belongs to this bench alone. Called by bench/admin/run.py.

Shape of the data: 3 shops, 6 products, orders spread over the last 365 days; per order 2–4 events
(created, paid, …), and a shipment for every order that reached ready_to_ship. Statuses roughly like a
real shop: most completed, a few paid / awaiting staff / failed / refunded / closed.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

STATUSES = [  # (order status, weight, shipment status or None)
    ("completed", 70, "shipped"),
    ("shipped", 10, "shipped"),
    ("ready_to_ship", 4, "awaiting_staff"),
    ("paid", 3, None),
    ("pending_payment", 3, None),
    ("closed", 6, None),
    ("refunded", 3, "cancelled"),
    ("awaiting_kyc", 1, None),
]
PATHS = {  # the events an order in this status has been through
    "pending_payment": ["pending_payment"],
    "paid": ["pending_payment", "paid"],
    "awaiting_kyc": ["pending_payment", "paid", "awaiting_kyc"],
    "ready_to_ship": ["pending_payment", "paid", "ready_to_ship"],
    "shipped": ["pending_payment", "paid", "ready_to_ship", "shipped"],
    "completed": ["pending_payment", "paid", "shipped", "completed"],
    "closed": ["pending_payment", "closed"],
    "refunded": ["pending_payment", "paid", "refunding", "refunded"],
}


def order_no(i: int) -> str:
    return f"B{i:012d}"


def generate(n: int, *, seed: int = 7, log=print) -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Shop
    from orders.models import Order, Product
    from shipping.models import Shipment

    rnd = random.Random(seed)
    started = time.monotonic()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE orders_order, orders_product, orders_stockmovement RESTART IDENTITY CASCADE")
    shops = []
    for k in range(3):
        shop, _ = Shop.objects.get_or_create(
            platform="xianguanjia", app_key=f"bench-admin-{k}",
            defaults={"name": f"压测店铺 {k + 1}", "app_secret": "bench-secret"})
        shops.append(shop)
    products = []
    for k in range(6):
        shop = shops[k % 3]
        products.append(Product.objects.create(
            shop=shop, item_id=f"9{k:05d}", title=f"压测商品 {k + 1}", kind=Product.Kind.VIRTUAL,
            auto_ship=k % 2 == 0, stock=-1 if k % 3 else 100))

    # Values of encrypted columns, computed once by the fields themselves (same ciphertext on every row).
    receiver = Order._meta.get_field("receiver").get_db_prep_value(
        {"name": "张三", "phone": "13800138000", "address": "上海市浦东新区"}, connection)
    content = Shipment._meta.get_field("content").get_db_prep_value("", connection)

    weights = [w for _s, w, _sh in STATUSES]
    names = [s for s, _w, _sh in STATUSES]
    now = timezone.now()
    span = 365 * 24 * 3600
    cols = ("platform_order_id", "item_id", "item_title", "sku", "quantity", "amount", "receiver", "status",
            "status_before_refund", "platform_status", "has_anomaly", "paid_at", "shipped_at", "closed_at",
            "created_at", "updated_at", "shop_id", "product_id")
    with transaction.atomic(), connection.cursor() as cur:
        raw = cur.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY orders_order ({', '.join(cols)}) FROM STDIN") as copy:
            # Oldest first: ids grow with created_at, as in production.
            offsets = sorted((rnd.random() * span for _ in range(n)), reverse=True)
            statuses = rnd.choices(names, weights=weights, k=n)
            for i in range(n):
                status = statuses[i]
                product = products[i % 6]
                created = now - timedelta(seconds=offsets[i])
                paid = created + timedelta(minutes=1) if status not in ("pending_payment", "closed") else None
                shipped = created + timedelta(minutes=5) if status in ("shipped", "completed") else None
                closed = created + timedelta(hours=1) if status in ("closed", "refunded") else None
                copy.write_row((order_no(i + 1), product.item_id, product.title, "", 1 + (i % 3),
                                f"{9 + (i % 90)}.90", receiver, status, "", "", i % 997 == 0, paid, shipped,
                                closed, created, created, product.shop_id, product.pk))
        log(f"  orders: {n} rows copied in {time.monotonic() - started:.1f} s")
        t = time.monotonic()
        # Events: one row per step of the order's path, created a minute apart.
        values = ", ".join(f"('{s}', ARRAY{p}::text[])" for s, p in PATHS.items())
        cur.execute(f"""
            INSERT INTO orders_orderevent (kind, from_status, to_status, actor, message, data, created_at, order_id)
            SELECT CASE WHEN k = 1 THEN 'created' ELSE 'transition' END,
                   CASE WHEN k = 1 THEN '' ELSE p.path[k - 1] END, p.path[k],
                   CASE WHEN k = 1 THEN 'platform' ELSE 'system' END, '', '{{}}'::jsonb,
                   o.created_at + (k - 1) * interval '1 minute', o.id
            FROM orders_order o
            JOIN (VALUES {values}) AS p(status, path) ON p.status = o.status
            CROSS JOIN LATERAL generate_series(1, array_length(p.path, 1)) AS k""")
        events = cur.rowcount
        log(f"  events: {events} rows in {time.monotonic() - t:.1f} s")
        t = time.monotonic()
        ship_status = {s: sh for s, _w, sh in STATUSES if sh}
        values = ", ".join(f"('{s}', '{sh}')" for s, sh in ship_status.items())
        cur.execute(f"""
            INSERT INTO shipping_shipment (status, due_at, attempts, needs_reconcile, cancel_requested, manual_reason,
                last_error, logistics_company, express_code, waybill_no, content, token, stock_taken, method,
                sent_at, shipped_at, created_at, updated_at, order_id, delivery_way)
            SELECT m.ship, o.created_at + interval '2 minutes', CASE WHEN m.ship = 'shipped' THEN 1 ELSE 0 END,
                   false, false, CASE WHEN m.ship = 'awaiting_staff' THEN '需人工发货' ELSE '' END, '', '', '', '',
                   %s, md5(o.id::text || random()::text) || md5(o.id::text), o.quantity,
                   CASE WHEN m.ship = 'shipped' THEN 'auto' ELSE '' END, o.shipped_at, o.shipped_at,
                   o.created_at, o.created_at, o.id, 'platform_message'
            FROM orders_order o JOIN (VALUES {values}) AS m(status, ship) ON m.status = o.status""", [content])
        shipments = cur.rowcount
        log(f"  shipments: {shipments} rows in {time.monotonic() - t:.1f} s")
    with connection.cursor() as cur:
        t = time.monotonic()
        # VACUUM too, as autovacuum would have done on a table this old: the visibility map lets the bounded
        # counts run as index-only scans.
        cur.execute("VACUUM ANALYZE orders_order, orders_orderevent, shipping_shipment, orders_product")
        log(f"  vacuum analyze: {time.monotonic() - t:.1f} s")
    # The dashboard's daily summary, as beat keeps it (common.stats): the loaded days are past days.
    from common.stats import rebuild_daily_stats, refresh_daily_stats

    t = time.monotonic()
    rebuild_daily_stats()
    days = refresh_daily_stats()
    log(f"  dashboard daily stats: {days} day(s) in {time.monotonic() - t:.1f} s")
    seconds = time.monotonic() - started
    log(f"generated {n} orders, {events} events, {shipments} shipments in {seconds:.1f} s")
    return {"orders": n, "events": events, "shipments": shipments, "seconds": round(seconds, 1)}
