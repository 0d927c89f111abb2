"""The fraud reads that scan the window's entries (revisions 0014–0026's algorithm).

The velocity reads take every charge of the window asked for — by customer through the
partial index ledger_entries_customer_idx, by card in one heap pass — so their cost
grows with the ledger. Since revision 0027 db/fraud.py reads the velocity state
instead; these two stay for the rules the state does not serve
(domain/fraud_velocity.served: a window over an hour, fewer than 5 charges). They, the
country-mismatch read that fetches every mismatched charge from the table and the
flagged ideas' disputes picked from all of theirs, are the baseline the bench and the
equivalence test compare db/fraud.py's reads with (fraud.fraud_flags_scan_sync).
"""

from __future__ import annotations

# Starts of runs of k charges less than a window apart (lead over the subject's charges
# in time order), merged into bursts (a start after the previous run's end opens a new
# one), then the bursts' charges with their ids. OFFSET 0 keeps the lateral read a
# per-burst index range scan rather than a join against every charge.
VELOCITY_CUSTOMER_SQL = """
    WITH w AS (
        SELECT customer_id AS subject, occurred_at AS t0,
               lead(occurred_at, %(k1)s) OVER (PARTITION BY customer_id ORDER BY occurred_at) AS t1
        FROM ledger_entries
        WHERE kind = 'revenue' AND customer_id IS NOT NULL AND occurred_at >= %(start)s AND occurred_at < %(end)s),
    hits AS (
        SELECT subject, t0, t1, t0 > lag(t1) OVER (PARTITION BY subject ORDER BY t0, t1) IS NOT FALSE AS opens
        FROM w WHERE t1 < t0 + %(window)s),
    islands AS (
        SELECT subject, t0, t1, count(*) FILTER (WHERE opens) OVER (PARTITION BY subject ORDER BY t0, t1
                                                                    ROWS UNBOUNDED PRECEDING) AS island
        FROM hits),
    bursts AS (SELECT subject, min(t0) AS t0, max(t1) AS t1 FROM islands GROUP BY subject, island)
    SELECT b.subject, e.occurred_at, e.id
    FROM bursts b CROSS JOIN LATERAL (
        SELECT e.occurred_at, e.id FROM ledger_entries e
        WHERE e.kind = 'revenue' AND e.customer_id = b.subject AND e.occurred_at >= b.t0 AND e.occurred_at <= b.t1
        OFFSET 0) e"""

# One pass over the window's charges that have a fingerprint, the members of dense runs
# marked there (a charge is in a run when one of the k runs that can hold it starts at
# most k-1 charges before it).
VELOCITY_CARD_SQL = """
    SELECT subject, occurred_at, id FROM (
        SELECT subject, occurred_at, id,
               bool_or(starts) OVER (PARTITION BY subject ORDER BY occurred_at, id
                                     ROWS BETWEEN %(k1)s PRECEDING AND CURRENT ROW) AS member
        FROM (SELECT metadata ->> 'card_fingerprint' AS subject, occurred_at, id,
                     lead(occurred_at, %(k1)s) OVER (PARTITION BY metadata ->> 'card_fingerprint'
                                                     ORDER BY occurred_at, id) < occurred_at + %(window)s AS starts
              FROM ledger_entries
              WHERE kind = 'revenue' AND metadata ? 'card_fingerprint'
                AND metadata ->> 'card_fingerprint' IS NOT NULL
                AND occurred_at >= %(start)s AND occurred_at < %(end)s) s) m
    WHERE member"""

# A flagged idea's newest disputes, from every dispute of those ideas in the window.
IDEA_DISPUTES_SQL = """
    SELECT 'idea', subject, occurred_at, id FROM (
        SELECT idea_id AS subject, occurred_at, id,
               row_number() OVER (PARTITION BY idea_id ORDER BY occurred_at DESC, id DESC) AS rn
        FROM ledger_entries
        WHERE kind = 'dispute' AND idea_id = ANY(%(ideas)s::text[])
          AND occurred_at >= %(dstart)s AND occurred_at < %(dend)s) d
    WHERE rn <= %(limit)s"""

# The mismatched charges of the window, each read from the table (heap), then grouped.
COUNTRY_MISMATCH_SQL = """
    WITH m AS (
        SELECT id, occurred_at, customer_id, metadata ->> 'card_country' AS card, metadata ->> 'ip_country' AS ip
        FROM ledger_entries
        WHERE kind = 'revenue' AND metadata ->> 'card_country' <> metadata ->> 'ip_country'
          AND occurred_at >= %(start)s AND occurred_at < %(end)s AND customer_id IS NOT NULL),
    flagged AS (SELECT customer_id FROM m GROUP BY customer_id HAVING count(*) >= %(min)s)
    SELECT customer_id, card, ip, count(*),
           (array_agg(id ORDER BY occurred_at DESC, id DESC))[1:%(max)s],
           (array_agg(occurred_at ORDER BY occurred_at DESC, id DESC))[1:%(max)s]
    FROM m JOIN flagged USING (customer_id)
    GROUP BY customer_id, card, ip"""
