"""Real backing services for tests, started on free loopback ports and stopped afterwards.

::

    SupabaseStack                     what hosted Supabase is, as far as the service can tell
    ├── PostgresCluster               throwaway PostgreSQL cluster (run as the postgres user)
    │     + Supabase roles, then every supabase/migrations/*.sql in name order
    ├── PostgrestServer               the PostgREST binary (stoppable, for fault tests)
    └── RestGateway                   /rest/v1-stripping reverse proxy (stdlib, threaded),
                                      with an injectable delay and safeupdate emulation
    RedisServer                       redis-server without persistence

Binaries are looked up, never installed here: ``scripts/setup_test_services.sh`` installs them.
:func:`missing_binaries` says what is absent so fixtures can skip (or fail on CI) with a reason.
See ``/work/shared/docs/LOCAL_SERVICES.md`` for the background.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = REPO_ROOT / "supabase" / "migrations"
TOOLS_DIR = REPO_ROOT / ".tools"
POSTGREST_VERSION = "12.0.2"
POSTGREST_SHA256 = "0af68afe747ce09964f29e7c872e77b038aec483a8f3923c20850e850447add5"
POSTGREST_DEFAULT_PATH = TOOLS_DIR / f"postgrest-{POSTGREST_VERSION}" / "postgrest"
DB_MAX_ROWS = 1000  # hosted Supabase's default cap on rows per response
LOOPBACK = "127.0.0.1"


class ServiceStartError(RuntimeError):
    """A service binary exists but did not come up; the message carries its log tail."""


# --- discovery -----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def find_postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding initdb and postgres (or $PG_BIN_DIR)."""
    env = os.environ.get("PG_BIN_DIR")
    candidates = [Path(env)] if env else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for path in candidates:
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_postgrest() -> Path | None:
    """The verified PostgREST binary: $POSTGREST_BIN, ``.tools/`` or PATH (sha256 checked)."""
    env = os.environ.get("POSTGREST_BIN")
    on_path = shutil.which("postgrest")
    for candidate in (env, str(POSTGREST_DEFAULT_PATH), on_path):
        if not candidate:
            continue
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK) and _sha256(path) == POSTGREST_SHA256:
            return path
    return None


def find_redis_server() -> Path | None:
    """``redis-server`` from $REDIS_SERVER or PATH."""
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    return Path(found) if found and Path(found).is_file() else None


def missing_binaries(*, supabase: bool = True, redis: bool = False) -> list[str]:
    """Human-readable names of what cannot be found (empty when everything is there)."""
    missing: list[str] = []
    hint = "run scripts/setup_test_services.sh"
    if supabase:
        if find_postgres_bin() is None:
            missing.append(f"PostgreSQL server binaries (/usr/lib/postgresql/*/bin; {hint})")
        if find_postgrest() is None:
            missing.append(f"PostgREST {POSTGREST_VERSION} with the pinned sha256 ({hint})")
        if os.geteuid() == 0 and not _user_exists("postgres"):
            missing.append("the 'postgres' OS user (initdb refuses to run as root)")
    if redis and find_redis_server() is None:
        missing.append(f"redis-server ({hint})")
    return missing


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


# --- helpers -------------------------------------------------------------------------------


def mint_jwt(secret: str, role: str, *, ttl_s: float = 10 * 365 * 86400) -> str:
    """An HS256 API key of the kind Supabase issues: ``{"role": role, "iat", "exp"}``."""
    now = int(time.time())
    claims = {"iss": "supabase", "role": role, "iat": now, "exp": now + int(ttl_s)}
    return jwt.encode(claims, secret, algorithm="HS256")


def _wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise ServiceStartError(f"{what} did not become ready in {timeout_s:.0f}s:\n{_tail(log)}")


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _stop_process(proc: subprocess.Popen[bytes] | None, *, timeout_s: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout_s)


# --- PostgreSQL ----------------------------------------------------------------------------


SUPABASE_ROLES_SQL = """
-- The roles hosted Supabase has, and its default privileges on new objects in public
-- (which the migrations must narrow down themselves).
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator login noinherit password '{password}';
grant anon, authenticated, service_role to authenticator;
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences
    to anon, authenticated, service_role;
alter default privileges in schema public grant all on functions
    to anon, authenticated, service_role;
"""


class PostgresCluster:
    """A throwaway PostgreSQL cluster on a free loopback port.

    ``initdb`` and ``postgres`` refuse to run as root, so when the tests run as root the
    cluster is created and run as the ``postgres`` OS user in a folder that user owns.
    """

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.data_dir = Path(tempfile.mkdtemp(prefix="nseq-pg-"))
        self.log = self.data_dir / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        self._started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            check=True,
            capture_output=True,
            text=True,
            user=self._user,
            cwd=self.data_dir,
            timeout=120,
        )

    def start(self) -> None:
        """initdb, then pg_ctl start (waits until it accepts connections)."""
        if self._user is not None:
            shutil.chown(self.data_dir, user=self._user, group=self._user)
        os.chmod(self.data_dir, 0o700)
        pgdata = self.data_dir / "pgdata"
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(pgdata),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses={LOOPBACK} -c port={self.port} "
            f"-c unix_socket_directories={self.data_dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        try:
            self._run(
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(pgdata),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            )
        except subprocess.CalledProcessError as exc:
            message = f"postgres did not start: {exc.stderr}\n{_tail(self.log)}"
            raise ServiceStartError(message) from exc
        self._started = True

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        if self._started:
            with contextlib.suppress(subprocess.SubprocessError):
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "-D",
                    str(self.data_dir / "pgdata"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                )
            self._started = False
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def psql(self, sql: str, *, user: str = "postgres") -> str:
        """Run SQL (stop on the first error) and return psql's unaligned, tuples-only output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                user,
                "-d",
                "postgres",
            ],
            input=sql,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout.strip()

    def dsn(self, user: str, password: str) -> str:
        """A libpq URI for ``user`` on this cluster."""
        return f"postgres://{user}:{password}@{LOOPBACK}:{self.port}/postgres"


def apply_migrations(cluster: PostgresCluster, folder: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every ``*.sql`` in ``folder`` in name order, each in one transaction."""
    applied = []
    for path in sorted(folder.glob("*.sql")):
        cluster.psql(f"begin;\n{path.read_text()}\ncommit;\n")
        applied.append(path.name)
    return applied


# --- PostgREST -----------------------------------------------------------------------------


class PostgrestServer:
    """The PostgREST binary configured like Supabase's REST layer; restartable on its port."""

    def __init__(self, binary: Path, *, db_uri: str, jwt_secret: str, log_dir: Path) -> None:
        self.binary = binary
        self.db_uri = db_uri
        self.jwt_secret = jwt_secret
        self.port = free_port()
        self.admin_port = free_port()
        self.log = log_dir / "postgrest.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _ready(self) -> bool:
        if not self.running:
            raise ServiceStartError(f"postgrest exited:\n{_tail(self.log)}")
        try:
            conn = http.client.HTTPConnection(LOOPBACK, self.admin_port, timeout=1)
            conn.request("GET", "/ready")
            status = conn.getresponse().status
            conn.close()
        except OSError:
            return False
        return status == 200

    def start(self) -> None:
        """Start (or restart) PostgREST and wait until its schema cache is loaded."""
        if self.running:
            return
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PGRST_DB_URI": self.db_uri,
            "PGRST_DB_SCHEMAS": "public",
            "PGRST_DB_ANON_ROLE": "anon",
            "PGRST_JWT_SECRET": self.jwt_secret,
            "PGRST_SERVER_HOST": LOOPBACK,
            "PGRST_SERVER_PORT": str(self.port),
            "PGRST_ADMIN_SERVER_PORT": str(self.admin_port),
            "PGRST_DB_MAX_ROWS": str(DB_MAX_ROWS),
            "PGRST_DB_POOL": "10",
            "PGRST_LOG_LEVEL": "warn",
        }
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(
                [str(self.binary)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        _wait_until(self._ready, timeout_s=30, what="postgrest", log=self.log)

    def stop(self) -> None:
        """Stop the process (the port stays reserved for :meth:`start`)."""
        _stop_process(self._proc)
        self._proc = None

    def reload_schema(self) -> None:
        """Reload the schema cache, e.g. after a migration (SIGUSR1)."""
        if self._proc is not None and self.running:
            import signal

            self._proc.send_signal(signal.SIGUSR1)


# --- the /rest/v1 gateway ------------------------------------------------------------------

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
# Query parameters that are not row filters (anything else on a table request filters rows).
_NON_FILTER_PARAMS = frozenset({"select", "order", "limit", "offset", "columns", "on_conflict"})
PREFIX = "/rest/v1"


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    gateway: RestGateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hung up mid-response are expected in fault tests: stay quiet."""


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _GatewayServer

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        self._proxy()

    def do_HEAD(self) -> None:
        self._proxy()

    def do_POST(self) -> None:
        self._proxy()

    def do_PATCH(self) -> None:
        self._proxy()

    def do_PUT(self) -> None:
        self._proxy()

    def do_DELETE(self) -> None:
        self._proxy()

    def do_OPTIONS(self) -> None:
        self._proxy()

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self._reply(status, body, [("Content-Type", "application/json")])

    def _proxy(self) -> None:
        gateway = self.server.gateway
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        gateway.requests += 1
        if gateway.delay_s > 0:
            time.sleep(gateway.delay_s)
        parsed = urllib.parse.urlsplit(self.path)
        if not (parsed.path == PREFIX or parsed.path.startswith(PREFIX + "/")):
            self._json(404, {"message": "no Route matched with those values"})
            return
        upstream_path = parsed.path[len(PREFIX) :] or "/"
        if parsed.query:
            upstream_path += "?" + parsed.query
        if self._unfiltered_write(parsed):
            gateway.rejected_unfiltered += 1
            self._json(
                400,
                {
                    "code": "21000",
                    "message": f"{self.command} requires a WHERE clause",
                    "details": None,
                    "hint": "safeupdate (as loaded on hosted Supabase)",
                },
            )
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            conn = http.client.HTTPConnection(LOOPBACK, gateway.upstream_port, timeout=30)
            conn.request(self.command, upstream_path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            status = resp.status
            conn.close()
        except OSError as exc:
            self._json(502, {"message": f"An invalid response was received from upstream: {exc}"})
            return
        self._reply(status, data, out_headers)

    def _unfiltered_write(self, parsed: urllib.parse.SplitResult) -> bool:
        """safeupdate: an UPDATE (PATCH) or DELETE on a table without any row filter."""
        if self.command not in ("PATCH", "DELETE") or "/rpc/" in parsed.path:
            return False
        params = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        return not any(name not in _NON_FILTER_PARAMS for name, _ in params)


class RestGateway:
    """Hosted Supabase's gateway in miniature: strips ``/rest/v1`` and forwards to PostgREST.

    ``delay_s`` delays every request (a slow network or overloaded server), and unfiltered
    PATCH/DELETE requests are refused as the safeupdate extension on hosted Supabase would.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.delay_s = 0.0
        self.requests = 0
        self.rejected_unfiltered = 0
        self._server = _GatewayServer((LOOPBACK, 0), _GatewayHandler)
        self._server.gateway = self
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """What SUPABASE_URL should be."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the whole stack -------------------------------------------------------------------------

TABLES = (
    "factor_betas_cache",
    "heatmap_cache",
    "heatmap_windows",
    "heatmap_runs",
    "heatmap_checkpoints",
    "job_leases",
)


@dataclass
class SupabaseStack:
    """PostgreSQL + PostgREST + gateway, with the migrations applied; see the module docstring."""

    cluster: PostgresCluster
    postgrest: PostgrestServer
    gateway: RestGateway
    jwt_secret: str
    migrations: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """SUPABASE_URL."""
        return self.gateway.url

    @property
    def service_key(self) -> str:
        """A service_role key (server-side writes)."""
        return mint_jwt(self.jwt_secret, "service_role")

    @property
    def anon_key(self) -> str:
        """An anon key (what a browser dashboard holds)."""
        return mint_jwt(self.jwt_secret, "anon")

    def mint_key(self, role: str, *, secret: str | None = None) -> str:
        """A key for ``role``, signed with ``secret`` (default: the right one)."""
        return mint_jwt(secret or self.jwt_secret, role)

    def psql(self, sql: str) -> str:
        """Run SQL as the postgres superuser."""
        return self.cluster.psql(sql)

    def stop_postgrest(self) -> None:
        """Take the REST layer down (the gateway then answers 502, as hosted Supabase would)."""
        self.postgrest.stop()

    def start_postgrest(self) -> None:
        """Bring the REST layer back on the same port."""
        self.postgrest.start()

    def set_delay(self, seconds: float) -> None:
        """Delay every request through the gateway by ``seconds``."""
        self.gateway.delay_s = seconds

    def reset(self) -> None:
        """Healthy again and empty: PostgREST up, no delay, every table truncated."""
        self.gateway.delay_s = 0.0
        self.start_postgrest()
        self.psql("truncate " + ", ".join(f"public.{t}" for t in TABLES) + ";")

    def close(self) -> None:
        """Stop everything and delete the cluster."""
        self.gateway.stop()
        self.postgrest.stop()
        self.cluster.stop()


@contextlib.contextmanager
def supabase_stack() -> Iterator[SupabaseStack]:
    """Start the stack (about two seconds) and stop it on exit."""
    pg_bin = find_postgres_bin()
    postgrest_bin = find_postgrest()
    if pg_bin is None or postgrest_bin is None:
        raise ServiceStartError("; ".join(missing_binaries(supabase=True)))
    jwt_secret = "local-test-secret-" + os.urandom(16).hex()
    password = os.urandom(12).hex()
    cluster = PostgresCluster(pg_bin)
    postgrest: PostgrestServer | None = None
    gateway: RestGateway | None = None
    try:
        cluster.start()
        cluster.psql(SUPABASE_ROLES_SQL.format(password=password))
        migrations = apply_migrations(cluster)
        log_dir = Path(tempfile.mkdtemp(prefix="nseq-postgrest-"))
        postgrest = PostgrestServer(
            postgrest_bin,
            db_uri=cluster.dsn("authenticator", password),
            jwt_secret=jwt_secret,
            log_dir=log_dir,
        )
        postgrest.start()
        gateway = RestGateway(postgrest.port)
        gateway.start()
        stack = SupabaseStack(cluster, postgrest, gateway, jwt_secret, migrations)
        yield stack
    finally:
        if gateway is not None:
            gateway.stop()
        if postgrest is not None:
            postgrest.stop()
            shutil.rmtree(postgrest.log.parent, ignore_errors=True)
        cluster.stop()


# --- Redis ---------------------------------------------------------------------------------


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence, in the foreground."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="nseq-redis-"))
        self.log = self.dir / "redis.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _ping(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise ServiceStartError(f"redis-server exited:\n{_tail(self.log)}")
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        """Start and wait for PONG."""
        args = [
            str(self.binary),
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(self.dir),
            "--logfile",
            str(self.log),
        ]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until(self._ping, timeout_s=15, what="redis-server", log=self.log)

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        _stop_process(self._proc)
        self._proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """Start redis-server and stop it on exit."""
    binary = find_redis_server()
    if binary is None:
        raise ServiceStartError("; ".join(missing_binaries(supabase=False, redis=True)))
    server = RedisServer(binary)
    try:
        server.start()
        yield server
    finally:
        server.stop()
