"""`manage.py fake_alipay [--port 8766] [--write-dotenv]`: a local stand-in for Alipay (payments.fake_gateway)
to try onboarding and payments end to end without an Alipay account.

It keeps its files in var/fake_alipay/: our app's key pair and the fake Alipay's key pair (made once,
test-only), the settings xianyu-ops needs (alipay.env; with --write-dotenv also merged into .env, which
settings read), sample pictures for the application form, and its own state (state.json) so a restart
forgets nothing. An application is "under review" for --audit-seconds, then waits for the merchant, who
confirms on the page the confirmation link opens (or by itself after --confirm-seconds); the fake then
authorises our app for the merchant and posts the authorisation notice to our webhook. A trade's QR code
opens a page where the "buyer" pays; the payment notification is posted to the webhook like Alipay's.
Pages: http://HOST:PORT/ lists every batch and trade with buttons to move them along."""

from __future__ import annotations

import json
import threading
import time
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from payments.fake_gateway import FakeAlipayGateway, generate_key_pair, sample_png

APP_ID = "2021000000000001"
DEMO_SETTINGS = {"ALIPAY_POLL_FIRST_DELAY_SECONDS": "20", "ALIPAY_POLL_INTERVAL_SECONDS": "30",
                 "ALIPAY_TRADE_QUERY_DELAY_SECONDS": "30"}


def _keys(folder: Path) -> dict[str, Path]:
    paths = {name: folder / f"{name}.pem" for name in ("app_private", "app_public", "alipay_private", "alipay_public")}
    for who in ("app", "alipay"):
        if not paths[f"{who}_private"].exists():
            private, public = generate_key_pair()
            paths[f"{who}_private"].write_text(private)
            paths[f"{who}_private"].chmod(0o600)
            paths[f"{who}_public"].write_text(public)
    (folder / "README.txt").write_text("TEST-ONLY keys made by `manage.py fake_alipay` for the local fake Alipay "
                                       "gateway. Never use them with the real Alipay.\n")
    return paths


def merge_dotenv(path: Path, values: dict[str, str]) -> None:
    """Set these keys in a .env file, keeping every other line."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    path.write_text("\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n")


def _sender(url: str, params: dict) -> bool:
    """Post a notification like Alipay: again after a pause until the answer is `success` (3 tries here)."""

    def run():
        for pause in (0, 5, 30):
            time.sleep(pause)
            try:
                resp = requests.post(url, data=params, timeout=10)
                if resp.text.strip() == "success":
                    return
            except requests.RequestException:
                pass

    threading.Thread(target=run, daemon=True).start()
    return True


class Command(BaseCommand):
    help = "Run a local fake Alipay gateway (keys, settings and sample pictures in var/fake_alipay/)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8766)
        parser.add_argument("--audit-seconds", type=float, default=60.0,
                            help="how long an application stays under review (default 60)")
        parser.add_argument("--confirm-seconds", type=float, default=120.0,
                            help="the merchant confirms by itself after this long (default 120; 0: only by the page)")
        parser.add_argument("--notify-url", default="", help="our webhook (default: ALIPAY_NOTIFY_URL)")
        parser.add_argument("--write-dotenv", action="store_true",
                            help="merge the ALIPAY_* settings into .env (read by config/settings.py)")
        parser.add_argument("--dir", default="", help="files folder (default var/fake_alipay)")

    def handle(self, *args, host, port, audit_seconds, confirm_seconds, notify_url, write_dotenv, dir, **options):
        if not 0 < port < 65536:
            raise CommandError("--port must be between 1 and 65535")
        if audit_seconds < 0 or confirm_seconds < 0:
            raise CommandError("--audit-seconds and --confirm-seconds must not be negative")
        folder = Path(dir) if dir else Path(settings.VAR_DIR) / "fake_alipay"
        try:
            server, gateway, env = build(folder=folder, host=host, port=port, audit_seconds=audit_seconds,
                                         confirm_seconds=confirm_seconds,
                                         notify_url=notify_url or settings.ALIPAY_NOTIFY_URL)
        except OSError as exc:
            raise CommandError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
        if write_dotenv:
            merge_dotenv(Path(settings.BASE_DIR) / ".env", env)
        self.stdout.write(f"Fake Alipay gateway: {gateway.base_url}/gateway.do   pages: {gateway.base_url}/\n"
                          f"Files: {folder}\nSettings for xianyu-ops ({folder / 'alipay.env'}"
                          f"{', merged into .env' if write_dotenv else ''}):")
        for k, v in env.items():
            self.stdout.write(f"  {k}={v}")
        self.stdout.write(f"Sample pictures for the application form: {folder / 'pictures'}\n"
                          f"Applications: under review {audit_seconds:g} s, then the merchant confirms on the "
                          f"link's page{f' or by itself after {confirm_seconds:g} s' if confirm_seconds else ''}.\n"
                          f"Notifications go to {gateway.default_notify_url}\nCtrl-C stops.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()


def build(*, folder: Path, host: str = "127.0.0.1", port: int = 8766, audit_seconds: float = 60.0,
          confirm_seconds: float = 120.0, notify_url: str = "") -> tuple[ThreadingHTTPServer, FakeAlipayGateway, dict]:
    """Keys, sample pictures, settings file and the server (bound, not yet serving; port 0 picks one)."""
    folder.mkdir(parents=True, exist_ok=True)
    keys = _keys(folder)
    pictures = folder / "pictures"
    pictures.mkdir(exist_ok=True)
    for i, name in enumerate(("licence.png", "shop-inside.png", "shop-sign.png")):
        if not (pictures / name).exists():
            (pictures / name).write_bytes(sample_png(min_bytes=12 * 1024, seed=i))
    state = folder / "state.json"
    gateway = FakeAlipayGateway(
        app_id=APP_ID, app_public_key=keys["app_public"].read_text(),
        alipay_private_key=keys["alipay_private"].read_text(), audit_seconds=audit_seconds,
        confirm_seconds=confirm_seconds or None, default_notify_url=notify_url, send_notification=_sender)
    if state.exists():
        try:
            gateway.load(json.loads(state.read_text()))
        except (ValueError, TypeError, AttributeError):
            state.rename(state.with_suffix(".unreadable"))
    server = ThreadingHTTPServer((host, port), _handler(gateway, state))
    server.daemon_threads = True
    base = f"http://{host}:{server.server_address[1]}"
    gateway.base_url = base

    def rel(p: Path) -> Path:
        return p.relative_to(settings.BASE_DIR) if p.is_relative_to(settings.BASE_DIR) else p

    env = {"ALIPAY_GATEWAY_URL": f"{base}/gateway.do", "ALIPAY_APP_ID": APP_ID,
           "ALIPAY_APP_PRIVATE_KEY": str(rel(keys["app_private"])),
           "ALIPAY_PUBLIC_KEY": str(rel(keys["alipay_public"])), **DEMO_SETTINGS}
    (folder / "alipay.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return server, gateway, env


def _handler(gateway: FakeAlipayGateway, state: Path):
    save_lock = threading.Lock()

    def save():
        with save_lock:
            state.write_text(json.dumps(gateway.dump(), ensure_ascii=False))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if 0 < length <= 20 * 1024 * 1024 else b""
            parts = urlsplit(self.path)
            if parts.path == "/gateway.do":
                r = gateway.respond(self.command, parts.path, dict(parse_qsl(parts.query)),
                                    {k.lower(): v for k, v in self.headers.items()}, body)
                save()
                return self._send(r.status, r.body, r.content_type)
            if self.command == "POST":
                form = dict(parse_qsl(body.decode("utf-8", "replace")))
                _act(gateway, parts.path, form)
                save()
                return self._redirect(form.get("back") or "/")
            return self._send(200, _page(gateway, parts.path).encode(), "text/html; charset=utf-8")

        do_GET = do_POST = _serve

        def _send(self, status: int, data: bytes, ctype: str):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, to: str):
            self.send_response(303)
            self.send_header("Location", to if to.startswith("/") else "/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, fmt, *args):
            pass

    return Handler


def _act(gateway: FakeAlipayGateway, path: str, form: dict) -> None:
    """The pages' buttons: a review decision, the merchant's confirmation, the buyer's payment."""
    kind, _, key = path.strip("/").partition("/")
    if kind == "confirm":
        b = gateway.batch_by_order(key)
        if b is not None and b["order_status"] == "MERCHANT_CONFIRM":
            gateway.set_order_status(b["batch_no"], "MERCHANT_CONFIRM_SUCCESS")
    elif kind == "status" and key in gateway.batches:
        gateway.set_order_status(key, form.get("status", ""), reject_reason=form.get("reason", ""))
    elif kind == "pay" and key in gateway.trades and gateway.trades[key]["status"] in ("CREATED", "WAIT_BUYER_PAY"):
        gateway.pay(key)


def _button(action: str, label: str, back: str, **fields) -> str:
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items())
    return (f'<form method="post" action="{escape(action)}" style="display:inline">{hidden}'
            f'<input type="hidden" name="back" value="{escape(back)}"><button>{escape(label)}</button></form>')


def _page(gateway: FakeAlipayGateway, path: str) -> str:
    kind, _, key = path.strip("/").partition("/")
    if kind == "confirm":
        b = gateway.batch_by_order(key)
        if b is None:
            body = "<p>没有这个申请单。</p>"
        elif b["order_status"] == "MERCHANT_CONFIRM":
            body = (f"<p>商户 {escape(b['account'])} 的当面付开通申请已审核通过，请确认开通并授权服务商。</p>"
                    + _button(f"/confirm/{key}", "确认开通", f"/confirm/{key}"))
        else:
            body = f"<p>申请单状态：{escape(b['order_status'])}</p>"
        return _html("支付宝（本地模拟）· 商户确认", body)
    if kind == "qr":
        t = gateway.trades.get(key)
        if t is None:
            return _html("支付宝（本地模拟）· 付款", "<p>没有这笔交易。</p>")
        paid = t["status"] not in ("CREATED", "WAIT_BUYER_PAY")
        body = (f"<p>{escape(t['subject'])}：¥{escape(t['total_amount'])}</p>"
                + (f"<p>交易状态：{escape(t['status'])}</p>" if paid else _button(f"/pay/{key}", "付款", f"/qr/{key}")))
        return _html("支付宝（本地模拟）· 付款", body)
    rows = []
    for b in gateway.batches.values():
        actions = ""
        if b["order_status"] == "MERCHANT_AUDITING":
            actions = (_button(f"/status/{b['batch_no']}", "审核通过", "/", status="MERCHANT_CONFIRM")
                       + _button(f"/status/{b['batch_no']}", "资料待补充", "/", status="MERCHANT_INFO_HOLD")
                       + _button(f"/status/{b['batch_no']}", "驳回", "/", status="MERCHANT_APPLY_ORDER_CANCELED",
                                 reason="本地模拟驳回"))
        elif b["order_status"] == "MERCHANT_CONFIRM":
            actions = f'<a href="/confirm/{escape(b["order_no"])}">商户确认页</a>'
        rows.append(f"<tr><td>{escape(b['batch_no'])}</td><td>{escape(b['status'])}</td>"
                    f"<td>{escape(b['account'])}</td><td>{escape(b['order_no'])}</td>"
                    f"<td>{escape(b['order_status'])}</td><td>{actions}</td></tr>")
    trades = []
    for t in gateway.trades.values():
        action = "" if t["status"] not in ("CREATED", "WAIT_BUYER_PAY") else _button(f"/pay/{t['out_trade_no']}",
                                                                                       "买家付款", "/")
        refunded = sum(float(r["amount"]) for r in t["refunds"].values())
        trades.append(f"<tr><td>{escape(t['out_trade_no'])}</td><td>{escape(t['subject'])}</td>"
                      f"<td>{escape(t['total_amount'])}</td><td>{escape(t['status'])}</td>"
                      f"<td>{refunded:.2f}</td><td>{action}</td></tr>")
    body = ("<h2>代商户签约事务</h2><table border=1 cellpadding=4><tr><th>batch_no</th><th>事务</th><th>账号</th>"
            "<th>申请单</th><th>申请单状态</th><th></th></tr>" + "".join(rows) + "</table>"
            "<h2>交易</h2><table border=1 cellpadding=4><tr><th>out_trade_no</th><th>标题</th><th>金额</th>"
            "<th>状态</th><th>已退款</th><th></th></tr>" + "".join(trades) + "</table>")
    return _html("支付宝（本地模拟）", body)


def _html(title: str, body: str) -> str:
    return (f'<!doctype html><html lang="zh-hans"><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<body style="font-family:sans-serif;max-width:60em;margin:1em auto"><h1>{escape(title)}</h1>{body}'
            '<p><a href="/">全部事务与交易</a></p></body></html>')
