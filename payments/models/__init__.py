"""The payments app's models: onboarding (merchants, applications, the Alipay call log) and trades
(trades, refunds, the notification inbox)."""

from .onboarding import (  # noqa: F401
    ALIPAY_ORDER_STATUS,
    FINAL,
    PICTURE_FIELDS,
    POLLED,
    RESUBMITTABLE,
    TRANSITIONS,
    AlipayCall,
    ApplicationStatus,
    CallOutcome,
    FacetofaceApplication,
    Merchant,
    SubmitStep,
    TokenState,
    Work,
)
from .trades import (  # noqa: F401
    ALIPAY_TRADE_STATUS,
    HOLDING,
    PAID_STATES,
    AlipayInboxEvent,
    Refund,
    RefundStatus,
    Trade,
    TradeStatus,
)
