"""The functions that make partitions (revision 0029 creates them, 0032 replaces four;
db/partitions.py calls them), as the text the migrations ran (shipped_sql.Fn:
`security-audit` compares FUNCTIONS, the head's; FUNCTIONS_0029 stays what 0029 ran).

- fsar_create_task_partition(lower, upper) / fsar_create_event_partition(lower, upper):
  one partition of execution_tasks [lower, upper) of ids (lower NULL: MINVALUE) or of
  task_events [lower, upper) of times. The exact range existing: its name; overlapping
  another partition: an error. Created standalone (LIKE the parent), stripped of any
  grant a default privilege gave it, owned by the parent's owner, then ATTACHed (SHARE
  UPDATE EXCLUSIVE on the parent: readers and writers go on; the new table and DEFAULT,
  scanned to prove it holds none of the range, ACCESS EXCLUSIVE for that moment). Rows
  of the range caught by DEFAULT are moved in, in the same transaction: DEFAULT detached
  (foreign keys referencing the parent dropped first, added back validated at the end),
  the rows copied and deleted from DEFAULT (neither has triggers then: no count, rollup
  or event sees a row move), both attached again.
- fsar_cover_task_ids(from, to) / fsar_cover_event_days(from, to): every gap in
  [from, to) gets partitions aligned on CHUNK ids / UTC days (cut short where another
  partition begins).
- fsar_ensure_partitions(now, task_ids_ahead, event_days_ahead): the maintenance. Every
  gap in the task ids from the CHUNK of the bulk's highest id to `task_ids_ahead` past
  it, and in the days from `now`'s UTC day to `event_days_ahead` after it; then each
  chunk or day the DEFAULT partition holds rows of, within the horizons below. Lower
  gaps are retention's (dropped on purpose) and stay gaps unless DEFAULT holds rows
  there. SECURITY DEFINER, EXECUTE for fsar_operator (the audit pass).

Limits (revision 0032; found by an attack, each tested in tests/test_partition_edges.py):
- The bulk of ids, not the highest: the walk (bulk_high_sql) starts at the sequence's
  last value and steps to the highest id within BULK_GAP (1 chunk) above, until none is
  (at most BULK_STEPS steps). One stray id near 2^63 no longer drags the window ahead.
- No overflow: chunk ends are computed in numeric; the top chunk ends at MAX_BIGINT
  (the one id 2^63-1 then stays in DEFAULT).
- Horizons of DEFAULT's rows: ids in [0, the bulk's chunk end + MAX_TASK_IDS_AHEAD)
  and events in [now - EVENT_DAYS_BEHIND days, now + MAX_EVENT_DAYS_AHEAD + 1 days)
  get partitions; rows outside stay in DEFAULT (never dropped, never a partition).
- No event bound outside [EVENT_MIN, EVENT_MAX]: Python's datetime holds years 1..9999
  only, and every reader of the partitions' bounds is Python. The create and cover
  functions refuse such ranges; ensure clips its window to them.
- Arguments: 0..MAX_TASK_IDS_AHEAD (100 M) ids and 0..MAX_EVENT_DAYS_AHEAD (366) days
  ahead for the tables' owner (the seeder, tests, migrations); at most
  OPERATOR_MAX_TASK_IDS_AHEAD (10 M: 5x the audit pass's db/partitions.TASK_IDS_AHEAD)
  and OPERATOR_MAX_EVENT_DAYS_AHEAD (60: ~4x its EVENT_DAYS_AHEAD of 14) for anyone
  else, refused with insufficient_privilege beyond — 452 partitions made the claim 300x
  slower; an operator's windows now make at most 11 + 61. `now` must be within a day of
  the database's clock unless the caller is a member of the tables' owner.
- One call fills at most MAX_NEW_PARTITIONS (100) chunks or days (a partition each unless
  hand-made partitions cut one up): windows first, then DEFAULT's rows; the next goes on.

All of them take one transaction-level advisory lock (PARTITION_LOCK): two processes
creating partitions at once take turns, the second finds the work done. Before it, the
parent(s) they change, ONLY, in SHARE UPDATE EXCLUSIVE (what ATTACH takes anyway): a
session already holding a stronger lock on a parent — the seeder holds SHARE ROW
EXCLUSIVE on execution_tasks while it makes its ranges' partitions — then keeps the
audit pass's maintenance waiting at the table, holding nothing the seeder needs, instead
of a deadlock (table lock vs advisory lock). fsar_ensure_partitions gives up after
lock_timeout (3 s); the next pass tries again.
TimeZone is pinned to UTC (days are UTC days; bounds print and parse in one zone).
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn

CHUNK = 1_000_000  # ids per task partition
PARTITION_LOCK = 727003  # pg advisory lock key: partition maintenance, one at a time
MAX_TASK_IDS_AHEAD = 100 * CHUNK  # the most anyone may ask for
MAX_EVENT_DAYS_AHEAD = 366
# 0032 (see the docstring for why these values):
OPERATOR_MAX_TASK_IDS_AHEAD = 10 * CHUNK  # a non-owner's most: 5x the audit pass's 2 M
OPERATOR_MAX_EVENT_DAYS_AHEAD = 60  # a non-owner's most: ~4x the audit pass's 14
MAX_NEW_PARTITIONS = 100  # chunks and days one fsar_ensure_partitions call fills
BULK_GAP = CHUNK  # ids further than this from the bulk (the sequence and its neighbours) are outliers
BULK_STEPS = 1000  # the bulk's walk gives up after this many steps (BULK_STEPS * BULK_GAP ids past the sequence)
EVENT_DAYS_BEHIND = 3653  # DEFAULT's events older than ~10 years before `now` get no day partition
MAX_BIGINT = 2**63 - 1
EVENT_MIN = "0001-01-01 00:00:00+00"  # the event bounds Python's datetime can hold, in any session TimeZone
EVENT_MAX = "9999-12-31 00:00:00+00"
UTC = (("TimeZone", "UTC"),)
BOUND_RE = "^FOR VALUES FROM \\((.*)\\) TO \\((.*)\\)$"


def bounds(parent: str, key_type: str) -> str:
    """The partitions of `parent` as (name, is_default, lo, hi): pg_get_expr's text parsed,
    NULL for MINVALUE / MAXVALUE (and for DEFAULT)."""
    return f"""(SELECT c.relname::text AS name, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
            CASE WHEN r.m[1] LIKE '''%' THEN btrim(r.m[1], '''')::{key_type} END AS lo,
            CASE WHEN r.m[2] LIKE '''%' THEN btrim(r.m[2], '''')::{key_type} END AS hi
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), '{BOUND_RE}') AS r(m)
     WHERE i.inhparent = '{parent}'::regclass)"""


def bulk_high_sql(start: str) -> str:
    """The highest id of the bulk, as a scalar SQL expression: from `start` (the sequence's
    last value), step to the highest id within BULK_GAP above, until none is (or BULK_STEPS).
    One index probe a step; an id further than BULK_GAP from the others is an outlier."""
    return f"""(WITH RECURSIVE walk(high, steps) AS (
        SELECT greatest({start}, 0)::bigint, 0
        UNION ALL
        SELECT (SELECT max(t.id) FROM execution_tasks t
                WHERE t.id > w.high AND t.id <= least(w.high::numeric + {BULK_GAP}, {MAX_BIGINT})::bigint), w.steps + 1
        FROM walk w WHERE w.high IS NOT NULL AND w.steps < {BULK_STEPS})
     SELECT max(high) FROM walk)"""


def _create(fn: str, parent: str, key: str, key_type: str, name_sql: str, guard: str = "") -> Fn:
    b = bounds(parent, key_type)
    return Fn(
        name=fn,
        params=f"p_lower {key_type}, p_upper {key_type}",
        signature=f"{fn}({key_type if key_type == 'bigint' else 'timestamp with time zone'}, "
        f"{key_type if key_type == 'bigint' else 'timestamp with time zone'})",
        returns="text",
        settings=UTC,
        body=f"""
DECLARE
    v_name text;
    v_found text;
    v_default text;
    v_owner oid;
    v_cols text;
    v_range text;
    v_where text;
    v_has boolean := false;
    v_fk record;
    v_fks text[] := '{{}}';
    v_stmt text;
    v_grantee oid;
    v_index text;
    v_def text;
BEGIN
    IF p_upper IS NULL OR p_lower >= p_upper THEN
        RAISE EXCEPTION '{fn}: [%, %) is empty or unbounded above', p_lower, p_upper
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
{guard}    LOCK TABLE ONLY {parent} IN SHARE UPDATE EXCLUSIVE MODE;  -- before the advisory lock: see the docstring
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK});
    SELECT b.name INTO v_found FROM {b} b
    WHERE NOT b.is_default AND b.lo IS NOT DISTINCT FROM p_lower AND b.hi = p_upper;
    IF v_found IS NOT NULL THEN
        RETURN v_found;
    END IF;
    SELECT b.name INTO v_found FROM {b} b
    WHERE NOT b.is_default AND (b.lo IS NULL OR b.lo < p_upper) AND (p_lower IS NULL OR b.hi IS NULL OR p_lower < b.hi)
    ORDER BY b.lo NULLS FIRST LIMIT 1;
    IF v_found IS NOT NULL THEN
        RAISE EXCEPTION '{fn}: [%, %) overlaps partition %', coalesce(p_lower::text, 'MINVALUE'), p_upper, v_found
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_name := {name_sql};
    IF to_regclass(quote_ident(v_name)) IS NOT NULL THEN
        RAISE EXCEPTION '{fn}: a relation named % exists and is no partition of {parent}', v_name
            USING ERRCODE = 'duplicate_table';
    END IF;
    SELECT b.name INTO v_default FROM {b} b WHERE b.is_default;
    SELECT c.relowner INTO v_owner FROM pg_class c WHERE c.oid = '{parent}'::regclass;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO v_cols
    FROM pg_attribute a WHERE a.attrelid = '{parent}'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
    v_range := format('FROM (%s) TO (%L)', coalesce(quote_literal(p_lower), 'MINVALUE'), p_upper);
    v_where := format('{key} < %L', p_upper)
               || CASE WHEN p_lower IS NULL THEN '' ELSE format(' AND {key} >= %L', p_lower) END;
    EXECUTE format('CREATE TABLE %I (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE '
                   'INCLUDING COMPRESSION)', v_name);
    -- Roles reach the rows through the parent: no grant of its own (a default privilege may have given one).
    FOR v_grantee IN SELECT DISTINCT a.grantee FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
                     WHERE c.oid = quote_ident(v_name)::regclass AND a.grantee <> c.relowner LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM %s', v_name,
                       CASE WHEN v_grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(v_grantee)) END);
    END LOOP;
    -- The parent's indexes, named after the partition and the parent's index (ATTACH would
    -- build them too, named after their columns: "…_at_idx1" says less than "…_failures_idx").
    FOR v_index, v_def IN SELECT c.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                          JOIN pg_class c ON c.oid = i.indexrelid
                          WHERE i.indrelid = '{parent}'::regclass
                            AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) LOOP
        EXECUTE replace(v_def, ' ' || quote_ident(v_index) || ' ON ONLY public.{parent} ',
                        format(' %I ON public.%I ', left(v_name || '_' || CASE WHEN v_index LIKE '{parent}\\_%'
                               THEN substr(v_index, length('{parent}') + 2) ELSE v_index END, 63), v_name));
    END LOOP;
    IF v_owner <> (SELECT c.relowner FROM pg_class c WHERE c.oid = quote_ident(v_name)::regclass) THEN
        EXECUTE format('ALTER TABLE %I OWNER TO %I', v_name, pg_get_userbyid(v_owner));
    END IF;
    IF v_default IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %I WHERE %s)', v_default, v_where) INTO v_has;
    END IF;
    IF NOT v_has THEN
        EXECUTE format('ALTER TABLE {parent} ATTACH PARTITION %I FOR VALUES %s', v_name, v_range);
        RETURN v_name;
    END IF;
    -- DEFAULT caught rows of this range: move them (see db/partition_functions.py).
    FOR v_fk IN SELECT con.conname, con.conrelid::regclass::text AS tbl, pg_get_constraintdef(con.oid) AS def
                FROM pg_constraint con
                WHERE con.contype = 'f' AND con.confrelid = '{parent}'::regclass AND con.conparentid = 0 LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', v_fk.tbl, v_fk.conname);
        v_fks := v_fks || format('ALTER TABLE %s ADD CONSTRAINT %I %s', v_fk.tbl, v_fk.conname, v_fk.def);
    END LOOP;
    EXECUTE format('ALTER TABLE {parent} DETACH PARTITION %I', v_default);
    EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM ONLY %I WHERE %s', v_name, v_cols, v_cols, v_default, v_where);
    EXECUTE format('DELETE FROM ONLY %I WHERE %s', v_default, v_where);
    EXECUTE format('ALTER TABLE {parent} ATTACH PARTITION %I FOR VALUES %s', v_name, v_range);
    EXECUTE format('ALTER TABLE {parent} ATTACH PARTITION %I DEFAULT', v_default);
    FOREACH v_stmt IN ARRAY v_fks LOOP
        EXECUTE v_stmt;
    END LOOP;
    RETURN v_name;
END
""",
    )


CREATE_TASK_PARTITION = _create(
    "fsar_create_task_partition",
    "execution_tasks",
    "id",
    "bigint",
    "'execution_tasks_' || coalesce(p_lower::text, 'min') || '_' || p_upper",
)
_EVENT_NAME = (
    "CASE WHEN p_lower = date_trunc('day', p_lower) AND p_upper = p_lower + interval '1 day' "
    "THEN 'task_events_' || to_char(p_lower, 'YYYYMMDD') "
    "ELSE 'task_events_' || coalesce(to_char(p_lower, 'YYYYMMDD\"t\"HH24MISS'), 'min') || '_' "
    "|| to_char(p_upper, 'YYYYMMDD\"t\"HH24MISS') END"
)
CREATE_EVENT_PARTITION_0029 = _create("fsar_create_event_partition", "task_events", "at", "timestamptz", _EVENT_NAME)


def _event_guard(fn: str, lower: str, upper: str) -> str:
    """0032: no event partition with a bound Python's datetime cannot hold (see the docstring)."""
    return f"""    IF {lower} < timestamptz '{EVENT_MIN}' OR {upper} > timestamptz '{EVENT_MAX}' THEN
        RAISE EXCEPTION '{fn}: [%, %) reaches outside {EVENT_MIN} .. {EVENT_MAX}', {lower}, {upper}
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
"""


CREATE_EVENT_PARTITION = _create(
    "fsar_create_event_partition",
    "task_events",
    "at",
    "timestamptz",
    _EVENT_NAME,
    _event_guard("fsar_create_event_partition", "p_lower", "p_upper"),
)


def _cover(fn: str, create: Fn, parent: str, key_type: str, step_end: str, signature_type: str, guard: str = "") -> Fn:
    b = bounds(parent, key_type)
    return Fn(
        name=fn,
        params=f"p_from {key_type}, p_to {key_type}",
        signature=f"{fn}({signature_type}, {signature_type})",
        returns="text[]",
        settings=UTC,
        body=f"""
DECLARE
    v {key_type} := p_from;
    v_hi {key_type};
    v_next {key_type};
    v_created text[] := '{{}}';
BEGIN
    IF p_from IS NULL OR p_to IS NULL THEN
        RETURN v_created;
    END IF;
{guard}    LOCK TABLE ONLY {parent} IN SHARE UPDATE EXCLUSIVE MODE;  -- before the advisory lock: see the docstring
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK});
    WHILE v < p_to LOOP
        SELECT b.hi INTO v_hi FROM {b} b
        WHERE NOT b.is_default AND (b.lo IS NULL OR b.lo <= v) AND (b.hi IS NULL OR v < b.hi);
        IF FOUND THEN
            EXIT WHEN v_hi IS NULL;  -- up to MAXVALUE: covered
            v := v_hi;
            CONTINUE;
        END IF;
        SELECT min(b.lo) INTO v_next FROM {b} b WHERE NOT b.is_default AND b.lo > v;
        v_hi := least({step_end}, v_next);
        v_created := v_created || {create.name}(v, v_hi);
        v := v_hi;
    END LOOP;
    RETURN v_created;
END
""",
    )


COVER_TASK_IDS_0029 = _cover(
    "fsar_cover_task_ids",
    CREATE_TASK_PARTITION,
    "execution_tasks",
    "bigint",
    f"(floor(v::numeric / {CHUNK})::bigint + 1) * {CHUNK}",
    "bigint",
)
COVER_EVENT_DAYS_0029 = _cover(
    "fsar_cover_event_days",
    CREATE_EVENT_PARTITION_0029,
    "task_events",
    "timestamptz",
    "date_trunc('day', v) + interval '1 day'",
    "timestamp with time zone",
)
# 0032: the top chunk ends at MAX_BIGINT (its end computed in numeric: no overflow).
COVER_TASK_IDS = _cover(
    "fsar_cover_task_ids",
    CREATE_TASK_PARTITION,
    "execution_tasks",
    "bigint",
    f"least((floor(v::numeric / {CHUNK}) + 1) * {CHUNK}, {MAX_BIGINT})::bigint",
    "bigint",
)
COVER_EVENT_DAYS = _cover(
    "fsar_cover_event_days",
    CREATE_EVENT_PARTITION,
    "task_events",
    "timestamptz",
    "date_trunc('day', v) + interval '1 day'",
    "timestamp with time zone",
    _event_guard("fsar_cover_event_days", "p_from", "p_to"),
)

_TASKS = bounds("execution_tasks", "bigint")
_EVENTS = bounds("task_events", "timestamptz")

ENSURE_0029 = Fn(
    name="fsar_ensure_partitions",
    params="p_now timestamptz, p_task_ids_ahead bigint, p_event_days_ahead integer",
    signature="fsar_ensure_partitions(timestamp with time zone, bigint, integer)",
    returns="text[]",
    definer=True,
    settings=(*UTC, ("lock_timeout", "3s")),
    body=f"""
DECLARE
    v_created text[] := '{{}}';
    v_high bigint;
    v_day timestamptz;
    v_default text;
    v_chunk bigint;
BEGIN
    IF p_now IS NULL OR p_task_ids_ahead IS NULL OR p_task_ids_ahead NOT BETWEEN 0 AND {MAX_TASK_IDS_AHEAD}
       OR p_event_days_ahead IS NULL OR p_event_days_ahead NOT BETWEEN 0 AND {MAX_EVENT_DAYS_AHEAD} THEN
        RAISE EXCEPTION 'fsar_ensure_partitions: ids ahead must be 0..{MAX_TASK_IDS_AHEAD} and days ahead '
                        '0..{MAX_EVENT_DAYS_AHEAD}, not % and %', p_task_ids_ahead, p_event_days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF abs(extract(epoch FROM p_now - now())) > 86400
       AND NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'execution_tasks'::regclass),
                           'USAGE') THEN
        RAISE EXCEPTION 'fsar_ensure_partitions: now (%) is more than a day from the database clock', p_now
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOCK TABLE ONLY execution_tasks, ONLY task_events IN SHARE UPDATE EXCLUSIVE MODE;
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK});
    -- Task ids: every gap from the chunk of the highest id handed out (the sequence) or stored
    -- to `ahead` ids past it. Lower gaps are retention's (dropped on purpose), left alone.
    EXECUTE format('SELECT last_value FROM %s', pg_get_serial_sequence('execution_tasks', 'id')) INTO v_high;
    v_high := greatest(v_high, (SELECT max(id) FROM execution_tasks), 0);
    v_created := v_created || fsar_cover_task_ids(floor(v_high::numeric / {CHUNK})::bigint * {CHUNK},
                                                  v_high + p_task_ids_ahead + 1);
    -- Event days: every gap from now's UTC day to `ahead` days after it.
    v_day := date_trunc('day', p_now);
    v_created := v_created || fsar_cover_event_days(v_day, v_day + (p_event_days_ahead + 1) * interval '1 day');
    -- What the DEFAULT partitions caught: a partition for each chunk / day, the rows moved in.
    SELECT b.name INTO v_default FROM {_TASKS} b WHERE b.is_default;
    IF v_default IS NOT NULL THEN
        FOR v_chunk IN EXECUTE format('SELECT DISTINCT floor(id::numeric / {CHUNK})::bigint FROM ONLY %I '
                                      'ORDER BY 1 LIMIT 100', v_default) LOOP
            v_created := v_created || fsar_cover_task_ids(v_chunk * {CHUNK}, (v_chunk + 1) * {CHUNK});
        END LOOP;
    END IF;
    v_default := NULL;
    SELECT b.name INTO v_default FROM {_EVENTS} b WHERE b.is_default;
    IF v_default IS NOT NULL THEN
        FOR v_day IN EXECUTE format('SELECT DISTINCT date_trunc(''day'', at) FROM ONLY %I ORDER BY 1 LIMIT 100',
                                    v_default) LOOP
            v_created := v_created || fsar_cover_event_days(v_day, v_day + interval '1 day');
        END LOOP;
    END IF;
    RETURN v_created;
END
""",
)

ENSURE = Fn(
    name="fsar_ensure_partitions",
    params="p_now timestamptz, p_task_ids_ahead bigint, p_event_days_ahead integer",
    signature="fsar_ensure_partitions(timestamp with time zone, bigint, integer)",
    returns="text[]",
    definer=True,
    settings=(*UTC, ("lock_timeout", "3s")),
    body=f"""
DECLARE
    v_created text[] := '{{}}';
    v_made text[];
    v_owner boolean;
    v_seq bigint := 0;
    v_high bigint;
    v bigint;
    v_end bigint;
    v_to bigint;
    v_chunks numeric[];
    v_chunk numeric;
    v_today timestamptz := date_trunc('day', p_now);  -- a UTC day (TimeZone is pinned)
    v_day timestamptz;
    v_days timestamptz[];
    v_default text;
    v_steps integer := 0;  -- chunks and days that got a partition (MAX_NEW_PARTITIONS)
BEGIN
    IF p_now IS NULL OR p_task_ids_ahead IS NULL OR p_task_ids_ahead NOT BETWEEN 0 AND {MAX_TASK_IDS_AHEAD}
       OR p_event_days_ahead IS NULL OR p_event_days_ahead NOT BETWEEN 0 AND {MAX_EVENT_DAYS_AHEAD} THEN
        RAISE EXCEPTION 'fsar_ensure_partitions: ids ahead must be 0..{MAX_TASK_IDS_AHEAD} and days ahead '
                        '0..{MAX_EVENT_DAYS_AHEAD}, not % and %', p_task_ids_ahead, p_event_days_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_owner := pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = 'execution_tasks'::regclass),
                           'USAGE');
    IF NOT v_owner AND (p_task_ids_ahead > {OPERATOR_MAX_TASK_IDS_AHEAD}
                        OR p_event_days_ahead > {OPERATOR_MAX_EVENT_DAYS_AHEAD}) THEN
        RAISE EXCEPTION 'fsar_ensure_partitions: only the tables'' owner may ask for more than '
                        '{OPERATOR_MAX_TASK_IDS_AHEAD} ids or {OPERATOR_MAX_EVENT_DAYS_AHEAD} days ahead, not % and %',
                        p_task_ids_ahead, p_event_days_ahead
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF abs(extract(epoch FROM p_now - now())) > 86400 AND NOT v_owner THEN
        RAISE EXCEPTION 'fsar_ensure_partitions: now (%) is more than a day from the database clock', p_now
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    LOCK TABLE ONLY execution_tasks, ONLY task_events IN SHARE UPDATE EXCLUSIVE MODE;
    PERFORM pg_advisory_xact_lock({PARTITION_LOCK});
    -- Task ids: every gap from the chunk of the bulk's highest id to `ahead` ids past it, a
    -- chunk at a time. The bulk starts at the sequence: a stray id far above drags nothing.
    IF pg_get_serial_sequence('execution_tasks', 'id') IS NOT NULL THEN
        EXECUTE format('SELECT last_value FROM %s', pg_get_serial_sequence('execution_tasks', 'id')) INTO v_seq;
    END IF;
    v_high := {bulk_high_sql("v_seq")};
    v := (floor(v_high::numeric / {CHUNK}) * {CHUNK})::bigint;
    v_to := least(v_high::numeric + p_task_ids_ahead + 1, {MAX_BIGINT})::bigint;
    WHILE v < v_to AND v_steps < {MAX_NEW_PARTITIONS} LOOP
        v_end := least((floor(v::numeric / {CHUNK}) + 1) * {CHUNK}, {MAX_BIGINT})::bigint;
        v_made := fsar_cover_task_ids(v, least(v_end, v_to));
        v_steps := v_steps + sign(cardinality(v_made))::integer; v_created := v_created || v_made;
        v := v_end;
    END LOOP;
    -- Event days: every gap from now's UTC day to `ahead` days after it, a day at a time.
    v_day := greatest(v_today, timestamptz '{EVENT_MIN}');
    WHILE v_day < least(v_today + (p_event_days_ahead + 1) * interval '1 day', timestamptz '{EVENT_MAX}')
          AND v_steps < {MAX_NEW_PARTITIONS} LOOP
        v_made := fsar_cover_event_days(v_day, v_day + interval '1 day');
        v_steps := v_steps + sign(cardinality(v_made))::integer; v_created := v_created || v_made;
        v_day := v_day + interval '1 day';
    END LOOP;
    -- What the DEFAULT partitions caught within the horizons: a partition for each chunk /
    -- day, the rows moved in (read first: the moves detach DEFAULT). Outside: left there.
    SELECT b.name INTO v_default FROM {_TASKS} b WHERE b.is_default;
    IF v_default IS NOT NULL AND v_steps < {MAX_NEW_PARTITIONS} THEN
        EXECUTE format('SELECT array_agg(c ORDER BY c) FROM (SELECT DISTINCT floor(id::numeric / {CHUNK}) AS c '
                       'FROM ONLY %I WHERE id >= 0 AND id < $1 ORDER BY 1 LIMIT $2) s', v_default)
            INTO v_chunks
            USING least((floor(v_high::numeric / {CHUNK}) + 1) * {CHUNK} + {MAX_TASK_IDS_AHEAD}, {MAX_BIGINT})::bigint,
                  {MAX_NEW_PARTITIONS} - v_steps;
        FOREACH v_chunk IN ARRAY coalesce(v_chunks, '{{}}') LOOP
            EXIT WHEN v_steps >= {MAX_NEW_PARTITIONS};
            v_made := fsar_cover_task_ids((v_chunk * {CHUNK})::bigint,
                                          least((v_chunk + 1) * {CHUNK}, {MAX_BIGINT})::bigint);
            v_steps := v_steps + sign(cardinality(v_made))::integer; v_created := v_created || v_made;
        END LOOP;
    END IF;
    v_default := NULL;
    SELECT b.name INTO v_default FROM {_EVENTS} b WHERE b.is_default;
    IF v_default IS NOT NULL AND v_steps < {MAX_NEW_PARTITIONS} THEN
        EXECUTE format('SELECT array_agg(d ORDER BY d) FROM (SELECT DISTINCT date_trunc(''day'', at) AS d '
                       'FROM ONLY %I WHERE at >= $1 AND at < $2 ORDER BY 1 LIMIT $3) s', v_default)
            INTO v_days
            USING greatest(v_today - {EVENT_DAYS_BEHIND} * interval '1 day', timestamptz '{EVENT_MIN}'),
                  least(v_today + {MAX_EVENT_DAYS_AHEAD + 1} * interval '1 day', timestamptz '{EVENT_MAX}'),
                  {MAX_NEW_PARTITIONS} - v_steps;
        FOREACH v_day IN ARRAY coalesce(v_days, '{{}}') LOOP
            EXIT WHEN v_steps >= {MAX_NEW_PARTITIONS};
            v_made := fsar_cover_event_days(v_day, v_day + interval '1 day');
            v_steps := v_steps + sign(cardinality(v_made))::integer; v_created := v_created || v_made;
        END LOOP;
    END IF;
    RETURN v_created;
END
""",
)

# Revision 0029 creates these (in this order: each calls the ones before). It reads this
# name: never change it, nor the bodies it holds.
FUNCTIONS_0029: tuple[Fn, ...] = (
    CREATE_TASK_PARTITION,
    CREATE_EVENT_PARTITION_0029,
    COVER_TASK_IDS_0029,
    COVER_EVENT_DAYS_0029,
    ENSURE_0029,
)
OPERATOR_FUNCTIONS: tuple[Fn, ...] = (ENSURE_0029,)  # the signature 0029 grants to fsar_operator
# Revision 0032 re-creates these (it reads this name: never change it); its downgrade puts
# the 0029 versions back.
REPLACED_IN_0032: tuple[Fn, ...] = (CREATE_EVENT_PARTITION, COVER_TASK_IDS, COVER_EVENT_DAYS, ENSURE)
# The partition functions at head (what `security-audit` compares with the database).
FUNCTIONS: tuple[Fn, ...] = (CREATE_TASK_PARTITION, CREATE_EVENT_PARTITION, COVER_TASK_IDS, COVER_EVENT_DAYS, ENSURE)
