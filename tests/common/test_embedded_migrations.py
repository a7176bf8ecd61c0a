"""`./run`'s embedded database: every migration applies to a new SQLite file and unapplies again, whatever
database the rest of the suite runs on (an index built CONCURRENTLY on PostgreSQL once broke `./run`)."""

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
