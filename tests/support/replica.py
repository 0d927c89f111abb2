"""A primary and its streaming replica, for the read-replica tests (tests/test_replica*.py).

`ReplicaPair()` starts a throwaway primary (support/pgcluster.py) set up for streaming
(wal_level = replica, WAL senders, replication trusted from 127.0.0.1), migrates a
template database on it to head (fsar_tui.db.migrations, as the suite's template_db),
then makes the replica with `pg_basebackup -R` (a base backup plus standby.signal and
primary_conninfo) and starts it on a port of its own. `database()` clones the template
on the primary for one test and waits until the replica has replayed it.

Lag is made real and deterministic by pausing replay on the replica
(`pg_wal_replay_pause()`: WAL keeps arriving, nothing more is applied) and resuming it;
`wait_caught_up()` waits until the replica has replayed everything the primary has.

One pair per test process (`shared_pair()`: per xdist worker), built by the first test
that asks — some 10 s with the migrations — and torn down when the session ends
(`replica_pair`, a session fixture; a test module imports `replica_pair_fixture` and
`replica_db_fixture` to use `replica_pair` and `replica_db`).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from fsar_tui.domain.replica_lag import record_end
from support.pgcluster import BIN, RUN_AS, Cluster, _prepare_user_access, free_port
from support.tiers import refuse_in_fast_tier

TEMPLATE = "fsar_replica_template"


class Standby(Cluster):
    """A replica of `primary`, made with pg_basebackup -R (no initdb)."""

    def __init__(self, primary: Cluster) -> None:
        refuse_in_fast_tier("a PostgreSQL replica")
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="fsar-pg-replica-"))
        self.root.chmod(0o755)
        self.pgdata = self.root / "data"
        self.log = self.root / "server.log"
        self.password = None
        self.port = free_port()
        _prepare_user_access(self.root)
        if RUN_AS:
            shutil.chown(self.root, RUN_AS, RUN_AS)
        self._run(
            [str(BIN / "pg_basebackup"), "-D", str(self.pgdata), "-h", "127.0.0.1", "-p", str(primary.port)]
            + ["-U", "postgres", "-R", "-X", "stream", "-c", "fast", "--no-sync"]
        )
        # The primary's postgresql.conf came with the backup: the last setting wins.
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nunix_socket_directories = '{self.root}'\nhot_standby = on\n")


class ReplicaPair:
    def __init__(self) -> None:
        from fsar_tui.db.migrations import migrate

        self.primary = Cluster()
        with (self.primary.pgdata / "postgresql.conf").open("a") as conf:
            # hot_standby_feedback: the primary's vacuum never cancels a replica's read.
            conf.write("wal_level = replica\nmax_wal_senders = 10\nhot_standby_feedback = on\n")
        with (self.primary.pgdata / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        self.replica: Standby | None = None
        try:
            with psycopg.connect(self.primary.dsn(), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
            migrate(self.primary.dsn(TEMPLATE))
            self.replica = Standby(self.primary).start()
            self.replica.wait_ready()
            self.wait_caught_up()
        except BaseException:
            self.destroy()
            raise

    @property
    def standby(self) -> Standby:
        assert self.replica is not None
        return self.replica

    def primary_dsn(self, dbname: str = "postgres") -> str:
        return self.primary.dsn(dbname)

    def replica_dsn(self, dbname: str = "postgres") -> str:
        return self.standby.dsn(dbname)

    # -- replay -------------------------------------------------------------------------

    def _on_replica(self, query: str) -> tuple:
        with psycopg.connect(self.replica_dsn(), autocommit=True) as conn:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row

    def pause(self, timeout: float = 30) -> None:
        """Stop replay and wait until it has stopped (WAL still streams in meanwhile)."""
        self._on_replica("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + timeout
        while self._on_replica("SELECT pg_get_wal_replay_pause_state()")[0] != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            time.sleep(0.05)

    def resume(self) -> None:
        self._on_replica("SELECT pg_wal_replay_resume()")

    def paused(self) -> bool:
        return self._on_replica("SELECT pg_get_wal_replay_pause_state()")[0] != "not paused"

    def primary_position(self) -> int:
        """Where the primary's WAL ends now (the end of its last record)."""
        with psycopg.connect(self.primary_dsn(), autocommit=True) as conn:
            row = conn.execute(
                "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::numeric, current_setting('wal_block_size')::int,"
                " pg_size_bytes(current_setting('wal_segment_size'))"
            ).fetchone()
        assert row is not None
        return record_end(int(row[0]), block_size=int(row[1]), segment_size=int(row[2]))

    def replayed(self) -> int:
        return int(self._on_replica("SELECT (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::numeric")[0])

    def wait_caught_up(self, timeout: float = 60) -> None:
        """Until the replica has replayed everything the primary had when this was called."""
        target = self.primary_position()
        deadline = time.monotonic() + timeout
        while self.replayed() < target:
            assert time.monotonic() < deadline, f"the replica did not catch up ({self.replayed()} < {target})"
            time.sleep(0.05)

    # -- one database per test ------------------------------------------------------------

    def database(self) -> str:
        """A fresh database at head on the primary, replayed on the replica: its name."""
        name = f"fsar_r{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.primary_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(TEMPLATE))
            )
        self.wait_caught_up()
        return name

    def drop(self, name: str) -> None:
        if self.paused():
            self.resume()
        with psycopg.connect(self.primary_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def destroy(self) -> None:
        if self.replica is not None:
            self.replica.destroy()
        self.primary.destroy()


_pair: ReplicaPair | None = None


def shared_pair() -> ReplicaPair:
    """This process's pair, made by the first caller."""
    global _pair
    if _pair is None:
        _pair = ReplicaPair()
    return _pair


def destroy_shared_pair() -> None:
    global _pair
    pair, _pair = _pair, None
    if pair is not None:
        pair.destroy()


@pytest.fixture(scope="session", name="replica_pair")
def replica_pair_fixture() -> Iterator[ReplicaPair]:
    """The process's primary + replica (a module that uses it imports this fixture)."""
    try:
        yield shared_pair()
    finally:
        destroy_shared_pair()


class ReplicaDb:
    """One test's database on the pair: `primary` and `replica` are its two DSNs."""

    def __init__(self, pair: ReplicaPair, name: str) -> None:
        self.pair = pair
        self.name = name
        self.primary = pair.primary_dsn(name)
        self.replica = pair.replica_dsn(name)

    def pause(self) -> None:
        self.pair.pause()

    def resume(self) -> None:
        self.pair.resume()

    def wait_caught_up(self) -> None:
        self.pair.wait_caught_up()

    def through(self, host: str, port: int) -> str:
        """The replica's DSN for this database, reached at host:port (a proxy)."""
        return make_conninfo(self.replica, host=host, port=str(port))


@pytest.fixture(name="replica_db")
def replica_db_fixture(replica_pair: ReplicaPair) -> Iterator[ReplicaDb]:
    """A database of this test's own on the primary, replayed on the replica; replay is
    resumed and the database dropped afterwards."""
    name = replica_pair.database()
    try:
        yield ReplicaDb(replica_pair, name)
    finally:
        replica_pair.drop(name)
