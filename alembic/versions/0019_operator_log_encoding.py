"""The operator log hashed over an unambiguous encoding, with an authenticated actor and a
head kept in the database.

Revision 0009 hashed `concat_ws('|', …)` of a row's fields: moving text across a field
boundary (`SET target = target || '|bad deploy', reason = 'see INC-42'` on a row whose
reason was 'bad deploy|see INC-42') left the hash unchanged. From here each field is
length-prefixed (domain/action_chain.py has the encoding; db/log_functions.py the SQL).

Upgrade, in the migration's one transaction:
1. the existing chain is verified under the OLD encoding, by SQL written here (not by
   calling fsar_operator_actions_verify(), which whoever broke the chain could have
   replaced). A broken chain stops the migration — nothing changes — naming the first
   broken seq: re-chaining it would launder the break. To go on anyway (after looking:
   `fsar-tui log verify`), set FSAR_ACCEPT_BROKEN_LOG=<that seq> for `fsar-tui migrate`;
   the break is then recorded in operator_log_encodings.old_chain_broken_at;
2. every existing row is re-chained from the genesis under the new encoding. Its old
   hash is kept in `legacy_hash` (covered by the new hash), so anchors taken before still
   match. `actor` held the OS user a client claimed and `db_role` the role that wrote
   the row: the claim moves to `claimed_os_user` and `actor` becomes that role;
3. operator_log_encodings records where the encoding starts (encoding 2 from seq 1, rows
   1..N re-chained, the old chain's last hash); operator_log_head holds the last (seq,
   hash), updated by the chain trigger only, so deleting the last rows shows;
4. the chain trigger takes the actor from session_user (never from the client) and
   serialises appends on the head row.

Downgrade re-chains under the old encoding (actor back to the claimed OS user where
there is one) and drops the head, the encodings table and the two columns.

Revision ID: 0019_operator_log_encoding
Revises: 0018_audit_runs_retention
"""

import os

import sqlalchemy as sa
from alembic import op

from fsar_tui.db import log_functions as fns
from fsar_tui.db.migrations import revision_module
from fsar_tui.errors import CheckFailed

revision = "0019_operator_log_encoding"
down_revision = "0018_audit_runs_retention"
branch_labels = None
depends_on = None

ACCEPT_ENV = "FSAR_ACCEPT_BROKEN_LOG"


def _v1_hash(r: str) -> str:
    canonical = revision_module(__file__, "0009_operator_actions.py").CANONICAL.format(r=r)
    return f"encode(sha256(convert_to({r}.prev_hash || '|' || {canonical}, 'UTF8')), 'hex')"


def _v1_broken_at() -> int | None:
    broken: int | None = (
        op.get_bind()
        .execute(
            sa.text(f"""
        SELECT min(seq) FROM (
            SELECT a.seq, a.hash, a.prev_hash,
                   lag(a.hash, 1, repeat('0', 64)) OVER (ORDER BY a.seq) AS expected_prev,
                   lag(a.seq, 1, 0::bigint) OVER (ORDER BY a.seq) AS prev_seq,
                   {_v1_hash("a")} AS expected_hash
            FROM operator_actions a) chain
        WHERE prev_hash <> expected_prev OR hash <> expected_hash OR seq <> prev_seq + 1""")
        )
        .scalar()
    )
    return broken


def upgrade() -> None:
    broken = _v1_broken_at()
    if broken is not None and os.environ.get(ACCEPT_ENV) != str(broken):
        raise CheckFailed(
            f"the operator log's hash chain is broken at seq {broken}: revision 0019 re-chains the log only "
            f"from a verified state; nothing changed (look with `fsar-tui log verify`; to re-chain anyway and "
            f"record the break, run migrate with {ACCEPT_ENV}={broken})"
        )
    op.execute("ALTER TABLE operator_actions ADD COLUMN claimed_os_user text, ADD COLUMN legacy_hash text")
    op.execute("""
        CREATE TABLE operator_log_head (
            only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
            seq       bigint NOT NULL,
            hash      text NOT NULL,
            at        timestamptz NOT NULL DEFAULT clock_timestamp()
        )""")
    op.execute("""
        CREATE TABLE operator_log_encodings (
            encoding             smallint PRIMARY KEY,
            first_seq            bigint NOT NULL,
            rechained_upto       bigint NOT NULL,
            legacy_head_hash     text,
            old_chain_broken_at  bigint,
            at                   timestamptz NOT NULL DEFAULT clock_timestamp(),
            by_role              text NOT NULL DEFAULT session_user
        )""")
    for fn in (fns.FIELD, fns.HASH, fns.REJECT_CHANGE):
        op.execute(fn.create_sql())
    op.execute("ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    op.execute("UPDATE operator_actions SET claimed_os_user = actor, actor = db_role")
    op.execute(f"""
        DO $$
        DECLARE
            r record;
            prev text := repeat('0', 64);
            last_seq bigint := 0;
            last_legacy text;
        BEGIN
            FOR r IN SELECT * FROM operator_actions ORDER BY seq LOOP
                UPDATE operator_actions SET legacy_hash = r.hash, prev_hash = prev,
                    hash = fsar_operator_actions_hash(prev, r.seq, r.at, r.actor, r.claimed_os_user, r.db_role,
                                                      r.action, r.target, r.reason, r.before, r.after, r.hash)
                WHERE id = r.id RETURNING hash INTO prev;
                last_seq := r.seq;
                last_legacy := r.hash;
            END LOOP;
            INSERT INTO operator_log_head (seq, hash) VALUES (last_seq, prev);
            INSERT INTO operator_log_encodings (encoding, first_seq, rechained_upto, legacy_head_hash,
                                                old_chain_broken_at)
            VALUES (2, 1, last_seq, last_legacy, {broken if broken is not None else "NULL"});
        END $$""")
    op.execute("ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")
    for fn in (fns.CHAIN, fns.HEAD_GUARD, fns.VERIFY):
        op.execute(fn.create_sql())
    op.execute("""
        CREATE TRIGGER operator_log_head_guard BEFORE INSERT OR UPDATE OR DELETE ON operator_log_head
        FOR EACH ROW EXECUTE FUNCTION fsar_operator_log_head_guard()""")
    op.execute("""
        CREATE TRIGGER operator_log_head_no_truncate BEFORE TRUNCATE ON operator_log_head
        FOR EACH STATEMENT EXECUTE FUNCTION fsar_reject_change()""")
    op.execute("""
        CREATE TRIGGER operator_log_encodings_append_only BEFORE UPDATE OR DELETE ON operator_log_encodings
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()""")
    op.execute("""
        CREATE TRIGGER operator_log_encodings_no_truncate BEFORE TRUNCATE ON operator_log_encodings
        FOR EACH STATEMENT EXECUTE FUNCTION fsar_reject_change()""")
    op.execute("GRANT SELECT ON operator_log_head, operator_log_encodings TO fsar_viewer")
    for fn in fns.FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {fn.signature} FROM PUBLIC")
    for fn in (fns.FIELD, fns.HASH, fns.VERIFY):  # the verify function runs as its caller
        op.execute(f"GRANT EXECUTE ON FUNCTION {fn.signature} TO fsar_viewer")


def downgrade() -> None:
    v0009 = revision_module(__file__, "0009_operator_actions.py")
    canonical_new = v0009.CANONICAL.format(r="NEW")
    canonical_a = v0009.CANONICAL.format(r="a")
    op.execute("DROP TABLE operator_log_head, operator_log_encodings")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION fsar_operator_actions_chain() RETURNS trigger
        LANGUAGE plpgsql SECURITY INVOKER AS $$
        DECLARE
            last record;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('fsar.operator_actions'));
            SELECT seq, hash INTO last FROM operator_actions ORDER BY seq DESC LIMIT 1;
            NEW.seq := coalesce(last.seq, 0) + 1;
            NEW.prev_hash := coalesce(last.hash, repeat('0', 64));
            NEW.db_role := current_user;
            NEW.hash := encode(sha256(convert_to(NEW.prev_hash || '|' || {canonical_new}, 'UTF8')), 'hex');
            RETURN NEW;
        END
        $$""")
    op.execute(f"""
        CREATE OR REPLACE FUNCTION fsar_operator_actions_verify() RETURNS bigint
        LANGUAGE sql STABLE SECURITY INVOKER AS $$
            SELECT min(seq) FROM (
                SELECT a.seq, a.hash, a.prev_hash,
                       lag(a.hash, 1, repeat('0', 64)) OVER (ORDER BY a.seq) AS expected_prev,
                       lag(a.seq, 1, 0::bigint) OVER (ORDER BY a.seq) AS prev_seq,
                       encode(sha256(convert_to(a.prev_hash || '|' || {canonical_a}, 'UTF8')), 'hex')
                           AS expected_hash
                FROM operator_actions a
            ) chain
            WHERE prev_hash <> expected_prev OR hash <> expected_hash OR seq <> prev_seq + 1
        $$""")
    op.execute("ALTER TABLE operator_actions DISABLE TRIGGER operator_actions_append_only")
    op.execute("UPDATE operator_actions SET actor = coalesce(claimed_os_user, actor)")
    op.execute(f"""
        DO $$
        DECLARE
            r record;
            prev text := repeat('0', 64);
        BEGIN
            FOR r IN SELECT * FROM operator_actions ORDER BY seq LOOP
                UPDATE operator_actions a SET prev_hash = prev,
                    hash = encode(sha256(convert_to(prev || '|' || {canonical_a}, 'UTF8')), 'hex')
                WHERE a.id = r.id RETURNING a.hash INTO prev;
            END LOOP;
        END $$""")
    op.execute("ALTER TABLE operator_actions ENABLE TRIGGER operator_actions_append_only")
    op.execute("ALTER TABLE operator_actions DROP COLUMN claimed_os_user, DROP COLUMN legacy_hash")
    op.execute(f"DROP FUNCTION {fns.HEAD_GUARD.signature}")
    op.execute(f"DROP FUNCTION {fns.HASH.signature}")
    op.execute(f"DROP FUNCTION {fns.FIELD.signature}")
    for sig in ("fsar_operator_actions_chain()", "fsar_operator_actions_verify()", "fsar_reject_change()"):
        op.execute(f"GRANT EXECUTE ON FUNCTION {sig} TO PUBLIC")
