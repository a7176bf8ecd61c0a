"""The payments admin: merchants and face-to-face applications (onboarding), trades, refunds, the Alipay
call log and notification inbox. Staff act through actions that call one service each."""

from . import onboarding, trades  # noqa: F401
