"""gunicorn settings for xianyu-ops behind nginx (deploy/nginx.conf). Used by deploy/xianyu-web.service:

    gunicorn config.wsgi:application -c deploy/gunicorn.conf.py

Sync workers: each serves one request at a time, so a slow client would hold a worker for as long as it
takes to send its request or read its answer. nginx buffers both (proxy_request_buffering and
proxy_buffering on), so a worker only ever talks to nginx over loopback and is free again in milliseconds.
Never expose these workers to the internet directly.

Every value can be overridden from the environment (the systemd unit reads /etc/xianyu-ops/env).
"""

import multiprocessing
import os


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


# Loopback only: nginx is the one client (a unix socket works too: GUNICORN_BIND=unix:/run/xianyu-ops/web.sock).
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# 2 × cores + 1 sync workers (DESIGN.md §7 measures 2 cores: 5 workers), each under 250 MB resident.
workers = _env_int("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1)
worker_class = "sync"
# A request that takes longer is a bug or a stuck platform call: the worker is killed and replaced.
# Keep it below nginx's proxy_read_timeout so nginx answers 502 instead of waiting on a dead worker.
timeout = _env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# Recycle workers now and then: bounded memory even if something leaks.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 200)
# Request limits below nginx's own (a request nginx lets through is never cut here).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Trust X-Forwarded-* only from nginx on this host. Django itself reads X-Forwarded-Proto
# (SECURE_PROXY_SSL_HEADER) and the client address (TRUSTED_PROXY_COUNT).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Heartbeat files in memory, not on a possibly slow disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Logs to stdout/stderr: systemd's journal keeps them (journalctl -u xianyu-web). nginx logs access already.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
proc_name = "xianyu-web"
