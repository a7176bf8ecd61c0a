"""Fake notification services. Each checks a request as the real service does — signatures recomputed
here from the protocol text (protocols/notify-channels.md), independently of notifications/channels —
body shapes, size limits and per-minute rate limits, and answers with the service's envelope.

Fakes take a `clock` (a callable returning an aware datetime) so that rate limits and timestamp windows
follow the tests' time travel; by default the real time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socketserver
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from .server import FakePlatform, Request, Response


def real_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """Time travel for tests: patch django.utils.timezone.now with an instance and move it forward."""

    def __init__(self, start: datetime | None = None):
        self.t = start or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kwargs) -> datetime:
        self.t += timedelta(**kwargs)
        return self.t


class _Limited(FakePlatform):
    """Shared bits: a clock, forced answers, a sliding per-minute (and optional per-second) limit."""

    per_minute = 0
    per_second = 0

    def __init__(self, clock=None):
        super().__init__()
        self.clock = clock or real_now
        self.forced: list[Response | None] = []   # next answers, before any check (5xx, dropped connection)
        self.accepted: list[tuple[datetime, dict]] = []
        self.throttled = 0
        self._times: dict[str, list[datetime]] = defaultdict(list)

    def force(self, *answers: Response | None):
        self.forced.extend(answers)

    def take_forced(self) -> tuple[bool, Response | None]:
        with self.lock:
            if self.forced:
                return True, self.forced.pop(0)
        return False, None

    def over_limit(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            times = [t for t in self._times[key] if now - t < timedelta(seconds=60)]
            self._times[key] = times
            if self.per_minute and len(times) >= self.per_minute:
                self.throttled += 1
                return True
            if self.per_second and len([t for t in times if now - t < timedelta(seconds=1)]) >= self.per_second:
                self.throttled += 1
                return True
            times.append(now)
            return False

    def send_times(self) -> list[datetime]:
        return [t for t, _ in self.accepted]


# --- WeCom group robot ---------------------------------------------------------------------------------


class FakeWeCom(_Limited):
    """POST /cgi-bin/webhook/send?key=KEY; errcode 0 ok, 93000 bad key, 45009 over 20/minute; text content
    at most 2048 bytes UTF-8."""

    per_minute = 20

    def __init__(self, keys=(), clock=None):
        super().__init__(clock)
        self.keys = set(keys)

    def handle(self, req: Request) -> Response | None:
        forced, answer = self.take_forced()
        if forced:
            return answer
        if req.method != "POST" or req.path != "/cgi-bin/webhook/send":
            return Response(404, {"errcode": 404, "errmsg": "not found"})
        key = req.query.get("key", "")
        if key not in self.keys:
            return Response(200, {"errcode": 93000, "errmsg": "invalid webhook url, hint: key not found"})
        try:
            doc = json.loads(req.body)
        except ValueError:
            return Response(200, {"errcode": 40016, "errmsg": "invalid button size"})  # WeCom's odd answer
        kind = doc.get("msgtype")
        if kind == "text":
            text = doc.get("text") or {}
            content = text.get("content")
            if not isinstance(content, str) or not content:
                return Response(200, {"errcode": 44004, "errmsg": "empty content"})
            if len(content.encode()) > 2048:
                return Response(200, {"errcode": 40058, "errmsg": "content exceed max length 2048"})
            for name in ("mentioned_list", "mentioned_mobile_list"):
                if name in text and not (isinstance(text[name], list) and all(isinstance(x, str) for x in text[name])):
                    return Response(200, {"errcode": 40058, "errmsg": f"invalid {name}"})
        elif kind == "markdown":
            content = (doc.get("markdown") or {}).get("content")
            if not isinstance(content, str) or not content or len(content.encode()) > 4096:
                return Response(200, {"errcode": 40058, "errmsg": "invalid markdown content"})
        else:
            return Response(200, {"errcode": 40008, "errmsg": "invalid message type"})
        if self.over_limit(key):
            return Response(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
        with self.lock:
            self.accepted.append((self.clock(), doc))
        return Response(200, {"errcode": 0, "errmsg": "ok"})


# --- DingTalk robot ------------------------------------------------------------------------------------


class FakeDingTalk(_Limited):
    """POST /robot/send?access_token=X&timestamp=T&sign=S with T in ms within an hour and
    S = urlencode(base64(HMAC-SHA256(key=secret, msg=T + "\\n" + secret))); 20 messages/minute."""

    per_minute = 20

    def __init__(self, robots: dict[str, str] | None = None, keyword: str = "", clock=None):
        super().__init__(clock)
        self.robots = dict(robots or {})
        self.keyword = keyword

    def handle(self, req: Request) -> Response | None:
        forced, answer = self.take_forced()
        if forced:
            return answer
        if req.method != "POST" or req.path != "/robot/send":
            return Response(404, {"errcode": 404, "errmsg": "not found"})
        token = req.query.get("access_token", "")
        if token not in self.robots:
            return Response(200, {"errcode": 300001, "errmsg": "token is not exist"})
        secret = self.robots[token]
        ts_text, sign = req.query.get("timestamp", ""), req.query.get("sign", "")
        if not ts_text.isdigit():
            return Response(200, {"errcode": 310000, "errmsg": "invalid timestamp"})
        now_ms = int(self.clock().timestamp() * 1000)
        if abs(now_ms - int(ts_text)) > 3600 * 1000:
            return Response(200, {"errcode": 310000, "errmsg": "invalid timestamp"})
        # The query string was URL-decoded once by the server, which leaves the plain base64 text.
        string_to_sign = f"{ts_text}\n{secret}"
        expected = base64.b64encode(hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"),
                                             digestmod=hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, sign):
            return Response(200, {"errcode": 310000, "errmsg": "sign not match"})
        try:
            doc = json.loads(req.body)
        except ValueError:
            return Response(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        if doc.get("msgtype") != "text" or not isinstance((doc.get("text") or {}).get("content"), str):
            return Response(200, {"errcode": 40035, "errmsg": "缺少参数 text"})
        at = doc.get("at", {})
        if not isinstance(at.get("atMobiles", []), list) or not isinstance(at.get("isAtAll", False), bool):
            return Response(200, {"errcode": 40035, "errmsg": "invalid at"})
        if self.keyword and self.keyword not in doc["text"]["content"]:
            return Response(200, {"errcode": 310000, "errmsg": "keywords not in content"})
        if self.over_limit(token):
            return Response(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
        with self.lock:
            self.accepted.append((self.clock(), doc))
        return Response(200, {"errcode": 0, "errmsg": "ok"})


# --- Feishu bot ----------------------------------------------------------------------------------------


class FakeFeishu(_Limited):
    """POST /open-apis/bot/v2/hook/{token}, body ≤ 20 KB with timestamp (seconds, within an hour) and
    sign = base64(HMAC-SHA256 keyed with timestamp + "\\n" + secret over an empty message); 100/min, 5/s."""

    per_minute = 100
    per_second = 5
    PREFIX = "/open-apis/bot/v2/hook/"

    def __init__(self, bots: dict[str, str] | None = None, clock=None):
        super().__init__(clock)
        self.bots = dict(bots or {})

    def handle(self, req: Request) -> Response | None:
        forced, answer = self.take_forced()
        if forced:
            return answer
        if req.method != "POST" or not req.path.startswith(self.PREFIX):
            return Response(404, {"code": 404, "msg": "not found"})
        token = req.path[len(self.PREFIX):]
        if token not in self.bots:
            return Response(200, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        if len(req.body) > 20 * 1024:
            return Response(200, {"code": 9499, "msg": "request body too large"})
        try:
            doc = json.loads(req.body)
        except ValueError:
            return Response(200, {"code": 9499, "msg": "Bad Request"})
        ts = doc.get("timestamp")
        if not isinstance(ts, str) or not ts.isdigit() or abs(int(self.clock().timestamp()) - int(ts)) > 3600:
            return Response(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        secret = self.bots[token]
        mac = hmac.new(f"{ts}\n{secret}".encode(), digestmod=hashlib.sha256)  # empty message
        if not hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(doc.get("sign", ""))):
            return Response(200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"})
        if doc.get("msg_type") != "text" or not isinstance((doc.get("content") or {}).get("text"), str):
            return Response(200, {"code": 9499, "msg": "Bad Request"})
        if self.over_limit(token):
            return Response(200, {"code": 11232, "msg": "frequency limited"})
        with self.lock:
            self.accepted.append((self.clock(), doc))
        return Response(200, {"code": 0, "msg": "success", "data": {}})


# --- Aliyun SMS ----------------------------------------------------------------------------------------


def _rfc3986(value: str) -> str:
    return quote(value, safe="~")  # unreserved characters kept: A-Z a-z 0-9 - _ . ~


class FakeAliyunSms(_Limited):
    """dysmsapi SendSms over GET with the POP HMAC-SHA1 signature, recomputed here; 15-minute timestamp
    window; a nonce is accepted once. `drop_after_accepting(n)`: the next n accepted messages are sent but
    the connection is dropped before the answer (outcome unknown to the caller)."""

    COMMON = {"Format": "JSON", "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "Version": "2017-05-25"}

    def __init__(self, keys: dict[str, str] | None = None, signs=("闲鱼助手",), templates=("SMS_1",), clock=None):
        super().__init__(clock)
        self.keys = dict(keys or {})
        self.signs, self.templates = set(signs), set(templates)
        self.nonces: set[str] = set()
        self.drop = 0

    def drop_after_accepting(self, n: int = 1):
        self.drop = n

    @staticmethod
    def _err(status: int, code: str, message: str) -> Response:
        return Response(status, {"Code": code, "Message": message, "RequestId": uuid.uuid4().hex})

    def handle(self, req: Request) -> Response | None:
        forced, answer = self.take_forced()
        if forced:
            return answer
        if req.method != "GET" or req.path != "/":
            return self._err(404, "InvalidAction.NotFound", "Specified api is not found")
        params = dict(req.query)
        signature = params.pop("Signature", "")
        for name, value in self.COMMON.items():
            if params.get(name) != value:
                return self._err(400, "MissingParameter" if name not in params else "InvalidParameter", name)
        for name in ("AccessKeyId", "SignatureNonce", "Timestamp", "RegionId", "Action"):
            if not params.get(name):
                return self._err(400, "MissingParameter", f"{name} is mandatory for this action.")
        if params["AccessKeyId"] not in self.keys:
            return self._err(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        try:
            ts = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            return self._err(400, "InvalidTimeStamp.Format", "Specified time stamp is not well formatted.")
        if abs((self.clock() - ts).total_seconds()) > 15 * 60:
            return self._err(400, "InvalidTimeStamp.Expired", "Specified time stamp or date header is expired.")
        canonical = "&".join(f"{_rfc3986(k)}={_rfc3986(params[k])}" for k in sorted(params))
        string_to_sign = "GET&" + _rfc3986("/") + "&" + _rfc3986(canonical)
        expected = base64.b64encode(hmac.new((self.keys[params["AccessKeyId"]] + "&").encode(),
                                             string_to_sign.encode(), hashlib.sha1).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return self._err(400, "SignatureDoesNotMatch",
                             f"Specified signature is not matched with our calculation. server string to sign "
                             f"is:{string_to_sign}")
        with self.lock:
            if params["SignatureNonce"] in self.nonces:
                return self._err(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces.add(params["SignatureNonce"])
        if params["Action"] != "SendSms":
            return self._err(404, "InvalidAction.NotFound", "Specified api is not found")
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return self._err(400, "MissingParameter", f"{name} is mandatory for this action.")
        if params["SignName"] not in self.signs:
            return Response(200, {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法"})
        if params["TemplateCode"] not in self.templates:
            return Response(200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"})
        try:
            template_param = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return Response(200, {"Code": "isv.INVALID_JSON_PARAM", "Message": "JSON参数不合法"})
        if not all(p.isdigit() and len(p) == 11 for p in params["PhoneNumbers"].split(",")):
            return Response(200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "手机号码格式错误"})
        biz_id = f"{uuid.uuid4().int % 10**12}^0"
        with self.lock:
            self.accepted.append((self.clock(), {**params, "TemplateParam": template_param, "BizId": biz_id}))
            if self.drop:
                self.drop -= 1
                return None  # sent, but the caller never hears it
        return Response(200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": uuid.uuid4().hex})


# --- a customer's webhook receiver ---------------------------------------------------------------------


class FakeWebhookReceiver(_Limited):
    """Verifies X-Signature: sha256=<hex HMAC-SHA256(secret, raw body)> and a fresh X-Timestamp (±5 min)."""

    def __init__(self, secret: str, clock=None):
        super().__init__(clock)
        self.secret = secret

    def handle(self, req: Request) -> Response | None:
        forced, answer = self.take_forced()
        if forced:
            return answer
        if req.method != "POST":
            return Response(405, {"error": "method"})
        expected = "sha256=" + hmac.new(self.secret.encode(), req.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, req.headers.get("x-signature", "")):
            return Response(401, {"error": "bad signature"})
        ts = req.headers.get("x-timestamp", "")
        if not ts.isdigit() or abs(int(self.clock().timestamp()) - int(ts)) > 300:
            return Response(401, {"error": "stale timestamp"})
        doc = json.loads(req.body)
        if doc.get("timestamp") != ts:
            return Response(400, {"error": "timestamp mismatch"})
        with self.lock:
            self.accepted.append((self.clock(), {**doc, "_headers": req.headers}))
        return Response(200, {"ok": True})


# --- SMTP ----------------------------------------------------------------------------------------------


class FakeSmtp:
    """A minimal SMTP server (RFC 5321 subset: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT). Recipients in
    `refuse` are answered 550. `messages`: (mail_from, [rcpt], data)."""

    def __init__(self, refuse=()):
        self.messages: list[tuple[str, list[str], str]] = []
        self.refuse = set(refuse)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def reply(self, line: str):
                self.wfile.write((line + "\r\n").encode())

            def handle(self):
                self.reply("220 fake.smtp ESMTP")
                mail_from, rcpts = None, []
                while True:
                    raw = self.rfile.readline()
                    if not raw:
                        return
                    line = raw.decode("utf-8", "replace").rstrip("\r\n")
                    verb = line.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.wfile.write(b"250-fake.smtp\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                    elif verb == "HELO":
                        self.reply("250 fake.smtp")
                    elif verb == "MAIL":
                        mail_from, rcpts = line[10:].split(" ")[0].strip("<>"), []
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        if mail_from is None:
                            self.reply("503 need MAIL first")
                            continue
                        addr = line[8:].split(" ")[0].strip("<>")
                        if addr in outer.refuse:
                            self.reply("550 no such user")
                        else:
                            rcpts.append(addr)
                            self.reply("250 OK")
                    elif verb == "DATA":
                        if not rcpts:
                            self.reply("503 need RCPT first")
                            continue
                        self.reply("354 end with <CRLF>.<CRLF>")
                        lines = []
                        while True:
                            data = self.rfile.readline().decode("utf-8", "replace")
                            if data in (".\r\n", ".\n", ""):
                                break
                            lines.append(data[1:] if data.startswith("..") else data)
                        with threading.Lock():
                            outer.messages.append((mail_from, rcpts, "".join(lines)))
                        mail_from, rcpts = None, []
                        self.reply("250 OK queued")
                    elif verb in ("RSET", "NOOP"):
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("502 command not implemented")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
