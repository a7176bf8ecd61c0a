"""Webhook ingest benchmark (DESIGN.md §7): `/webhooks/xianguanjia/` (verify + inbox row + enqueue on commit)
against `/bench/bare/` (HMAC check + one raw INSERT), both served by the same gunicorn on PostgreSQL + Redis.

    uv run python -m bench.ingest.run [--duration 20] [--warmup 3] [--connections 4] [--workers 2]
                                      [--worker-class sync|gthread] [--threads 1] [--rounds 1]

What it does, all on loopback and bounded in time:
1. checks PostgreSQL (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/xianyu_bench) and Redis
   (REDIS_URL, default redis://127.0.0.1:6379/14); creates the database if missing (--fresh drops it first;
   bench/ship shares it, so rows are counted for this run's own shop only), migrates it, creates
   `bench_bare_event`, flushes the Redis bench db, and creates a new 闲管家 shop with `manage.py shop_add`;
2. starts gunicorn (`config.wsgi`, DJANGO_DEBUG=0, BENCH_BARE_ENDPOINT=1, a generated DJANGO_SECRET_KEY and
   Fernet FIELD_ENCRYPTION_KEYS, no TLS redirect) and checks one signed push and one bare call answer success;
3. for each endpoint: pre-generates distinct signed requests (distinct order_no and modify_time, so each push
   is a new inbox row), a warm-up, then wrk at N connections for a fixed duration (bench/ingest/replay.lua);
   counts rows before/after (rows must grow by the number of 2xx answers, give or take the requests still in
   flight when wrk stops) and the messages queued in Redis;
4. prints req/s, the ratio webhook/bare, p50/p90/p99 latency, non-2xx counts and the RSS of the gunicorn
   workers, and writes the figures to var/bench/ingest-<time>.json.

No Celery worker runs: the webhook's `process_order_event` messages just queue in Redis (db 14), which is
flushed at the start of each run; the benchmark measures ingest only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench.ingest.bare import CREATE_TABLE_SQL, TABLE  # noqa: E402
from bench.ingest.bare import sign as bare_sign  # noqa: E402
from orders.adapters.xianguanjia import xgj_sign  # noqa: E402

INBOX_TABLE = "orders_orderinboxevent"
APP_KEY = f"bench-ingest-{int(time.time())}"  # a new shop each run: its inbox rows are this run's
APP_SECRET = "bench-xgj-secret-0123456789"
WEBHOOK_PATH = "/webhooks/xianguanjia/"
BARE_PATH = "/bench/bare/"


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def die(msg: str) -> None:
    print(f"[bench] FAILED: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --- services ----------------------------------------------------------------------------------------
def pg_connect(url: str, dbname: str | None = None):
    import psycopg

    parts = urlsplit(url)
    if dbname is not None:
        parts = parts._replace(path="/" + dbname)
    return psycopg.connect(urlunsplit(parts), autocommit=True, connect_timeout=5)


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create the bench database if missing (bench/ship uses the same one: it is never dropped unless
    --fresh is given, and this benchmark only counts its own shop's rows)."""
    dbname = urlsplit(url).path.lstrip("/")
    try:
        with pg_connect(url, "postgres") as admin:
            exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone()
            if exists and fresh:
                if "bench" not in dbname:
                    die(f"refusing to drop database {dbname!r}: its name must contain 'bench'")
                admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
                exists = None
            if not exists:
                admin.execute(f'CREATE DATABASE "{dbname}"')
                log(f"database {dbname}: created")
            else:
                log(f"database {dbname}: exists")
    except SystemExit:
        raise
    except Exception as exc:
        die(f"PostgreSQL at {url} is not usable ({exc}); start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start")


def prepare_redis(url: str):
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        die(f"Redis at {url} is not answering ({exc}); start it with: redis-server --daemonize yes "
            '--bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis '
            "--logfile /var/log/redis/ci.log")
    client.flushdb()
    log(f"redis {url}: flushed")
    return client


def queued_messages(client) -> int:
    total = 0
    for key in client.scan_iter(count=1000):
        if client.type(key) == b"list":
            total += client.llen(key)
    return total


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    log("wrk not found: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.call(["apt-get", "install", "-y", "-qq", "wrk"], env=env, stdin=subprocess.DEVNULL) != 0:
        subprocess.call(["apt-get", "update", "-qq"], env=env, stdin=subprocess.DEVNULL)
        subprocess.check_call(["apt-get", "install", "-y", "-qq", "wrk"], env=env, stdin=subprocess.DEVNULL)
    return shutil.which("wrk") or die("wrk is still missing")


def cpu_busy_fraction(seconds: float = 2.0) -> float:
    """How busy the machine's CPUs were over a short sample (before we start anything)."""
    def sample():
        vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return vals[3] + vals[4], sum(vals)  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the server --------------------------------------------------------------------------------------
def server_env(database_url: str, redis_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BENCH_", "CELERY_"))}
    env.update({
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "BENCH_BARE_ENDPOINT": "1",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def manage(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        die(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def start_gunicorn(env: dict[str, str], port: int, args, logfile: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}",
           "--workers", str(args.workers), "--worker-class", args.worker_class, "--threads", str(args.threads),
           "--backlog", "2048", "--timeout", "60", "--log-level", "warning"]
    log("gunicorn: " + " ".join(cmd[2:]))
    out = logfile.open("w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            die(f"gunicorn exited ({proc.returncode}); see {logfile}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{BARE_PATH}", timeout=2)
        except urllib.error.HTTPError:
            break  # any HTTP answer (405 for GET) means the workers are up
        except OSError:
            time.sleep(0.3)
            continue
        break
    else:
        die("gunicorn did not answer within 30 s")
    return proc


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def worker_rss_mb(master_pid: int) -> dict[str, float]:
    out = subprocess.run(["ps", "-o", "pid=,ppid=,rss=", "-e"], capture_output=True, text=True).stdout
    rss = {}
    for line in out.splitlines():
        pid, ppid, kb = (int(x) for x in line.split())
        if ppid == master_pid:
            rss[f"worker {pid}"] = round(kb / 1024, 1)
        elif pid == master_pid:
            rss[f"master {pid}"] = round(kb / 1024, 1)
    return rss


def workers_cpu_seconds(master_pid: int) -> float:
    """User + system CPU of the gunicorn workers so far (a load-independent cost per request)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


# --- requests ----------------------------------------------------------------------------------------
class Generator:
    """Distinct requests: a run-wide prefix and a counter make every order_no (and body) unique."""

    def __init__(self) -> None:
        self.prefix = f"B{int(time.time()) % 100000000:08d}"
        self.n = 0

    def push(self) -> tuple[str, str, bytes]:
        self.n += 1
        now = int(time.time())
        body = json.dumps({
            "seller_id": 10001, "user_name": "bench-seller", "order_no": f"{self.prefix}{self.n:09d}",
            "order_type": 1, "order_status": 12, "refund_status": 0, "modify_time": now + self.n % 1000,
        }, separators=(",", ":")).encode()
        ts = str(now)
        query = urlencode({"appid": APP_KEY, "timestamp": ts, "sign": xgj_sign(APP_KEY, APP_SECRET, body, ts)})
        return f"{WEBHOOK_PATH}?{query}", "-", body

    def bare(self) -> tuple[str, str, bytes]:
        self.n += 1
        body = json.dumps({
            "seller_id": 10001, "user_name": "bench-seller", "order_no": f"{self.prefix}{self.n:09d}",
            "order_type": 1, "order_status": 12, "refund_status": 0, "modify_time": int(time.time()),
        }, separators=(",", ":")).encode()
        return BARE_PATH, bare_sign(body), body

    def write(self, path: Path, kind: str, count: int) -> None:
        make = self.push if kind == "webhook" else self.bare
        with path.open("w") as f:
            for _ in range(count):
                url, sig, body = make()
                f.write(f"{url}\t{sig}\t{body.decode()}\n")


def post_once(port: int, req: tuple[str, str, bytes]) -> tuple[int, str]:
    url, sig, body = req
    headers = {"Content-Type": "application/json"}
    if sig != "-":
        headers["X-Signature"] = sig
    r = urllib.request.Request(f"http://127.0.0.1:{port}{url}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def run_wrk(wrk: str, port: int, reqfile: Path, seconds: float, connections: int, threads: int) -> dict:
    cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "10s", "--latency",
           "-s", str(HERE / "replay.lua"), f"http://127.0.0.1:{port}", "--", str(reqfile), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        die(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(line[len("WRKJSON "):])
    res["rps"] = res["requests"] / (res["duration_us"] / 1e6)
    res["socket_errors"] = sum(v for k, v in res["errors"].items() if k != "status")
    return res


def count_rows(conn, table: str) -> int:
    if table == INBOX_TABLE:  # only this run's shop: other benchmarks may share the database
        return conn.execute(
            f"SELECT count(*) FROM {INBOX_TABLE} WHERE shop_id = (SELECT id FROM accounts_shop WHERE app_key = %s)",
            [APP_KEY]).fetchone()[0]
    return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def measure(kind: str, *, args, wrk: str, port: int, master: int, gen: Generator, conn, redis_client,
            workdir: Path) -> dict:
    table = INBOX_TABLE if kind == "webhook" else TABLE
    # Enough distinct requests that no wrk thread wraps around: generous ceiling of 6,000 req/s.
    per_second = 6000
    warm = workdir / f"{kind}-warmup.tsv"
    gen.write(warm, kind, max(2000, int(per_second * args.warmup * 1.5)))
    log(f"{kind}: warm-up {args.warmup:g}s")
    run_wrk(wrk, port, warm, args.warmup, args.connections, args.wrk_threads)
    main = workdir / f"{kind}.tsv"
    gen.write(main, kind, int(per_second * args.duration * 1.5))
    time.sleep(0.5)  # let the warm-up's last requests land
    rows0, queued0 = count_rows(conn, table), queued_messages(redis_client)
    log(f"{kind}: {args.duration:g}s at {args.connections} connections")
    load0, cpu0 = os.getloadavg()[0], workers_cpu_seconds(master)
    res = run_wrk(wrk, port, main, args.duration, args.connections, args.wrk_threads)
    cpu1 = workers_cpu_seconds(master)
    res["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    time.sleep(0.5)
    rows1, queued1 = count_rows(conn, table), queued_messages(redis_client)
    ok = res["requests"] - res["non2xx"]
    res["worker_cpu_ms_per_req"] = round((cpu1 - cpu0) * 1000 / max(1, res["requests"]), 3)
    res.update({"kind": kind, "ok_2xx": ok, "rows_added": rows1 - rows0, "queued_added": queued1 - queued0})
    # wrk stops counting at the deadline; up to one request per connection may still land after it.
    res["rows_match"] = 0 <= res["rows_added"] - ok <= args.connections
    lat = res["latency_us"]
    log(f"{kind}: {res['rps']:.0f} req/s, p50 {lat['p50'] / 1000:.1f} ms, p90 {lat['p90'] / 1000:.1f} ms, "
        f"p99 {lat['p99'] / 1000:.1f} ms, non-2xx {res['non2xx']}, socket errors {res['socket_errors']}, "
        f"rows +{res['rows_added']} (2xx {ok}), queued +{res['queued_added']}, "
        f"worker CPU {res['worker_cpu_ms_per_req']:.2f} ms/req, load {res['loadavg_1m']}")
    return res


# --- main --------------------------------------------------------------------------------------------
def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=20, help="measured seconds per endpoint (default 20)")
    p.add_argument("--warmup", type=float, default=3, help="warm-up seconds per endpoint (default 3)")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    p.add_argument("--worker-class", default="sync", help="gunicorn worker class (sync, gthread)")
    p.add_argument("--threads", type=int, default=1, help="gunicorn threads per worker (gthread)")
    p.add_argument("--rounds", type=int, default=1, help="webhook/bare pairs to run; the median is reported")
    p.add_argument("--fresh", action="store_true", help="drop and re-create the bench database first")
    args = p.parse_args()
    if args.warmup < 1 or args.duration < 1:
        die("--warmup and --duration must be at least 1 second")

    database_url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/xianyu_bench")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    if not database_url.startswith(("postgres://", "postgresql://")):
        die("DATABASE_URL must point at PostgreSQL")
    wrk = ensure_wrk()
    busy_before = cpu_busy_fraction()
    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y%m%d-%H%M%S")

    redis_client = prepare_redis(redis_url)
    prepare_database(database_url, fresh=args.fresh)
    env = server_env(database_url, redis_url)
    log("migrate")
    manage(env, "migrate", "--noinput")
    with pg_connect(database_url) as conn:
        conn.execute(CREATE_TABLE_SQL)
    log(manage(env, "shop_add", "--platform", "xianguanjia", "--name", "bench shop", "--app-key", APP_KEY,
               "--app-secret", APP_SECRET).strip())

    port = free_port()
    proc = start_gunicorn(env, port, args, workdir / f"gunicorn-{started}.log")
    gen = Generator()
    results: list[tuple[dict, dict]] = []
    try:
        status, text = post_once(port, gen.push())
        if status != 200 or json.loads(text or "{}").get("result") != "success":
            die(f"a signed push to {WEBHOOK_PATH} answered {status}: {text[:300]}")
        status, text = post_once(port, gen.bare())
        if status != 200 or json.loads(text or "{}").get("result") != "success":
            die(f"a signed call to {BARE_PATH} answered {status}: {text[:300]}")
        log("pre-flight: both endpoints answer {\"result\":\"success\"}")
        with pg_connect(database_url) as conn:
            for r in range(args.rounds):
                if args.rounds > 1:
                    log(f"round {r + 1}/{args.rounds}")
                hook = measure("webhook", args=args, wrk=wrk, port=port, master=proc.pid, gen=gen, conn=conn,
                               redis_client=redis_client, workdir=workdir)
                bare = measure("bare", args=args, wrk=wrk, port=port, master=proc.pid, gen=gen, conn=conn,
                               redis_client=redis_client, workdir=workdir)
                results.append((hook, bare))
        rss = worker_rss_mb(proc.pid)
    finally:
        stop_gunicorn(proc)
        for f in workdir.glob("*.tsv"):
            f.unlink()
        redis_client.flushdb()

    ratios = [h["rps"] / b["rps"] for h, b in results]
    ratio = statistics.median(ratios)
    hook, bare = results[ratios.index(min(ratios, key=lambda x: abs(x - ratio)))]
    worst_rss = max((v for k, v in rss.items() if k.startswith("worker")), default=0.0)
    failures = []
    for res in (h for pair in results for h in pair):
        if res["non2xx"] or res["socket_errors"]:
            failures.append(f"{res['kind']}: {res['non2xx']} non-2xx, {res['socket_errors']} socket errors")
        if res["wrapped"]:
            failures.append(f"{res['kind']}: wrk ran out of distinct requests")
        if not res["rows_match"]:
            failures.append(f"{res['kind']}: rows +{res['rows_added']} but {res['ok_2xx']} 2xx")
        if res["kind"] == "webhook" and res["queued_added"] < res["rows_added"]:
            failures.append(f"webhook: {res['rows_added']} inbox rows but {res['queued_added']} queued messages")
    targets = {
        "webhook >= 60% of bare": ratio >= 0.60,
        "webhook p99 < 50 ms": hook["latency_us"]["p99"] < 50_000,
        "worker RSS < 250 MB": worst_rss < 250,
    }

    def ms(v: int) -> str:
        return f"{v / 1000:.1f}"

    gconf = f"{args.workers} {args.worker_class} worker(s)" + (f" x {args.threads} threads" if args.threads > 1 else "")
    print()
    print(f"ingest benchmark — gunicorn {gconf}, wrk {args.connections} connections, {args.duration:g}s "
          f"(after {args.warmup:g}s warm-up), PostgreSQL + Redis on loopback, {os.cpu_count()} cores"
          + (f", median of {args.rounds} rounds" if args.rounds > 1 else ""))
    print(f"{'endpoint':<26}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'non-2xx':>9}{'rows added':>12}"
          f"{'CPU ms/req':>12}")
    for res, name in ((hook, WEBHOOK_PATH), (bare, BARE_PATH)):
        lat = res["latency_us"]
        print(f"{name:<26}{res['rps']:>9.0f}{ms(lat['p50']):>9}{ms(lat['p90']):>9}{ms(lat['p99']):>9}"
              f"{res['non2xx']:>9}{res['rows_added']:>12}{res['worker_cpu_ms_per_req']:>12.2f}")
    print(f"worker CPU per request, webhook/bare: {hook['worker_cpu_ms_per_req'] / bare['worker_cpu_ms_per_req']:.2f}x "
          "(CPU of the gunicorn workers only; insensitive to other load)")
    print(f"ratio webhook/bare: {ratio:.1%}" + (f"  (rounds: {', '.join(f'{x:.1%}' for x in ratios)})"
                                                 if args.rounds > 1 else ""))
    if busy_before > 0.15:
        print(f"WARNING: the CPUs were {busy_before:.0%} busy before the benchmark started: something else was "
              "running, the figures are pessimistic")
    print("gunicorn RSS (MB): " + ", ".join(f"{k} {v}" for k, v in rss.items()))
    for name, ok in targets.items():
        print(f"target {name}: {'met' if ok else 'MISSED'}")
    for f in failures:
        print(f"CHECK FAILED: {f}")
    out = workdir / f"ingest-{started}.json"
    out.write_text(json.dumps({
        "args": vars(args), "cores": os.cpu_count(), "cpu_busy_before": busy_before, "ratio": ratio, "ratios": ratios,
        "webhook": hook, "bare": bare, "rounds": [{"webhook": h, "bare": b} for h, b in results],
        "rss_mb": rss, "targets": targets, "failures": failures,
    }, indent=2))
    print(f"figures written to {out.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
