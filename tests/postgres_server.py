"""A throwaway PostgreSQL server for the tests: initdb in a temp dir, a Unix socket, stopped after.

The real server from Debian's postgresql-15 package (`.ci/run` installs it where missing). The
cluster listens on a socket only (no TCP port to collide on), trusts local connections, and is
started once per test session; each test that needs a database gets a fresh one
(`CREATE DATABASE`). As root, initdb refuses to run, so the server runs as the `postgres` user
(made by the Debian package) or `nobody`.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

SUPERUSER = "clearance"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    path = found[-1] if found else shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: `apt-get install "
                           "postgresql-15` (see .ci/run)")
    return path


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"]
    raise RuntimeError("running as root, and no postgres or nobody user to run PostgreSQL as")


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.socket_dir = root / "socket"
        self.port = 5432 + secrets.randbelow(20000)  # names the socket file only

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True)
        as_user = _run_as()
        if as_user:
            user = as_user[2]
            pw = pwd.getpwnam(user)
            for path in (self.root, self.socket_dir):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        subprocess.run([*as_user, _bin("initdb"), "-D", str(self.data), "-U", SUPERUSER,
                        "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True)
        options = (f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(self.data), "-o", options,
                        "-l", str(self.root / "server.log"), "-w", "-t", "60", "start"],
                       check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run([*_run_as(), _bin("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "-w", "stop"], check=False, capture_output=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def create_database(self) -> str:
        """A new, empty database; its URL."""
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def create_migrated_database(self) -> str:
        """A new database with this release's schema (`clearance db migrate`); its URL."""
        from control.postgres import Database

        url = self.create_database()
        db = Database(url, max_size=1)
        try:
            db.migrate()
        finally:
            db.close()
        return url


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    with tempfile.TemporaryDirectory(prefix="clearance-pg-") as tmp:
        os.chmod(tmp, 0o755)
        server = PostgresServer(Path(tmp) / "pg")
        Path(server.root).mkdir()
        try:
            server.start()
        except subprocess.CalledProcessError as exc:
            log = server.root / "server.log"
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr.decode(errors='replace')}"
                               f"{log.read_text() if log.exists() else ''}") from exc
        try:
            yield server
        finally:
            server.stop()
