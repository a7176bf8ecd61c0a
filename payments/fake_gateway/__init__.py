"""A local stand-in for Alipay's open-platform gateway: the parts this project calls, checked the way
Alipay checks them (protocols/alipay.md), implemented here independently of python-alipay-sdk.

Served by `manage.py fake_alipay` (so a new user can onboard a merchant and take a payment from the admin
without Alipay) and by the tests (tests/fakes/alipay.py, on the shared fake server). Both use this class.

Every request must carry `app_id`, `method`, `charset`, `sign_type=RSA2`, `version=1.0`, a `timestamp` in
Beijing time within ten minutes of now, and an RSA2 `sign` over every non-empty text parameter but `sign`
(sorted `k=v&…`, files excluded), verified with the app's public key. Answers are signed with the fake's
own "Alipay" private key over the exact text of the response node. Calls on a merchant's behalf need an
`app_auth_token` the fake issued.

Onboarding: `create` opens a batch (`init`, one hour to live); `facetoface.sign` checks the parameters and
pictures (png/bmp/gif/jpg/jpeg by content, 5 KB–5 MB); `confirm` submits it (`MERCHANT_AUDITING`); the
application then moves on by itself when `audit_seconds` / `confirm_seconds` are set (the runnable fake),
or when a test says so (`set_order_status`). On `MERCHANT_CONFIRM_SUCCESS` with `sign_and_auth` the fake
authorises the app for the merchant and (if it has somewhere to send it) posts an `open_app_auth_notify`.

Trades: `precreate` (idempotent per out_trade_no and amount) → a QR code; `pay()` plays the buyer and
returns the signed `trade_status_sync` notification; `refund` refunds an `out_request_no` once (a repeat
answers `fund_change=N`), never beyond the paid amount; `fastpay.refund.query` finds a refund or says
nothing. `fail_next()` injects faults: HTTP 500, a dropped connection before or after the work, a stall
after the work (client timeout), Alipay's system error, a business refusal, a bad answer signature.

Sub-codes marked "(fake)" are this fake's own where the protocol notes give none.
"""

from .base import FakeResponse, generate_key_pair, sample_png, sign_text, signing_text  # noqa: F401
from .gateway import FakeAlipayGateway  # noqa: F401
