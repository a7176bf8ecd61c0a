"""The fake Alipay gateway (payments.fake_gateway, shared with `manage.py fake_alipay`) served on the tests'
fake server. Keys are generated per test session (`keys()`): nothing private is committed."""

from __future__ import annotations

import time
from functools import lru_cache

from payments.fake_gateway import FakeAlipayGateway, generate_key_pair

from .server import FakePlatform, Request, Response

APP_ID = "2021000000000042"


@lru_cache(maxsize=1)
def keys() -> dict[str, str]:
    """This session's RSA keys: our app's pair and the fake Alipay's pair."""
    app_private, app_public = generate_key_pair()
    alipay_private, alipay_public = generate_key_pair()
    return {"app_private": app_private, "app_public": app_public, "alipay_private": alipay_private,
            "alipay_public": alipay_public}


class FakeAlipay(FakeAlipayGateway, FakePlatform):
    """`with FakeAlipay(clock=…) as fake:`; `fake.url + "/gateway.do"` is the gateway."""

    def __init__(self, **kwargs):
        FakePlatform.__init__(self)
        k = keys()
        kwargs.setdefault("app_id", APP_ID)
        FakeAlipayGateway.__init__(self, app_public_key=k["app_public"], alipay_private_key=k["alipay_private"],
                                   **kwargs)
        self.base_url = self.url

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/gateway.do"

    def handle(self, req: Request) -> Response | None:
        r = self.respond(req.method, req.path, req.query, req.headers, req.body)
        if r.delay:
            time.sleep(r.delay)
        if r.drop:
            return None
        return Response(r.status, r.body, headers={"Content-Type": r.content_type})
