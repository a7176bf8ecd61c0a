import pytest
from django.utils import timezone

from notifications.models import Channel, Subscription
from tests.fakes.notify import Clock


@pytest.fixture
def clock(monkeypatch):
    """Time travel: django.utils.timezone.now returns this clock's time (services, auto_now fields)."""
    c = Clock()
    monkeypatch.setattr(timezone, "now", c)
    return c


@pytest.fixture
def subscribe():
    def make(kind: str, *, events=("order.paid",), secret: str = "", shop=None, name: str | None = None,
             **config) -> Channel:
        channel = Channel.objects.create(name=name or f"{kind} 测试", kind=kind, config=config, secret=secret,
                                         shop=shop)
        for event in events:
            Subscription.objects.create(event=event, channel=channel)
        return channel

    return make
