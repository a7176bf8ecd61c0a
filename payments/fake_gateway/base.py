"""Pieces the fake gateway's parts share: keys, signing, sample pictures, answers and faults."""

from __future__ import annotations

import base64
import random
import struct
import zlib
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BEIJING = ZoneInfo("Asia/Shanghai")
BATCH_TTL = timedelta(hours=1)
PICTURES = ("business_license_pic", "business_license_auth_pic", "shop_scene_pic", "shop_sign_board_pic",
            "special_license_pic")
MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"BM", "bmp"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"\xff\xd8\xff", "jpg"))
ON_BEHALF = ("alipay.trade.precreate", "alipay.trade.query", "alipay.trade.refund", "alipay.trade.fastpay.refund.query")


def generate_key_pair(bits: int = 2048) -> tuple[str, str]:
    """(private PEM, public PEM) of a new RSA key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def sample_png(min_bytes: int = 8 * 1024, seed: int = 0) -> bytes:
    """A valid PNG of noise, at least `min_bytes` long (noise does not compress)."""
    side = int((min_bytes / 3) ** 0.5) + 8
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(side * 3) for _ in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _pid(account: str) -> str:
    """A stable 2088… user id for an account."""
    return f"2088{zlib.crc32(account.encode()) % 10**12:012d}"


def sign_text(private_key, text: str) -> str:
    return base64.b64encode(private_key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def signing_text(params: dict[str, str], *, drop: tuple[str, ...]) -> str:
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in drop and v != "")


@dataclass
class FakeResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    drop: bool = False      # close the connection without an answer
    delay: float = 0.0      # seconds to wait before answering (or dropping)


@dataclass
class Fault:
    method: str
    kind: str               # http500 | drop_before | drop_after | stall_after | system_error | busy | refuse | bad_sign
    sub_code: str = ""
    seconds: float = 0.0


class _Refused(Exception):
    def __init__(self, code: str, sub_code: str, sub_msg: str, msg: str = "Business Failed"):
        super().__init__(sub_msg)
        self.node = {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}


def _refuse(sub_code: str, sub_msg: str) -> _Refused:
    return _Refused("40004", sub_code, sub_msg)
