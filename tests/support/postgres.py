"""A real, throwaway PostgreSQL server for tests (no Docker).

Why this module looks the way it does:

* Test machines are fresh Debian 12 hosts where the tests run as root.  PostgreSQL refuses to
  run as root, so when we are root every server command runs as the ``postgres`` OS user (via
  ``runuser``) inside a temp dir that user owns.  As a non-root user the commands run directly.
* Debian keeps the server binaries off ``PATH`` in ``/usr/lib/postgresql/<version>/bin``.  We
  use the highest installed version from there and never whatever ``initdb``/``pg_ctl`` happen
  to be first on ``PATH`` (e.g. ``/usr/local/bin`` wrappers).  If nothing is installed and we
  are root, the Debian ``postgresql`` package is installed with apt-get, under a file lock so
  parallel pytest processes don't run apt-get concurrently.
* The server is tuned for speed, not durability (fsync off, ...), listens on a free loopback
  port, and is stopped and deleted on ``stop()`` or, failing that, at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from tests.support.apt import check_run, install_once

if TYPE_CHECKING:
    from typing import Self

PG_ROOT = Path("/usr/lib/postgresql")
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
OS_USER = "postgres"
START_TIMEOUT = 30.0

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
}


def _is_root() -> bool:
    return os.geteuid() == 0


def _version_key(path: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in path.name.split("."))
    except ValueError:
        return (-1,)


def _find_bin_dir() -> Path | None:
    """Return the bin dir of the highest PostgreSQL version in the Debian layout, if any."""
    if not PG_ROOT.is_dir():
        return None
    candidates = [
        version_dir / "bin"
        for version_dir in PG_ROOT.iterdir()
        if _version_key(version_dir) != (-1,)
        and all(os.access(version_dir / "bin" / name, os.X_OK) for name in REQUIRED_BINARIES)
    ]
    return max(candidates, key=lambda b: _version_key(b.parent), default=None)


def ensure_postgres_installed() -> str:
    """Return the Debian PostgreSQL bin dir, installing the ``postgresql`` package if needed."""
    bin_dir = _find_bin_dir()
    if bin_dir is not None:
        return str(bin_dir)
    if not _is_root():
        raise RuntimeError(
            f"PostgreSQL server binaries not found under {PG_ROOT}/<version>/bin. Install them "
            "with: sudo apt-get install -y --no-install-recommends postgresql"
        )
    install_once("postgresql", lambda: _find_bin_dir() is not None)
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(f"apt-get installed 'postgresql' but no server binaries in {PG_ROOT}")
    return str(bin_dir)


def _ensure_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        check_run(["useradd", "--system", "--user-group", "--shell", "/bin/sh", OS_USER])
        return pwd.getpwnam(OS_USER)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway PostgreSQL server for tests: initdb into a temp dir owned by `postgres`,
    start on a free loopback port, stop and delete on stop()."""

    def __init__(self, workdir: str | None = None, settings: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.settings = settings or {}  # server settings on top of SERVER_SETTINGS (the bench's)
        self.port: int | None = None
        self._bin_dir: Path | None = None
        self._root: Path | None = None  # temp dir holding data/, sock/ and server.log
        self._running = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the default ``postgres`` database."""
        return self._url("postgres")

    def start(self) -> PostgresServer:
        if self._running:
            return self
        self._bin_dir = Path(ensure_postgres_installed())
        self._root = Path(tempfile.mkdtemp(prefix="dueflow-pg-", dir=self.workdir))
        atexit.register(self.stop)
        try:
            self._initdb()
            for attempt in range(3):  # the free port may be grabbed by someone else meanwhile
                self.port = _free_port()
                self._log_file.unlink(missing_ok=True)
                try:
                    self._pg_ctl_start()
                    break
                except RuntimeError:
                    if attempt == 2 or "already in use" not in self._log_tail():
                        raise
            self._running = True
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast, then immediate) and delete its files. Safe to call twice."""
        atexit.unregister(self.stop)
        self._running = False
        if self._root is not None and (self._data_dir / "postmaster.pid").exists():
            for mode in ("fast", "immediate"):
                if self._run(self._pg_ctl("stop", "-m", mode, "-w", "-t", "15")).returncode == 0:
                    break
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL."""
        url = self._url(name)  # raises if the server is not running
        conn = self._connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return url

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------

    @property
    def _data_dir(self) -> Path:
        assert self._root is not None
        return self._root / "data"

    @property
    def _socket_dir(self) -> Path:
        assert self._root is not None
        return self._root / "sock"

    @property
    def _log_file(self) -> Path:
        assert self._root is not None
        return self._root / "server.log"

    def _bin(self, name: str) -> str:
        assert self._bin_dir is not None
        return str(self._bin_dir / name)

    def _pg_ctl(self, *args: str) -> list[str]:
        return [self._bin("pg_ctl"), "-D", str(self._data_dir), *args]

    def _url(self, database: str) -> str:
        if not self._running or self.port is None:
            raise RuntimeError("PostgresServer is not running; call start() first")
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{quote(database, safe='')}"

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server command, as the ``postgres`` OS user when we are root."""
        if _is_root():
            if shutil.which("runuser"):
                cmd = ["runuser", "-u", OS_USER, "--", *cmd]
            else:
                cmd = ["su", OS_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]
        return subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=self._root)

    def _checked(self, cmd: list[str]) -> None:
        result = self._run(cmd)
        if result.returncode != 0:
            raise RuntimeError(
                f"command failed ({result.returncode}): {shlex.join(cmd)}\n"
                f"{result.stdout}{result.stderr}\n--- server log tail ---\n{self._log_tail()}"
            )

    def _initdb(self) -> None:
        assert self._root is not None
        for path in (self._data_dir, self._socket_dir):
            path.mkdir(mode=0o700)
        if _is_root():
            user = _ensure_os_user()
            for path in (self._root, self._data_dir, self._socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        base = [self._bin("initdb"), "-D", str(self._data_dir), "-A", "trust", "-U", "postgres"]
        base.append("--encoding=UTF8")
        if self._run([*base, "--locale=C.UTF-8"]).returncode != 0:
            # A failed initdb removes the data dir contents it created; retry without a locale.
            self._checked([*base, "--no-locale"])

    def _pg_ctl_start(self) -> None:
        settings = {
            **SERVER_SETTINGS,
            **self.settings,
            "port": str(self.port),
            "unix_socket_directories": str(self._socket_dir),
        }
        options = shlex.join(
            arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")
        )
        log, timeout = str(self._log_file), str(int(START_TIMEOUT))
        self._checked(self._pg_ctl("start", "-l", log, "-o", options, "-w", "-t", timeout))

    def _connect(self, timeout: int = 5) -> psycopg2.extensions.connection:
        return psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user="postgres",
            dbname="postgres",
            connect_timeout=timeout,
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self._connect(timeout=2).close()
                return
            except psycopg2.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"PostgreSQL on port {self.port} not ready after {START_TIMEOUT:.0f}s: "
                        f"{exc}\n--- server log tail ---\n{self._log_tail()}"
                    ) from exc
                time.sleep(0.1)

    def log_lines(self) -> list[str]:
        """The server's log so far (the bench reads its checkpoints, autovacuums, slow plans)."""
        if self._root is None or not self._log_file.exists():
            return []
        return self._log_file.read_text(errors="replace").splitlines()

    def _log_tail(self, lines: int = 40) -> str:
        if self._root is None or not self._log_file.exists():
            return "(no server log)"
        return "\n".join(self._log_file.read_text(errors="replace").splitlines()[-lines:])
