"""operator_actions: the append-only, hash-chained record of every operator action.

- Append-only: a trigger rejects UPDATE and DELETE (and TRUNCATE) for every role.
- Hash chain: a BEFORE INSERT trigger takes a transaction-scoped advisory lock, gives
  the row the next `seq`, and sets
      hash = sha256(prev_hash || '|' || canonical(row))
  where canonical() joins seq, epoch of `at`, actor, db_role, action, target, reason,
  before and after (jsonb text is normalised by Postgres). Concurrent inserts
  serialise on the lock; a chain fork would need two rows with one seq, which the
  UNIQUE constraint refuses. `fsar_operator_actions_verify()` walks the chain and
  returns the first seq whose hash does not verify (NULL when intact).

Revision ID: 0009_operator_actions
Revises: 0008_fsar_proposals
"""

from alembic import op

revision = "0009_operator_actions"
down_revision = "0008_fsar_proposals"
branch_labels = None
depends_on = None

CANONICAL = """concat_ws('|', {r}.seq, extract(epoch FROM {r}.at), {r}.actor, {r}.db_role, {r}.action,
                  {r}.target, coalesce({r}.reason, ''), coalesce({r}.before::text, 'null'),
                  coalesce({r}.after::text, 'null'))"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE operator_actions (
            id         bigserial PRIMARY KEY,
            seq        bigint NOT NULL UNIQUE,
            at         timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor      text NOT NULL,
            db_role    text NOT NULL DEFAULT current_user,
            action     text NOT NULL,
            target     text NOT NULL,
            reason     text,
            before     jsonb,
            after      jsonb,
            prev_hash  text NOT NULL,
            hash       text NOT NULL
        )
    """)
    op.execute("CREATE INDEX operator_actions_at_idx ON operator_actions (at)")
    op.execute(f"""
        CREATE FUNCTION fsar_operator_actions_chain() RETURNS trigger
        LANGUAGE plpgsql AS $$
        DECLARE
            last record;
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('fsar.operator_actions'));
            SELECT seq, hash INTO last FROM operator_actions ORDER BY seq DESC LIMIT 1;
            NEW.seq := coalesce(last.seq, 0) + 1;
            NEW.prev_hash := coalesce(last.hash, repeat('0', 64));
            NEW.db_role := current_user;
            NEW.hash := encode(sha256(convert_to(NEW.prev_hash || '|' || {CANONICAL.format(r="NEW")}, 'UTF8')), 'hex');
            RETURN NEW;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER operator_actions_chain
        BEFORE INSERT ON operator_actions
        FOR EACH ROW EXECUTE FUNCTION fsar_operator_actions_chain()
    """)
    op.execute("""
        CREATE TRIGGER operator_actions_append_only
        BEFORE UPDATE OR DELETE ON operator_actions
        FOR EACH ROW EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute("""
        CREATE TRIGGER operator_actions_no_truncate
        BEFORE TRUNCATE ON operator_actions
        FOR EACH STATEMENT EXECUTE FUNCTION fsar_reject_change()
    """)
    op.execute(f"""
        CREATE FUNCTION fsar_operator_actions_verify() RETURNS bigint
        LANGUAGE sql STABLE AS $$
            SELECT min(seq) FROM (
                SELECT a.seq, a.hash, a.prev_hash,
                       lag(a.hash, 1, repeat('0', 64)) OVER (ORDER BY a.seq) AS expected_prev,
                       lag(a.seq, 1, 0::bigint) OVER (ORDER BY a.seq) AS prev_seq,
                       encode(sha256(convert_to(a.prev_hash || '|' || {CANONICAL.format(r="a")}, 'UTF8')), 'hex')
                           AS expected_hash
                FROM operator_actions a
            ) chain
            WHERE prev_hash <> expected_prev OR hash <> expected_hash OR seq <> prev_seq + 1
        $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION fsar_operator_actions_verify()")
    op.execute("DROP TABLE operator_actions")
    op.execute("DROP FUNCTION fsar_operator_actions_chain()")
