"""Aliyun SMS (dysmsapi SendSms, RPC style, HMAC-SHA1 signature).

GET {base_url}/?Action=SendSms&Version=2017-05-25&PhoneNumbers&SignName&TemplateCode&TemplateParam&OutId
plus the common parameters; StringToSign = "GET&%2F&" + enc(canonical query), Signature =
base64(HMAC-SHA1(secret + "&", StringToSign)), enc = RFC 3986 (space %20, * %2A, ~ kept).

config: access_key_id, sign_name, template_code (or template_codes: {event: code}), phone_numbers (staff
events; buyer events go to the notification's recipient), template_params ({template variable: context key};
default {"content": the rendered text}), region_id. secret: the AccessKey Secret.

Not idempotent: a send whose outcome is unknown (read timeout, dropped connection, 5xx, isp.SYSTEM_ERROR) is
never resent automatically; the delivery becomes `unknown` for staff. OutId = "ntf-<delivery id>" so staff can
find the message in the SMS console (QuerySendDetails is not implemented)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import UTC
from urllib.parse import quote_plus

from django.utils import timezone

from common.http import ConfigurationError, PlatformError, RateLimited

from .base import BaseChannel, Message, as_list

RATE_LIMITED = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "isv.DAY_LIMIT_CONTROL"}
UNKNOWN = {"isp.SYSTEM_ERROR", "ServiceUnavailable", "InternalError"}
BAD_CONFIG = {"SignatureDoesNotMatch", "InvalidAccessKeyId.NotFound", "InvalidAccessKeyId.Inactive",
              "isv.SMS_SIGNATURE_ILLEGAL", "isv.SMS_TEMPLATE_ILLEGAL", "isv.TEMPLATE_MISSING_PARAMETERS",
              "isv.AMOUNT_NOT_ENOUGH", "isv.ACCOUNT_NOT_EXISTS", "isv.ACCOUNT_ABNORMAL", "isv.SIGN_NAME_ILLEGAL",
              "isv.INVALID_PARAMETERS", "isv.PARAM_LENGTH_LIMIT", "Forbidden.RAM", "MissingParameter"}


def percent_encode(value: str) -> str:
    """Aliyun's POP encoding: form-encode, then fix the three characters it gets wrong for RFC 3986."""
    return quote_plus(value, encoding="utf-8").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "GET") -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsChannel(BaseChannel):
    kind = "sms"
    default_base_url = "https://dysmsapi.aliyuncs.com"
    default_rate_limit = 10
    idempotent = False

    def validate(self) -> None:
        self.require("access_key_id", "sign_name")
        if not (self.config.get("template_code") or self.config.get("template_codes")):
            raise ConfigurationError("sms: 缺少配置项 template_code")
        self.require_secret("AccessKey Secret")

    def phones(self, message: Message) -> list[str]:
        return [message.recipient] if message.recipient else as_list(self.config.get("phone_numbers"))

    def template_param(self, message: Message) -> dict:
        mapping = self.config.get("template_params")
        if not mapping:
            return {"content": message.text}
        return {var: str(message.context.get(key, "")) for var, key in mapping.items()}

    def params(self, message: Message) -> dict[str, str]:
        code = (self.config.get("template_codes") or {}).get(message.event) or self.config.get("template_code")
        if not code:
            raise ConfigurationError(f"sms: 事件 {message.event} 没有对应的短信模板编号")
        phones = self.phones(message)
        if not phones:
            raise ConfigurationError("sms: 没有接收短信的手机号（phone_numbers）")
        params = {
            "Action": "SendSms", "Version": "2017-05-25", "RegionId": self.config.get("region_id", "cn-hangzhou"),
            "AccessKeyId": self.config["access_key_id"], "Format": "JSON", "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0", "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": timezone.now().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "PhoneNumbers": ",".join(phones), "SignName": self.config["sign_name"], "TemplateCode": code,
            "TemplateParam": json.dumps(self.template_param(message), ensure_ascii=False, separators=(",", ":")),
        }
        if message.delivery_id:
            params["OutId"] = f"ntf-{message.delivery_id}"
        params["Signature"] = aliyun_signature(params, self.secret)
        return params

    def send(self, message: Message) -> str:
        params = self.params(message)
        query = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        client = self.client()
        try:
            resp = client.send("GET", f"{self.base_url()}/?{query}")
            data = client.json_of(resp, self.kind)
        except PlatformError as exc:
            data = _error_body(exc)
            if data is None:
                raise
        code = str(data.get("Code", ""))
        if code == "OK":
            return str(data.get("BizId", ""))
        msg = f"sms: {code} {data.get('Message', '')}".strip()
        if code in RATE_LIMITED:
            raise RateLimited(msg, code=code)  # refused before sending: safe to try later
        if code in BAD_CONFIG:
            raise ConfigurationError(msg, code=code)
        if code in UNKNOWN:
            raise PlatformError(msg, code=code, retryable=True, outcome_unknown=True)
        raise PlatformError(msg, code=code)


def _error_body(exc: PlatformError) -> dict | None:
    """Aliyun answers some errors with HTTP 4xx and a JSON body carrying Code: read it."""
    if exc.outcome_unknown or not isinstance(exc.payload, str):
        return None
    try:
        data = json.loads(exc.payload)
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("Code") else None
