"""A Celery message in one Redis `LPUSH` (issue 11, part 1: the webhook's nudge).

`task.delay()` on the Redis transport costs a webhook about 40 % of its request: kombu builds a new redis-py
client for every publish (copying ~170 response callbacks), goes through Celery's router, annotations,
signals and kombu's producer. The message that lands in Redis is still one JSON document pushed onto the
queue's list. `fast_delay(task, *args)` builds that same document (Celery's own `as_task_v2` for the headers
and body, kombu's Redis envelope around it) and pushes it with one `LPUSH` on a client kept per process. The
worker cannot tell the difference: it is an ordinary Celery message (acks_late, visibility timeout, time
limits all as before); `tests/common/test_nudge.py` compares it with the one `task.delay()` publishes.

Only where that is exactly equivalent: a `redis://` broker without a key prefix, the task routed to a plain
queue by the default (direct, anonymous) exchange, no eager mode. Anything else (the embedded filesystem
broker, eager tests, custom routes) goes through `task.delay()`. Either way the database row is the truth:
a failed nudge is logged and the sweeper dispatches the row later (DESIGN.md §4.2)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from functools import lru_cache

_LOCK = threading.Lock()
_CLIENTS: dict[tuple, object] = {}


def _client(url: str, options: dict):
    """One redis-py client per broker URL per process (it is thread-safe and reconnects after a fork).
    At most two attempts, no sleep between them, bounded by the broker's socket timeouts, like
    CELERY_TASK_PUBLISH_RETRY_POLICY for `task.delay()`."""
    key = (url, options.get("socket_timeout"), options.get("socket_connect_timeout"))
    client = _CLIENTS.get(key)
    if client is None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        with _LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                client = redis.Redis.from_url(
                    url, socket_timeout=options.get("socket_timeout") or 1.0,
                    socket_connect_timeout=options.get("socket_connect_timeout") or 1.0,
                    retry=Retry(NoBackoff(), 1), health_check_interval=0)
                if len(_CLIENTS) > 8:
                    _CLIENTS.clear()
                _CLIENTS[key] = client
    return client


def fast_path(task) -> tuple[str, str, dict] | None:
    """(broker url, queue list, transport options) when `fast_delay` is equivalent to `task.delay`."""
    conf = task.app.conf
    if conf.task_always_eager:
        return None
    url = conf.broker_url
    if not isinstance(url, str) or not url.startswith("redis://") or ";" in url:
        return None
    options = conf.broker_transport_options or {}
    if options.get("global_keyprefix") or options.get("sep") or conf.task_routes or conf.task_queues:
        return None
    # Celery's default route: the default queue, through a direct exchange of the same name whose binding
    # kombu's Redis transport short-cuts to the queue's list.
    if getattr(task, "queue", None) or conf.task_default_exchange_type != "direct":
        return None
    # The message as built here: JSON, no compression, default priority, protocol 2.
    if (task.serializer or conf.task_serializer) != "json" or conf.task_compression or task.priority is not None \
            or conf.task_default_priority is not None or conf.task_protocol != 2:
        return None
    queue = conf.task_default_queue
    if conf.task_default_routing_key not in (None, queue) or conf.task_default_exchange not in (None, queue):
        return None
    return url, queue, options


def message(task, args: tuple, *, task_id: str | None = None) -> dict:
    """The JSON document kombu's Redis transport stores for `task.delay(*args)`."""
    app = task.app
    conf = app.conf
    task_id = task_id or str(uuid.uuid4())
    time_limit = task.time_limit if task.time_limit is not None else conf.task_time_limit
    soft_time_limit = task.soft_time_limit if task.soft_time_limit is not None else conf.task_soft_time_limit
    ignore_result = task.ignore_result if task.ignore_result is not None else conf.task_ignore_result
    headers, properties, body, _ = app.amqp.as_task_v2(
        task_id, task.name, args, {}, reply_to=app.thread_oid, time_limit=time_limit,
        soft_time_limit=soft_time_limit, root_id=task_id, origin=_origin(),
        ignore_result=ignore_result)
    payload = json.dumps(body).encode()
    envelope = {
        "body": base64.b64encode(payload).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {**properties, "delivery_mode": 2, "delivery_info": {"exchange": "", "routing_key": None},
                       "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4())},
    }
    return envelope


@lru_cache(maxsize=1)
def _origin() -> str:
    from celery.utils.nodenames import anon_nodename

    return anon_nodename()


_TEMPLATES: dict[tuple, tuple | None] = {}


def _conf_key(task) -> tuple:
    """What decides the fast path and the message, read cheaply: Celery settings changed at run time (they
    land in `conf.changes`: tests switch brokers and queues this way) and the Django settings object (a new
    one under override_settings). Reading Celery's conf itself costs ~25 µs a key (a chain of lookups through
    Django's lazy settings), more than the LPUSH."""
    from django.conf import settings

    changes = task.app.conf.changes
    return (task.name, changes.get("task_always_eager"), changes.get("broker_url"),
            changes.get("task_default_queue"), changes.get("task_routes"), changes.get("task_queues"),
            id(changes.get("broker_transport_options")), id(settings._wrapped))


def _template(task) -> tuple | None:
    """(client, queue, headers, properties) for `task`'s messages, or None when only `task.delay` is right."""
    path = fast_path(task)
    if path is None:
        return None
    url, queue, options = path
    doc = message(task, (0,), task_id="-")
    doc["properties"]["delivery_info"]["routing_key"] = queue
    return _client(url, options), queue, doc


def fast_delay(task, *args) -> bool:
    """Publish `task(*args)` with one LPUSH if that is equivalent to `task.delay(*args)`; False if not
    (then call `task.delay`). Raises what redis-py raises when the broker is unreachable. `args` are plain
    JSON values (ids)."""
    key = _conf_key(task)
    try:
        tmpl = _TEMPLATES[key]
    except KeyError:
        tmpl = _TEMPLATES[key] = _template(task)
        if len(_TEMPLATES) > 64:
            _TEMPLATES.clear()
    if tmpl is None:
        return False
    client, queue, doc = tmpl
    task_id = str(uuid.uuid4())
    body = json.dumps([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])
    headers = {**doc["headers"], "id": task_id, "root_id": task_id, "argsrepr": repr(tuple(args))}
    properties = {**doc["properties"], "correlation_id": task_id, "delivery_tag": str(uuid.uuid4())}
    client.lpush(queue, json.dumps({**doc, "body": base64.b64encode(body.encode()).decode(),
                                    "headers": headers, "properties": properties}))
    return True
