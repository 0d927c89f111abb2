"""Fraud velocity state kept by trigger, so the velocity checks stop reading every charge.

Why: the velocity rules (≥ 5 charges by one customer, or on one card, within any hour)
read every charge of the window asked for — an index-only scan by customer, a heap pass
for cards — so their cost grew with the ledger: ~6.6 s over 7 days on a database whose
400 customers have thousands of charges each (issue 17, point 4).

`fraud_velocity`: per subject — `subject_kind` 'customer' (customer_id) or 'card'
(metadata ->> 'card_fingerprint') — and UTC hour, `charges` = how many of the subject's
charges (revenue entries) lie in that hour: one row per subject and hour it charged in.
Why that is enough (domain/fraud_velocity.py has the argument and the maths): a burst —
k charges whose first and last are less than W ≤ 1 h apart — lies in at most two
consecutive hours, so one of them holds ⌈k/2⌉ of it (3 for the default 5), and the
whole burst lies within an hour before that hour and an hour plus W after its start.
The check reads the rows of at least ⌈k/2⌉ charges in the window through the partial
index `fraud_velocity_busy_idx` (rows of at least 3 charges), merges their stretches
[h − 1 h, h + 1 h + W), and reads back only the charges there by
ledger_entries_customer_idx / ledger_entries_card_idx; domain/fraud.py then judges them
exactly as before (it is exact on any set of the window's charges that holds every
burst's). Quiet customers and cards — fewer than 3 charges in any clock hour — cost
nothing; the work follows the busy hours, not the number of entries.

Why this shape: a count per subject and bucket is changed by its own charges only, so
every change is a commutative upsert (like ledger_daily's): any order of concurrent
writers leaves the same counts. (A running sum over the next buckets, indexable for
"could reach k" directly, depends on other rows, which two concurrent inserts would each
miss.) Hour buckets, not minutes: a burst of W ≤ 1 h spans at most two of them, which
is what makes ⌈k/2⌉ in one row a sure sign; finer buckets would need sums over rows.
Rows whose count comes back to 0 stay (like ledger_daily's) and are not in the index.

The trigger (`fsar_fraud_velocity_changed`, AFTER INSERT OR DELETE OR UPDATE OF kind,
occurred_at, customer_id, metadata; SECURITY DEFINER with a pinned search_path, like the
other rollup triggers since 0020) subtracts the old row's charge and adds the new one's,
and does nothing when neither moved (an anonymization that keeps the card fingerprint).
The bulk loader (fsar.bulk_load = on, honoured only for members of the ledger's owner,
as revision 0024 does: any role may SET it, and a writer of the ledger must not hide its
charges from the checks that way) adds its own rows (db/bulk.add_fraud_velocity).
Rules the state does not serve (a window over an hour, fewer than 5 charges) are read
by the full scan, as before (db/fraud_scan.py).

The other checks, looked at for the same reason:
- country mismatch read every mismatched charge of the window from the table (heap and
  JSON, ~5 µs each). `ledger_entries_mismatch_idx` replaces 0014's
  ledger_entries_country_mismatch_idx (same predicate) and INCLUDEs the customer: the
  customers with enough mismatches are counted from the index alone (index-only once
  vacuumed), then only their mismatched charges are read, by
  `ledger_entries_mismatch_customer_idx` (customer, time). The count still follows the
  window's mismatched charges — the rule is about every one of them — but no longer
  anything else, and at a few bytes of index each.
- a flagged idea's newest disputes were picked from all of the idea's disputes in the
  window; `ledger_entries_dispute_idea_idx` (idea, time, id) over disputes reads them
  newest first with a LIMIT. Dispute rates and refund spikes themselves come from
  ledger_daily (days × kinds × currencies × ideas: not the entries) as before.

Adoption counts every existing charge under a SHARE ROW EXCLUSIVE lock on
ledger_entries (writers wait; readers do not), then creates the trigger, as 0014 did for
ledger_daily. Downgrade drops the trigger, its function, the table and the new indexes,
and puts back 0014's mismatch index.

Revision ID: 0027_fraud_velocity
Revises: 0026_unpriced_gate
"""

from alembic import op

revision = "0027_fraud_velocity"
down_revision = "0026_unpriced_gate"
branch_labels = None
depends_on = None

# Charges whose card country differs from the IP country (0014's predicate).
MISMATCH = "WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'"

# The UTC hour of a charge at `at` (domain/fraud_velocity.hour_of), whatever the
# session's time zone.
HOUR = "date_trunc('hour', {at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"

TRIGGER_FUNCTION = f"""
    CREATE FUNCTION fsar_fraud_velocity_changed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        old_at timestamptz;
        old_customer text;
        old_card text;
        new_at timestamptz;
        new_customer text;
        new_card text;
    BEGIN
        -- The bulk loader adds its own rows; a setting anyone can SET, so it is honoured
        -- only for the ledger owner's members (the seeder runs as the owner), as 0024 does.
        IF current_setting('fsar.bulk_load', true) = 'on'
           AND pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'ledger_entries'::regclass),
                           'USAGE') THEN
            RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' AND OLD.kind = 'revenue' THEN
            old_at := OLD.occurred_at;
            old_customer := OLD.customer_id;
            old_card := OLD.metadata ->> 'card_fingerprint';
        END IF;
        IF TG_OP <> 'DELETE' AND NEW.kind = 'revenue' THEN
            new_at := NEW.occurred_at;
            new_customer := NEW.customer_id;
            new_card := NEW.metadata ->> 'card_fingerprint';
        END IF;
        IF old_at IS NOT DISTINCT FROM new_at AND old_customer IS NOT DISTINCT FROM new_customer
           AND old_card IS NOT DISTINCT FROM new_card THEN
            RETURN NULL;  -- not a charge before nor after, or one that did not move
        END IF;
        -- Rows in key order, so two writers lock shared rows in the same order.
        INSERT INTO fraud_velocity AS v (subject_kind, subject, hour, charges)
        SELECT c.kind, c.subject, {HOUR.format(at="c.at")}, sum(c.d)
        FROM (VALUES ('customer', old_customer, old_at, -1), ('card', old_card, old_at, -1),
                     ('customer', new_customer, new_at, 1), ('card', new_card, new_at, 1)) c(kind, subject, at, d)
        WHERE c.subject IS NOT NULL
        GROUP BY 1, 2, 3
        HAVING sum(c.d) <> 0
        ORDER BY 1, 2, 3
        ON CONFLICT (subject_kind, subject, hour) DO UPDATE SET charges = v.charges + EXCLUDED.charges;
        RETURN NULL;
    END
    $$
"""

# Every charge of the ledger, counted (adoption; the primary key and the index are built
# after, from the filled table: faster than a million inserts into them).
# db/bulk.add_fraud_velocity is the same over the entries a bulk load added.
FILL = f"""
    INSERT INTO fraud_velocity (subject_kind, subject, hour, charges)
    SELECT s.kind, s.subject, {HOUR.format(at="e.occurred_at")}, count(*)
    FROM ledger_entries e
    CROSS JOIN LATERAL (VALUES ('customer', e.customer_id),
                               ('card', e.metadata ->> 'card_fingerprint')) s(kind, subject)
    WHERE e.kind = 'revenue' AND s.subject IS NOT NULL
    GROUP BY 1, 2, 3
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE fraud_velocity (
            subject_kind text        NOT NULL CHECK (subject_kind IN ('customer', 'card')),
            subject      text        NOT NULL,
            hour         timestamptz NOT NULL,
            charges      integer     NOT NULL
        )
    """)
    op.execute("GRANT SELECT ON fraud_velocity TO fsar_viewer")
    op.execute(TRIGGER_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION fsar_fraud_velocity_changed() FROM PUBLIC")
    # Adoption: writers wait from here to the commit (readers do not), so nothing is
    # written between the count and the trigger.
    op.execute("LOCK TABLE ledger_entries IN SHARE ROW EXCLUSIVE MODE")
    op.execute(FILL)
    op.execute("ALTER TABLE fraud_velocity ADD PRIMARY KEY (subject_kind, subject, hour)")
    # The busy rows, by hour (db/fraud.py repeats the predicate: the planner uses a
    # partial index only for a query whose WHERE implies it).
    op.execute(
        "CREATE INDEX fraud_velocity_busy_idx ON fraud_velocity (hour) INCLUDE (subject_kind, subject, charges) "
        "WHERE charges >= 3"
    )
    op.execute("""
        CREATE TRIGGER ledger_entries_fraud_velocity
        AFTER INSERT OR DELETE OR UPDATE OF kind, occurred_at, customer_id, metadata ON ledger_entries
        FOR EACH ROW EXECUTE FUNCTION fsar_fraud_velocity_changed()
    """)
    op.execute(
        "CREATE INDEX ledger_entries_dispute_idea_idx ON ledger_entries (idea_id, occurred_at, id) "
        "WHERE kind = 'dispute'"
    )
    op.execute(
        f"CREATE INDEX ledger_entries_mismatch_idx ON ledger_entries (occurred_at) INCLUDE (customer_id) {MISMATCH}"
    )
    op.execute(
        f"CREATE INDEX ledger_entries_mismatch_customer_idx ON ledger_entries (customer_id, occurred_at) {MISMATCH}"
    )
    op.execute("ANALYZE fraud_velocity")
    # Last: dropping an index locks its table against readers too, until the commit.
    op.execute("DROP INDEX ledger_entries_country_mismatch_idx")


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_fraud_velocity ON ledger_entries")
    op.execute("DROP FUNCTION fsar_fraud_velocity_changed()")
    op.execute(f"CREATE INDEX ledger_entries_country_mismatch_idx ON ledger_entries (occurred_at) {MISMATCH}")
    op.execute("DROP INDEX ledger_entries_mismatch_customer_idx")
    op.execute("DROP INDEX ledger_entries_mismatch_idx")
    op.execute("DROP INDEX ledger_entries_dispute_idea_idx")
    op.execute("DROP TABLE fraud_velocity")
