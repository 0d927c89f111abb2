"""The webhook receiver under a burst keeps to a bounded pool of database connections.

The attack: 2,000 POSTs at 400 concurrent against `fsar-tui webhook`, which opened one
connection per request — 799 answered 503 "no free connection slots", and the server's
other clients got "FATAL: sorry, too many clients already" until the burst ended. Now
the receiver holds at most --pool-size connections (default 8); a request waits up to
--pool-timeout for one and only then is answered 503 with Retry-After.

Measured here on a real PostgreSQL, in-process, on a free port: pg_stat_activity is
sampled every few ms during the burst (backends of the test's database other than the
sampler: the webhook's, by application_name, and all of them).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg
import pytest

from support.sql import q
from test_webhook import Log

PATH = "/stripe/webhook"
APP_NAME = "fsar-tui webhook"


def _deliver(port: int, *, timeout: float = 120) -> tuple[int, dict[str, str], dict]:
    event = {"id": f"evt_pool_{uuid.uuid4().hex}", "type": "customer.created", "created": int(time.time()),
             "data": {"object": {"id": "cus_pool"}}}  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", PATH, body=json.dumps(event), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        conn.close()


def _burst(port: int, requests: int, concurrent: int) -> list[tuple[int, dict[str, str], dict]]:
    with ThreadPoolExecutor(max_workers=concurrent) as pool:
        return list(pool.map(lambda _: _deliver(port), range(requests)))


class Sampler:
    """The most backends seen on the database at once, the webhook's and all (but its own)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.most_webhook = 0
        self.most_all = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                webhook, everyone = conn.execute(
                    "SELECT count(*) FILTER (WHERE application_name = %s), count(*) FROM pg_stat_activity "
                    # client backends only: an autovacuum worker on this database is not ours
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'",
                    (APP_NAME,),
                ).fetchone()
                self.most_webhook = max(self.most_webhook, webhook)
                self.most_all = max(self.most_all, everyone)
                self.samples += 1
                time.sleep(0.002)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def serving(dsn: str, **kwargs) -> Iterator[tuple[int, Log, object]]:
    from fsar_tui.services.webhook import make_server

    log = Log()
    server = make_server(dsn, "127.0.0.1", 0, PATH, None, log=log, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], log, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _backends(dsn: str) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()"
    return q(dsn, sql, (APP_NAME,))[0][0]


def test_a_burst_of_300_is_all_answered_200_within_a_pool_of_8(db_dsn):
    with serving(db_dsn, pool_size=8, pool_timeout=60) as (port, log, _), Sampler(db_dsn) as sampler:
        answers = _burst(port, 300, 300)
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == 300, sorted(set(statuses))
    assert {reply["result"] for _, _, reply in answers} == {"skipped"}
    assert q(db_dsn, "SELECT count(*) FROM stripe_events")[0][0] == 300
    assert sampler.samples > 10
    assert 1 <= sampler.most_webhook <= 8, sampler.most_webhook
    assert sampler.most_all <= 8, sampler.most_all  # nothing else of ours connected to it either
    assert len(log.lines()) == 300
    # server_close() closed the pool: its connections are gone.
    deadline = time.monotonic() + 10
    while _backends(db_dsn) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends(db_dsn) == 0


def test_a_tiny_pool_answers_503_with_retry_after_only_when_the_wait_runs_out(db_dsn):
    """One connection, a 0.3 s wait: the request holding it is stuck on a lock, the others
    wait 0.3 s and are answered 503 with Retry-After; the stuck one then lands. The burst
    starts once the stuck request is seen waiting on the lock: started together, under
    load every request could still be waiting for the warm-up's connection to come back
    (a fresh-clone run had 20 × 503)."""
    with serving(db_dsn, pool_size=1, pool_timeout=0.3) as (port, log, _), Sampler(db_dsn) as sampler:
        assert _deliver(port)[0] == 200  # the pool's one connection is up
        with psycopg.connect(db_dsn) as holder, ThreadPoolExecutor(max_workers=1) as one:
            holder.execute("LOCK TABLE stripe_events IN ACCESS EXCLUSIVE MODE")
            try:
                stuck = one.submit(_deliver, port)
                waiting = (
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
                )
                deadline = time.monotonic() + 60
                while q(db_dsn, waiting, (APP_NAME,)) != [(1,)]:
                    assert time.monotonic() < deadline and not stuck.done(), "the request never reached the lock"
                    time.sleep(0.05)
                answers = _burst(port, 19, 19)
            finally:
                holder.commit()
            answers.append(stuck.result())
    statuses = [status for status, _, _ in answers]
    assert statuses == [503] * 19 + [200], statuses
    for status, headers, reply in answers:
        if status == 503:
            assert headers.get("retry-after", "").isdigit(), headers
            assert reply == {"error": "busy: try again later"}
    assert q(db_dsn, "SELECT count(*) FROM stripe_events")[0][0] == 2
    # The webhook's one, the holder's and the lock poll's.
    assert sampler.most_webhook == 1 and sampler.most_all <= 3, (sampler.most_webhook, sampler.most_all)
    busy = [line for line in log.lines() if " 503 busy: no database connection free (pool of 1)" in line]
    assert len(busy) == 19, log.lines()


def test_an_unreachable_database_is_503_with_retry_after_and_its_cause():
    with serving("host=127.0.0.1 port=1 dbname=x connect_timeout=2", pool_size=2, pool_timeout=0.5) as (port, log, _):
        time.sleep(0.3)  # the pool's first attempt has failed
        status, headers, reply = _deliver(port, timeout=10)
    assert (status, reply) == (503, {"error": "database unavailable"})
    assert headers.get("retry-after", "").isdigit()
    (line,) = log.lines()
    assert " 503 database unavailable: cannot connect to 127.0.0.1:1/x: connection refused" in line, line


def test_pool_size_and_timeout_settings(tmp_path, isolated_env, run_cli):
    from fsar_tui.config import load_settings
    from fsar_tui.errors import UsageError

    path = tmp_path / "config.toml"
    path.write_text("")
    s = load_settings(env={}, flags={}, config_path=path)
    assert (s.webhook_pool_size, s.webhook_pool_timeout_s) == (8, 5.0)
    path.write_text("webhook_pool_size = 3\nwebhook_pool_timeout_s = 1.5\n")
    s = load_settings(env={}, flags={}, config_path=path)
    assert (s.webhook_pool_size, s.webhook_pool_timeout_s) == (3, 1.5)
    s = load_settings(env={"FSAR_WEBHOOK_POOL_SIZE": "12"}, flags={}, config_path=path)
    assert s.webhook_pool_size == 12
    for text in ("webhook_pool_size = 0", "webhook_pool_size = 101", "webhook_pool_timeout_s = 0",
                 "webhook_pool_timeout_s = 'nan'", "webhook_pool_size = true"):  # fmt: skip
        path.write_text(text + "\n")
        with pytest.raises(UsageError, match="webhook_pool"):
            load_settings(env={}, flags={}, config_path=path)
    for flags in (["--pool-size", "0"], ["--pool-size", "101"], ["--pool-timeout", "0"], ["--pool-timeout", "inf"]):
        done = run_cli("webhook", *flags, "--dsn", "host=127.0.0.1 port=1 dbname=x", timeout=60)
        assert done.returncode == 2, done.stderr
        assert flags[0] in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_pool_goes_through_pgbouncer_with_its_settings_per_transaction(server_dsn, db_dsn):
    from fsar_tui.db import pooler
    from support.pgbouncer import PgBouncer

    bouncer = PgBouncer(server_dsn).start()
    try:
        pooler.forget_all()  # detected by the pool's own connections, as on a fresh start
        with serving(bouncer.dsn(db_dsn), pool_size=3, pool_timeout=30) as (port, _, server):
            answers = _burst(port, 60, 30)
            assert [status for status, _, _ in answers] == [200] * 60
            with server.pool.connection() as conn:
                assert conn.pooled
                assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        assert q(db_dsn, "SELECT count(*) FROM stripe_events")[0][0] == 60
    finally:
        pooler.forget_all()
        bouncer.stop()
