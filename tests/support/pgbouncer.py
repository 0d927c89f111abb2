"""A real PgBouncer in front of the test server, for tests that run fsar-tui through a
transaction pooler (the production Neon setup has one).

`PgBouncer(server_dsn).start()` runs the `pgbouncer` binary (the Debian package; `.ci/run`
installs it) on 127.0.0.1 on a free port, in transaction mode and otherwise with
PgBouncer's DEFAULT configuration — in particular no `ignore_startup_parameters`, so a
client that sends startup `options` is refused, as Neon's pooler refuses it. Every
database name is forwarded to the same name on the server (`* = host=… port=…`), so a
test's fresh database (conftest's `db_dsn`) is reachable as `bouncer.dsn(db_dsn)`.
Authentication: `auth_type = trust` with a userlist naming the server DSN's user.

A test that needs PgBouncer and cannot find it fails (`pgbouncer_binary`), it does not
skip: CI must run these tests. As root, PgBouncer refuses to run, so it runs as the
same unprivileged user as the throwaway clusters (support/pgcluster.py).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from support.pgcluster import RUN_AS, _prepare_user_access, free_port
from support.tiers import refuse_in_fast_tier


def pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None)
    if found is None:
        raise RuntimeError(
            "pgbouncer is not installed: `apt-get install -y pgbouncer` (the Debian package; .ci/run installs it)"
        )
    return found


class PgBouncer:
    """One pgbouncer process in transaction mode, in front of the server of `server_dsn`."""

    def __init__(self, server_dsn: str, *, ignore_startup_parameters: str | None = None) -> None:
        refuse_in_fast_tier("PgBouncer")
        self.binary = pgbouncer_binary()
        server = conninfo_to_dict(server_dsn)
        self.user = str(server.get("user") or "postgres")
        self.server_host = str(server.get("host") or "127.0.0.1")
        self.server_port = int(server.get("port") or 5432)
        self.root = Path(tempfile.mkdtemp(prefix="fsar-pgbouncer-"))
        self.root.chmod(0o755)
        self.port = free_port()
        self.log = self.root / "pgbouncer.log"
        self.proc: subprocess.Popen[bytes] | None = None
        _prepare_user_access(self.root)
        (self.root / "userlist.txt").write_text(f'"{self.user}" ""\n')
        # Only what a test harness must say: where to listen and log, how to reach the
        # server, how to authenticate — and the pool mode under test. Everything else is
        # PgBouncer's default (no ignore_startup_parameters, no max_prepared_statements
        # in 1.18, no server_reset_query_always …).
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={self.server_host} port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.root}\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
            "auth_type = trust\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            f"admin_users = {self.user}\n"
            "pool_mode = transaction\n"
            # Only for the test of the configuration the issue tried second (`options`
            # ignored: silently dropped, so the timeout must travel another way).
            + (f"ignore_startup_parameters = {ignore_startup_parameters}\n" if ignore_startup_parameters else "")
        )
        if RUN_AS:
            for path in [self.root, *self.root.iterdir()]:
                shutil.chown(path, RUN_AS, RUN_AS)

    def dsn(self, dsn: str) -> str:
        """`dsn` (a database on the server) as reached through this PgBouncer."""
        return make_conninfo(dsn, host="127.0.0.1", port=str(self.port))

    def admin_dsn(self) -> str:
        """PgBouncer's own console (`SHOW POOLS`, `SHOW CONFIG`, …)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/pgbouncer"

    def start(self, timeout: float = 30) -> PgBouncer:
        self.proc = subprocess.Popen(
            [self.binary, str(self.root / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            user=RUN_AS,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"pgbouncer exited with {self.proc.returncode}: {err}{self.log_text()}")
            try:
                # The console answers in simple-query mode only, autocommit.
                with psycopg.connect(self.admin_dsn(), autocommit=True, connect_timeout=2) as conn:
                    conn.execute("SHOW VERSION", prepare=False)
                return self
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def config(self) -> dict[str, str]:
        """PgBouncer's running configuration, key → value (SHOW CONFIG)."""
        with psycopg.connect(self.admin_dsn(), autocommit=True) as conn:
            cur = conn.cursor()
            cur.execute("SHOW CONFIG", prepare=False)
            names = [c.name for c in cur.description or ()]
            return {row[names.index("key")]: row[names.index("value")] for row in cur.fetchall()}

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        shutil.rmtree(self.root, ignore_errors=True)
