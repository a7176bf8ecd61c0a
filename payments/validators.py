"""Input checks the model, the admin form and the API share: application pictures as Alipay takes them
(png/bmp/gif/jpg/jpeg, judged by content as well as by name, 5 KB–5 MB) and code formats."""

from __future__ import annotations

from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

PICTURE_TYPES = ("png", "bmp", "gif", "jpg", "jpeg")
MIN_PICTURE_BYTES = 5 * 1024
MAX_PICTURE_BYTES = 5 * 1024 * 1024
MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"BM", "bmp"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
         (b"\xff\xd8\xff", "jpg"))

region_code = RegexValidator(r"^\d{6}$", _("Enter a 6-digit administrative region code."))
mcc_code = RegexValidator(r"^[A-Za-z0-9_]{1,32}$", _("Enter an MCC code such as A0001_B0001."))
mobile = RegexValidator(r"^1\d{10}$", _("Enter an 11-digit mainland mobile number."))
coordinate = RegexValidator(r"^-?\d{1,3}(\.\d{1,8})?$", _("Enter a coordinate such as 120.1234."))


def picture_kind(head: bytes) -> str | None:
    return next((kind for magic, kind in MAGIC if head.startswith(magic)), None)


def _size_text(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size / 1024:.1f} KB"


def validate_picture(value) -> None:
    """A FieldFile or an uploaded file: its type (name and content) and its size."""
    if not value:
        return
    ext = PurePath(value.name or "").suffix.lower().lstrip(".")
    if ext not in PICTURE_TYPES:
        raise ValidationError(_("Pictures must be png, bmp, gif, jpg or jpeg files; “%(name)s” is not."),
                              code="picture_type", params={"name": PurePath(value.name or "").name})
    try:
        size = value.size
        fh = value.file if hasattr(value, "file") else value
        start = fh.tell() if hasattr(fh, "tell") else 0
        fh.seek(0)
        head = fh.read(16)
        fh.seek(start)
    except (OSError, ValueError):
        raise ValidationError(_("The picture cannot be read: upload it again."), code="picture_missing") from None
    if size < MIN_PICTURE_BYTES:
        raise ValidationError(_("The picture is %(size)s; it must be at least 5 KB."), code="picture_small",
                              params={"size": _size_text(size)})
    if size > MAX_PICTURE_BYTES:
        raise ValidationError(_("The picture is %(size)s; it must be at most 5 MB."), code="picture_large",
                              params={"size": _size_text(size)})
    kind = picture_kind(head)
    if kind is None or kind != ("jpg" if ext == "jpeg" else ext):
        raise ValidationError(_("The file's content is not a %(ext)s picture."), code="picture_content",
                              params={"ext": ext})
