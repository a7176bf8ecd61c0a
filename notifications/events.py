"""The catalogue of notification events: key, label, audience and default template.

The label names the event to staff (an English msgid, translated where it is shown). The default subject and
body are the Chinese text staff and buyers receive: content, not msgids.

Templates use Django template syntax and are rendered as plain text (no HTML escaping). `sample` is the
context used to validate a staff-edited template override (it must compile and render with it), so it
lists every variable the callers pass. Callers: keep passing these keys; extra keys are allowed.

Buyer events (audience "buyer") are addressed to one person: the caller passes `recipient=` (a phone number
or an e-mail address) to `notify()`, which is stored encrypted; only SMS, e-mail and webhook channels may
subscribe to them (a buyer's link must never land in a staff chat group). `shipment.delivered` carries the
delivery-page link, never the codes: its context has no code variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

STAFF = "staff"
BUYER = "buyer"


@dataclass(frozen=True)
class Event:
    key: str
    label: str | Promise
    subject: str
    body: str
    audience: str = STAFF
    sample: dict = field(default_factory=dict)


_SHOP = {"shop": "示例店铺"}

EVENTS: dict[str, Event] = {e.key: e for e in [
    Event("order.paid", _("Order paid"), "订单 {{ order }} 已付款",
          "订单 {{ order }} 已付款：{{ item }} × {{ quantity }}，金额 {{ amount }} 元。",
          sample={**_SHOP, "order": "3001", "item": "激活码", "quantity": 1, "amount": "19.99"}),
    Event("shipment.manual_needed", _("Manual shipping needed"), "订单 {{ order }} 需要人工发货",
          "订单 {{ order }}（{{ item }} × {{ quantity }}）需要人工发货。原因：{{ reason }}",
          sample={**_SHOP, "order": "3001", "shipment_id": 1, "item": "激活码", "quantity": 1,
                  "reason": "商品设置为人工发货"}),
    Event("shipment.failed", _("Auto-ship failed"), "订单 {{ order }} 自动发货失败",
          "订单 {{ order }} 自动发货失败（已尝试 {{ attempts }} 次）：{{ error }}",
          sample={**_SHOP, "order": "3001", "shipment_id": 1, "attempts": 3, "error": "平台返回 5xx"}),
    Event("shipment.undelivered", _("Delivery content did not reach the buyer"),
          "订单 {{ order }} 的发货内容未送达买家",
          "订单 {{ order }} 的发货内容未能交到买家手中，已转入人工发货队列，未标记发货。原因：{{ reason }}"
          "{% if count > 1 %}（自上次提醒以来共 {{ count }} 单）{% endif %}",
          sample={**_SHOP, "order": "3001", "shipment_id": 1, "reason": "买家没有可用的手机号或邮箱", "count": 1}),
    Event("shipment.delivered", _("Shipped notice (buyer)"), "您的订单已发货",
          "您好，您在闲鱼购买的「{{ item }}」已发货（订单号 {{ order }}）。请打开链接查看发货内容：{{ url }}",
          audience=BUYER, sample={**_SHOP, "order": "3001", "item": "会员激活码", "quantity": 1,
                                  "url": "https://example.com/delivery/abc/"}),
    Event("stock.low", _("Low stock"), "{{ title }} 库存不足",
          "商品 {{ title }}（{{ item_id }}）库存剩余 {{ remaining }}，低于预警值 {{ threshold }}。",
          sample={**_SHOP, "product_id": 1, "item_id": "item-1", "title": "激活码", "remaining": 3,
                  "threshold": 5, "order": "3001"}),
    Event("stock.out", _("Out of stock"), "{{ title }} 已无库存",
          "商品 {{ title }}（{{ item_id }}）已无库存{% if order %}，订单 {{ order }} 无法自动发货{% endif %}。"
          "{% if reason %}原因：{{ reason }}{% endif %}",
          sample={**_SHOP, "product_id": 1, "item_id": "item-1", "title": "激活码", "remaining": 0,
                  "order": "3001", "quantity": 1, "reason": "已售罄"}),
    Event("kyc.link_ready", _("KYC link (buyer)"), "请完成实名认证",
          "您好，您购买的商品需要完成实名认证后发货，请在 {{ expires }} 前打开链接完成认证：{{ url }}",
          audience=BUYER, sample={**_SHOP, "order": "3001", "url": "https://example.com/verify/abc/",
                                  "expires": "2026-01-01 12:00"}),
    Event("kyc.rejected", _("KYC rejected"), "订单 {{ order }} 实名认证未通过",
          "订单 {{ order }} 的买家实名认证未通过：{{ reason }}",
          sample={**_SHOP, "order": "3001", "reason": "证件不清晰", "final": True}),
    Event("kyc.retry_requested", _("KYC resubmission requested (buyer)"), "实名认证需要重新提交",
          "您好，您的实名认证未能通过审核：{{ reason }}。请在 {{ expires }} 前重新打开链接按提示补充或重新上传："
          "{{ url }}",
          audience=BUYER, sample={**_SHOP, "order": "3001", "url": "https://example.com/verify/abc/",
                                  "expires": "2026-01-01 12:00", "reason": "证件照片不清晰"}),
    Event("kyc.reminder", _("KYC reminder (buyer)"), "请尽快完成实名认证",
          "提醒：您购买的商品需要完成实名认证后才能发货，认证链接将于 {{ expires }} 过期，请尽快完成：{{ url }}",
          audience=BUYER, sample={**_SHOP, "order": "3001", "url": "https://example.com/verify/abc/",
                                  "expires": "2026-01-01 12:00"}),
    Event("kyc.link_expired", _("KYC link expired"), "订单 {{ order }} 认证链接已过期",
          "订单 {{ order }} 的实名认证链接已过期，买家未完成认证。{{ action }}",
          sample={**_SHOP, "order": "3001", "action": "订单将在平台关闭。"}),
    Event("kyc.close_needed", _("Order to be closed by hand (KYC)"), "订单 {{ order }} 需要人工关闭",
          "订单 {{ order }} {{ why }}，需要关闭，但无法在平台自动关闭：{{ error }}。请在平台后台关闭该订单，"
          "然后在「实名认证」中标记为已关闭。",
          sample={**_SHOP, "order": "3001", "why": "实名认证未通过", "error": "闲管家不提供关闭订单接口"}),
    Event("merchant.status_changed", _("Merchant onboarding status changed"), "商户 {{ merchant }} 状态变更",
          "商户 {{ merchant }}{% if shop_name %}（{{ shop_name }}）{% endif %}的进件状态由 {{ old_status }} 变为 "
          "{{ new_status }}。{{ note }}",
          sample={"merchant": "示例商户", "shop_name": "示例门店", "application": 1, "old_status": "审核中",
                  "new_status": "已通过", "note": ""}),
    Event("merchant.audit_overdue", _("Merchant review overdue"), "商户 {{ merchant }} 审核超时",
          "商户 {{ merchant }}{% if shop_name %}（{{ shop_name }}）{% endif %}已提交 {{ days }} 天仍未审核完成"
          "{% if order_no %}（申请单 {{ order_no }}）{% endif %}，请跟进。",
          sample={"merchant": "示例商户", "shop_name": "示例门店", "application": 1, "days": 1.2,
                  "order_no": "2026000000000001"}),
    Event("merchant.confirm_requested", _("Face-to-face payment confirmation link (merchant)"),
          "请确认支付宝当面付开通申请",
          "{{ merchant }} 您好：{% if shop_name %}「{{ shop_name }}」的{% endif %}支付宝当面付开通申请已审核通过，"
          "请在 15 天内用支付宝打开以下链接确认：{{ url }}",
          audience=BUYER, sample={"merchant": "示例商户", "shop_name": "示例门店",
                                  "url": "https://example.com/confirm/1", "application": 1}),
    Event("security.webhook_rejected", _("Webhook call refused (security alert)"), "安全告警：{{ source }} 回调被拒绝",
          "来源 {{ source }} 的回调被拒绝 {{ count }} 次（自上次告警以来）。最近一次：{{ reason }}，"
          "来自 {{ remote_addr }}。",
          sample={"source": "xianguanjia", "reason": "签名错误", "remote_addr": "203.0.113.7", "count": 3}),
    Event("inbox.failed", _("Platform message processing failed"), "{{ source }} 消息处理失败，已停止自动重试",
          "{{ source }} 消息 #{{ event_id }}（{{ topic }}{% if order %}，订单 {{ order }}{% endif %}）已处理 "
          "{{ attempts }} 次仍失败，不再自动重试：{{ error }}"
          "{% if count > 1 %}\n自上次提醒以来共 {{ count }} 条消息失败。{% endif %}"
          "\n排除原因后，在后台「订单消息」中重放，或运行 manage.py replay_events --failed。",
          sample={"source": "xianguanjia", "topic": "order", "event_id": 42, "order": "3001", "attempts": 8,
                  "error": "PlatformError: 平台返回 5xx", "count": 1}),
    Event("order.anomaly", _("Order status anomaly"), "订单 {{ order }} 状态异常",
          "订单 {{ order }} 状态异常：平台状态 {{ platform_status }} 无法从「{{ status }}」到达「{{ target }}」，"
          "订单已标记为异常，未做任何变更。"
          "{% if count > 1 %}\n自上次提醒以来共 {{ count }} 笔订单出现异常。{% endif %}"
          "\n请在后台「订单」中按“异常”筛选，核对平台后台的实际状态后处理。",
          sample={**_SHOP, "order": "3001", "status": "已关闭", "target": "已发货", "platform_status": "21",
                  "count": 1}),
    Event("health.alert", _("System health alert"), "系统健康告警",
          "以下检查未通过：{{ failing }}。{% for name, detail in details.items %}\n{{ name }}：{{ detail }}"
          "{% endfor %}",
          sample={"failing": "worker, inbox_backlog", "details": {"worker": "最近心跳：无",
                                                                  "inbox_backlog": "积压 120 条"}}),
    Event("summary.daily", _("Daily summary"), "每日汇总 {{ since }} 至 {{ until }}",
          "通知 {{ notifications }} 条，投递成功 {{ sent }} 条，失败 {{ failed }} 条，待确认 {{ unknown }} 条。"
          "{% for k, v in figures.items %}\n{{ k }}：{{ v }}{% endfor %}",
          sample={"since": "2026-01-01 00:00", "until": "2026-01-02 00:00", "notifications": 10, "sent": 9,
                  "failed": 1, "unknown": 0, "figures": {"订单": 5}}),
    Event("system.test", _("Test message"), "测试消息",
          "这是一条来自 xianyu-ops 的测试消息（渠道：{{ channel }}）。",
          sample={"channel": "示例渠道"}),
]}


def get_event(key: str) -> Event:
    try:
        return EVENTS[key]
    except KeyError:
        raise ValueError(f"unknown notification event {key!r}; known events: {', '.join(sorted(EVENTS))}") from None


def event_choices() -> list[tuple[str, str]]:
    """Choices for model fields (a callable, so adding an event needs no migration)."""
    return [(e.key, e.label) for e in EVENTS.values()]
