"""deploy/: the example production environment passes Django's deployment checks, and the gunicorn
configuration loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)
BIN = Path(sys.executable).parent


def example_env() -> dict[str, str]:
    values = {}
    for line in (BASE_DIR / "deploy" / "env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_check_deploy_passes_with_the_example_environment():
    example = example_env()
    assert example["DJANGO_DEBUG"] == "false" and example["TRUSTED_PROXY_COUNT"] == "1"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "REDIS_"))}
    env.update(example)
    result = subprocess.run([str(BIN / "python"), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_the_gunicorn_configuration_loads():
    result = subprocess.run([str(BIN / "gunicorn"), "--check-config", "-c", "deploy/gunicorn.conf.py",
                             "config.wsgi:application"], cwd=BASE_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
