"""Logging as configured in settings.LOGGING: each record is written once — one handler on its way to the root
— and a 4xx/5xx answer is told once (by django.request), not again by runserver's request line."""

import logging

import pytest


def handlers_on_the_way(name: str) -> list[logging.Handler]:
    """Every handler a record logged on `name` passes through (logger, its parents, until propagation stops),
    except the ones that write nothing (NullHandler) and the ones pytest adds to capture logs."""
    found, logger = [], logging.getLogger(name)
    while logger is not None:
        found.extend(h for h in logger.handlers
                     if not isinstance(h, logging.NullHandler) and not type(h).__module__.startswith("_pytest"))
        if not logger.propagate:
            break
        logger = logger.parent
    return found


@pytest.mark.parametrize("name", ["django.request", "django.server", "django", "celery.app.trace", "orders.services",
                                  "common.inbox"])
def test_every_record_reaches_exactly_one_handler(name):
    assert len(handlers_on_the_way(name)) == 1, [type(h).__name__ for h in handlers_on_the_way(name)]


def test_runserver_request_lines_are_kept_for_successes_only():
    server = logging.getLogger("django.server")

    def record(status):
        r = server.makeRecord("django.server", logging.INFO, __file__, 1, '"GET /x/ HTTP/1.1" %s 10', (status,),
                              None, extra={"status_code": status})
        return bool(server.filter(r))

    assert record(200) and record(302)
    assert not record(404) and not record(500)  # django.request tells these, once
