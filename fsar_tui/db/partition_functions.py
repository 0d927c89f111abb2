"""The functions that make partitions (revision 0029 creates them; db/partitions.py calls
them), as the text the migration ran (shipped_sql.Fn: `security-audit` compares sources).

- fsar_create_task_partition(lower, upper) / fsar_create_event_partition(lower, upper):
  one partition of execution_tasks [lower, upper) of ids (lower NULL: MINVALUE) or of
  task_events [lower, upper) of times. The exact range existing: its name; overlapping
  another partition: an error. Created standalone (LIKE the parent: columns, defaults,
  CHECKs), stripped of any grant a default privilege gave it, owned by the parent's
  owner, then ATTACHed (SHARE UPDATE EXCLUSIVE on the parent: readers and writers go on;
  the new table and the DEFAULT partition, scanned to prove it holds none of the range,
  are locked ACCESS EXCLUSIVE for that moment). Rows of the range caught by DEFAULT are
  moved into it in the same transaction: DEFAULT detached (the foreign keys referencing
  the parent dropped first: a referenced row forbids the detach; added back validated
  at the end), the rows copied into the new table and deleted from DEFAULT — neither
  table has triggers then, so no count, rollup or event sees a row move — and both
  attached again.
- fsar_cover_task_ids(from, to) / fsar_cover_event_days(from, to): every gap in
  [from, to) not covered by a partition gets partitions aligned on CHUNK ids / UTC days
  (a gap's edge cuts one short where another partition begins).
- fsar_ensure_partitions(now, task_ids_ahead, event_days_ahead): the maintenance. Every
  gap in the task ids from the CHUNK of the highest id handed out (the sequence) or
  stored to `task_ids_ahead` ids past it, and in the days from `now`'s UTC day to
  `event_days_ahead` days after it; then, for every chunk or day the DEFAULT partition
  holds rows of (100 a call), that chunk or day. Gaps below those windows are
  retention's (dropped on purpose) and stay gaps unless DEFAULT holds rows there.
  SECURITY DEFINER, EXECUTE for fsar_operator (the audit pass); arguments are
  bounded, and `now` must be within a day of the database's clock unless the caller is a
  member of the tables' owner (the seeder, tests).

All of them take one transaction-level advisory lock (PARTITION_LOCK): two processes
creating partitions at once take turns, the second finds the work done. Before it, the
parent(s) they change, ONLY, in SHARE UPDATE EXCLUSIVE (what ATTACH takes anyway: readers
and writers go on): a session already holding a stronger lock on a parent — the seeder
holds SHARE ROW EXCLUSIVE on execution_tasks while it makes its ranges' partitions — then
keeps the audit pass's maintenance waiting at the table, holding nothing the seeder
needs, instead of both waiting on each other (table lock vs advisory lock: a deadlock,
and PostgreSQL would abort one of them). fsar_ensure_partitions gives up after
lock_timeout (3 s); the next pass tries again.
TimeZone is pinned to UTC (days are UTC days; bounds print and parse in one zone).
"""

from __future__ import annotations

from fsar_tui.db.shipped_sql import Fn

CHUNK = 1_000_000  # ids per task partition
PARTITION_LOCK = 727003  # pg advisory lock key: partition maintenance, one at a time
MAX_TASK_IDS_AHEAD = 100 * CHUNK
MAX_EVENT_DAYS_AHEAD = 366
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


def _create(fn: str, parent: str, key: str, key_type: str, name_sql: str) -> Fn:
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
    LOCK TABLE ONLY {parent} IN SHARE UPDATE EXCLUSIVE MODE;  -- before the advisory lock: see the docstring
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
CREATE_EVENT_PARTITION = _create(
    "fsar_create_event_partition",
    "task_events",
    "at",
    "timestamptz",
    "CASE WHEN p_lower = date_trunc('day', p_lower) AND p_upper = p_lower + interval '1 day' "
    "THEN 'task_events_' || to_char(p_lower, 'YYYYMMDD') "
    "ELSE 'task_events_' || coalesce(to_char(p_lower, 'YYYYMMDD\"t\"HH24MISS'), 'min') || '_' "
    "|| to_char(p_upper, 'YYYYMMDD\"t\"HH24MISS') END",
)


def _cover(fn: str, create: Fn, parent: str, key_type: str, step_end: str, signature_type: str) -> Fn:
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
    LOCK TABLE ONLY {parent} IN SHARE UPDATE EXCLUSIVE MODE;  -- before the advisory lock: see the docstring
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


COVER_TASK_IDS = _cover(
    "fsar_cover_task_ids",
    CREATE_TASK_PARTITION,
    "execution_tasks",
    "bigint",
    f"(floor(v::numeric / {CHUNK})::bigint + 1) * {CHUNK}",
    "bigint",
)
COVER_EVENT_DAYS = _cover(
    "fsar_cover_event_days",
    CREATE_EVENT_PARTITION,
    "task_events",
    "timestamptz",
    "date_trunc('day', v) + interval '1 day'",
    "timestamp with time zone",
)

_TASKS = bounds("execution_tasks", "bigint")
_EVENTS = bounds("task_events", "timestamptz")

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

# Revision 0029 creates these (in this order: each calls the ones before).
FUNCTIONS: tuple[Fn, ...] = (CREATE_TASK_PARTITION, CREATE_EVENT_PARTITION, COVER_TASK_IDS, COVER_EVENT_DAYS, ENSURE)
OPERATOR_FUNCTIONS: tuple[Fn, ...] = (ENSURE,)
