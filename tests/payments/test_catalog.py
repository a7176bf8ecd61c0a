"""The payments app's Simplified Chinese catalog: complete, valid gettext, and the errors staff read
(picture type and size, refund limits) come out in Chinese once compiled."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

PO = Path(settings.BASE_DIR) / "payments" / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_translation():
    text = PO.read_text()
    entries = re.findall(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', text, re.M)
    assert len(entries) > 200
    empty = [m for m, s in entries[1:] if s.strip() == '""']
    assert empty == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="gettext's msgfmt is not installed")
def test_the_catalog_compiles_and_speaks_chinese(tmp_path):
    mo = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(mo), str(PO)], check=True, capture_output=True)
    with mo.open("rb") as fh:
        zh = gettext.GNUTranslations(fh)
    assert zh.gettext("The picture is %(size)s; it must be at least 5 KB.") % {"size": "3.0 KB"} == \
        "图片大小为 3.0 KB，不能小于 5 KB。"
    assert zh.gettext("Pictures must be png, bmp, gif, jpg or jpeg files; “%(name)s” is not.") % {
        "name": "a.txt"} == "图片须为 png、bmp、gif、jpg 或 jpeg 格式，“a.txt”不是。"
    assert "最多还可退" in zh.gettext("At most %(left)s yuan can still be refunded on this trade (asked: %(asked)s).")
    assert zh.gettext("Awaiting merchant confirmation") == "待商户确认"
