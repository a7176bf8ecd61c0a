"""`./run`'s embedded database (SQLite), whatever database the rest of the suite runs on: every migration
applies to a new file and back (an index built CONCURRENTLY on PostgreSQL once broke it), and the staff's
main pages answer there (the big lists' row estimate is PostgreSQL's own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def manage(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env["DATABASE_URL"] = f"sqlite:///{db}"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
                          text=True, timeout=300)


def test_every_migration_applies_to_a_new_sqlite_database_and_back(tmp_path):
    db = tmp_path / "embedded.sqlite3"
    forward = manage("migrate", "--no-input", db=db)
    assert forward.returncode == 0, forward.stdout + forward.stderr
    back = manage("migrate", "orders", "0006", "--no-input", db=db)
    assert back.returncode == 0, back.stdout + back.stderr
    shown = manage("showmigrations", "orders", "shipping", db=db)
    assert "[ ] 0007_admin_search_indexes" in shown.stdout and "[ ] 0006_admin_search_indexes" in shown.stdout


PAGES_SCRIPT = """
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
call_command("seed_demo", verbosity=0)
client = Client()
client.force_login(get_user_model().objects.get(username="admin"))
for path in PATHS:
    print(client.get(path).status_code, path)
"""


def test_the_staff_pages_answer_on_the_embedded_database(tmp_path):
    """What `./run` serves on SQLite: the dashboard and the big lists (their row estimate is PostgreSQL's)."""
    db = tmp_path / "embedded.sqlite3"
    assert manage("migrate", "--no-input", db=db).returncode == 0
    paths = ["/admin/", "/admin/failures/", "/admin/orders/order/", "/admin/shipping/shipment/",
             "/admin/shipping/manualshipment/", "/admin/orders/orderevent/", "/admin/orders/product/",
             "/admin/shipping/cardcode/", "/admin/kyc/verification/", "/admin/payments/facetofaceapplication/"]
    result = manage("shell", "-c", f"PATHS = {paths!r}\n" + PAGES_SCRIPT, db=db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split("\n")[-len(paths) - 1:-1] == [f"200 {p}" for p in paths], result.stdout
