"""Settings: flags > environment (FSAR_*) > config.toml > defaults.

The TOML file is `--config PATH` when given, else `config.toml` in the platformdirs
user config dir (`~/.config/fsar-tui/config.toml` on Linux). Recognised keys:

    dsn = "postgresql://…"        # FSAR_DSN
    read_dsn = "postgresql://…"   # FSAR_READ_DSN (reads go to a replica when set)
    replica_stale_s = 10          # FSAR_REPLICA_STALE_S: replica data older than this is
                                  # marked on screen ("data 12 s old (replica lag)")
    mqtt_url = "mqtt://host:1883" # FSAR_MQTT_URL
    read_only = false             # FSAR_READ_ONLY (1/true/yes)
    statement_timeout_ms = 5000   # FSAR_STATEMENT_TIMEOUT_MS
    live = "auto"                 # FSAR_LIVE: auto | mqtt | notify | poll
    pooler = "auto"               # FSAR_POOLER: auto | pgbouncer | none — a transaction
                                  # pooler in between (db/pooler.py); auto detects it
    webhook_pool_size = 8         # FSAR_WEBHOOK_POOL_SIZE: `fsar-tui webhook`'s database
                                  # connections at most (1..100; --pool-size)
    webhook_pool_timeout_s = 5    # FSAR_WEBHOOK_POOL_TIMEOUT_S: how long a request waits
                                  # for one before a 503 with Retry-After (--pool-timeout)
    [keymap]                      # binding id -> keys, e.g. quit = "ctrl+q"
    [redaction]                   # the one redaction policy (domain/redact.py)
    detectors = ["bearer", "api_key", "secret", "email", "card", "phone"]   # default: all
    fields = ["email", "name", …]   # JSON keys always hidden (default: redact.DEFAULT_FIELDS)
    extra_fields = ["employee_no"]  # added to the defaults instead of replacing them
    [redaction.patterns]          # more detectors: name = "regex"
    employee_id = "EMP-[0-9]{6}"
    [retention]                   # off unless set (domain/retention.py, README: Retention)
    task_events = "14d"           # raw task events kept this long; then archived and dropped
    tasks = "90d"                 # finished tasks kept this long (by id range)
    archive = "/var/lib/fsar"     # where archives go (default: the XDG data dir's retention/)
    every = "1h"                  # the app's audit pass applies the policy at most this often
    [metrics]                     # `fsar-tui metrics`, the Prometheus exporter
    max_label_values = 50         # distinct values a label keeps; the rest are summed as
                                  # `other` (domain/metric_labels.py; --max-label-values)
    max_pairs = 100               # (task_type, ai_model) pairs kept; the rest are summed as
                                  # (other, other) (--max-pairs)
    [notify]                      # off unless set (domain/notify_config.py, README: Notifications)
    webhooks = ["https://…"]      # Alertmanager-format POSTs; tokens in the URL are masked
    smtp = "smtp://user:pass@host:587?starttls=1"   # or smtps://; mail to `to`
    to = ["oncall@example.com"]
    from = "fsar-tui@example.com" # the mail's sender (default fsar-tui@<this host>)

Flags only (never from the environment or the file, so they are a decision per run):
`--reveal` (show raw data: needs a role allowed to, fsar_admin, and is logged) and
`--ingest-live` (the app also ingests FSAR reports published on fsar/v1/proposals).

With no DSN anywhere, fsar-tui uses the embedded PostgreSQL (`embedded.py`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import platformdirs

from fsar_tui.domain.metric_labels import DEFAULT_MAX_LABEL_VALUES, DEFAULT_MAX_PAIRS, MAX_LABEL_VALUES, MAX_PAIRS
from fsar_tui.domain.notify_config import NotifyConfig, NotifyConfigError, parse_notify
from fsar_tui.domain.redact import DEFAULT_FIELDS, DETECTORS, Policy
from fsar_tui.domain.replica_lag import MAX_LAG_S
from fsar_tui.dsn import dsn_params, mask_dsn
from fsar_tui.errors import UsageError

APP_NAME = "fsar-tui"
DEFAULT_STATEMENT_TIMEOUT_MS = 5000
# 24 h: PostgreSQL itself refuses more than INT_MAX ms, at connection time.
MAX_STATEMENT_TIMEOUT_MS = 86_400_000

# `fsar-tui webhook`: its pool of database connections (services/webhook.py).
DEFAULT_WEBHOOK_POOL_SIZE = 8
MAX_WEBHOOK_POOL_SIZE = 100
DEFAULT_WEBHOOK_POOL_TIMEOUT_S = 5.0
MAX_WEBHOOK_POOL_TIMEOUT_S = 300.0
# Reads from a replica further behind than this are marked on screen (read_routing.py).
DEFAULT_REPLICA_STALE_S = 10.0

LIVE_MODES = ("auto", "mqtt", "notify", "poll")
# Whether a transaction pooler (PgBouncer, Neon's pooled endpoint) sits in front of the
# server: detected (auto) or said (fsar_tui.db.pooler).
POOLER_MODES = ("auto", "pgbouncer", "none")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    dsn: str | None = None
    read_dsn: str | None = None
    mqtt_url: str | None = None
    read_only: bool = False
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS
    live: str = "auto"
    pooler: str = "auto"
    webhook_pool_size: int = DEFAULT_WEBHOOK_POOL_SIZE
    webhook_pool_timeout_s: float = DEFAULT_WEBHOOK_POOL_TIMEOUT_S
    replica_stale_s: float = DEFAULT_REPLICA_STALE_S
    keymap: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None
    redaction: Policy = field(default_factory=Policy)
    retention: RetentionConfig | None = None  # [retention]; None: no policy configured
    metrics_max_label_values: int = DEFAULT_MAX_LABEL_VALUES  # [metrics] max_label_values
    metrics_max_pairs: int = DEFAULT_MAX_PAIRS  # [metrics] max_pairs
    notify: NotifyConfig | None = None  # [notify]; None: no notifications
    reveal: bool = False
    ingest_live: bool = False

    @property
    def embedded(self) -> bool:
        """True when no DSN was configured and the embedded server is used."""
        return self.dsn is None

    def __repr__(self) -> str:
        # The dataclass repr would print raw DSNs into logs and tracebacks.
        return f"Settings({self.masked()!r})"

    def masked(self) -> dict[str, Any]:
        """The settings as printable values, passwords masked."""
        return {
            "dsn": mask_dsn(self.dsn) if self.dsn else "(embedded)",
            "read_dsn": mask_dsn(self.read_dsn) if self.read_dsn else None,
            "mqtt_url": mask_dsn(self.mqtt_url) if self.mqtt_url else None,
            "read_only": self.read_only,
            "statement_timeout_ms": self.statement_timeout_ms,
            "live": self.live,
            "pooler": self.pooler,
            "webhook_pool_size": self.webhook_pool_size,
            "webhook_pool_timeout_s": self.webhook_pool_timeout_s,
            "replica_stale_s": self.replica_stale_s,
            "redaction": {
                "detectors": list(self.redaction.detectors),
                "fields": len(self.redaction.fields),
                "patterns": [name for name, _ in self.redaction.patterns],
            },
            "retention": None if self.retention is None else self.retention.masked(),
            "metrics": {"max_label_values": self.metrics_max_label_values, "max_pairs": self.metrics_max_pairs},
            "notify": None if self.notify is None else self.notify.masked(),
            "reveal": self.reveal,
            "config_path": str(self.config_path) if self.config_path else None,
        }


def default_config_path() -> Path:
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def _parse_bool(value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"{source}: expected true/false, got {value!r}")


def _parse_timeout(value: Any, source: str) -> int:
    try:
        ms = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: expected a whole number of milliseconds, got {value!r}") from None
    if ms <= 0:
        raise UsageError(f"{source}: must be positive, got {ms}")
    if ms > MAX_STATEMENT_TIMEOUT_MS:
        raise UsageError(f"{source}: must be at most {MAX_STATEMENT_TIMEOUT_MS:,} ms (24 h), got {ms}")
    return ms


def parse_pool_size(value: Any, source: str) -> int:
    if isinstance(value, bool):
        raise UsageError(f"{source}: expected a whole number of connections, got {value!r}")
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: expected a whole number of connections, got {value!r}") from None
    if not 1 <= size <= MAX_WEBHOOK_POOL_SIZE:
        raise UsageError(f"{source}: must be 1..{MAX_WEBHOOK_POOL_SIZE}, got {size}")
    return size


def parse_pool_timeout(value: Any, source: str) -> float:
    if isinstance(value, bool):
        raise UsageError(f"{source}: expected seconds, got {value!r}")
    try:
        s = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{source}: expected seconds, got {value!r}") from None
    if not 0 < s <= MAX_WEBHOOK_POOL_TIMEOUT_S:  # also refuses nan and inf
        raise UsageError(
            f"{source}: must be more than 0 and at most {MAX_WEBHOOK_POOL_TIMEOUT_S:g} seconds, got {value}"
        )
    return s


def parse_seconds(value: Any, source: str) -> float:
    """A positive, finite number of seconds."""
    try:
        s = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        s = float("nan")
    if not 0 < s < float("inf"):  # also refuses nan
        raise UsageError(f"{source}: expected a positive number of seconds, got {value!r}")
    return s


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """Read the TOML file; a missing default file is fine, a missing --config is not."""
    if not path.exists():
        if required:
            raise UsageError(f"config file not found: {path}")
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None
    known = {
        "dsn",
        "read_dsn",
        "mqtt_url",
        "read_only",
        "statement_timeout_ms",
        "live",
        "pooler",
        "webhook_pool_size",
        "webhook_pool_timeout_s",
        "replica_stale_s",
        "keymap",
        "redaction",
        "retention",
        "metrics",
        "notify",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(isinstance(v, str) for v in keymap.values()):
        raise UsageError(f"{path}: [keymap] must map binding ids to key strings")
    if "redaction" in data:
        data = {**data, "redaction": parse_redaction(data["redaction"], f"{path}: [redaction]")}
    if "retention" in data:
        data = {**data, "retention": parse_retention(data["retention"], f"{path}: [retention]")}
    if "metrics" in data:
        data = {**data, "metrics": parse_metrics(data["metrics"], f"{path}: [metrics]")}
    if "notify" in data:
        try:
            data = {**data, "notify": parse_notify(data["notify"], f"{path}: [notify]")}
        except NotifyConfigError as exc:
            raise UsageError(str(exc)) from None
    return data


def _string_list(value: Any, source: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise UsageError(f"{source}: expected a list of non-empty strings")
    return [v.strip() for v in value]


def parse_redaction(table: Any, source: str) -> Policy:
    """config.toml `[redaction]` → the Policy; unknown keys or detectors, bad regexes: usage errors."""
    if not isinstance(table, dict):
        raise UsageError(f"{source}: must be a table")
    unknown = sorted(set(table) - {"detectors", "fields", "extra_fields", "patterns"})
    if unknown:
        raise UsageError(f"{source}: unknown key(s): {', '.join(unknown)}")
    detectors = tuple(DETECTORS)
    if "detectors" in table:
        chosen = _string_list(table["detectors"], f"{source} detectors")
        bad = sorted(set(chosen) - set(DETECTORS))
        if bad:
            raise UsageError(f"{source} detectors: unknown {', '.join(bad)} (known: {', '.join(DETECTORS)})")
        detectors = tuple(d for d in DETECTORS if d in chosen)  # the order that keeps them disjoint
    fields = (
        frozenset(f.lower() for f in _string_list(table["fields"], f"{source} fields"))
        if "fields" in table
        else DEFAULT_FIELDS
    )
    if "extra_fields" in table:
        fields |= {f.lower() for f in _string_list(table["extra_fields"], f"{source} extra_fields")}
    patterns = []
    raw = table.get("patterns", {})
    if not isinstance(raw, dict):
        raise UsageError(f'{source}.patterns: must be a table of name = "regex"')
    for name, regex in raw.items():
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name) or not isinstance(regex, str) or not regex:
            raise UsageError(f"{source}.patterns: {name!r} needs a lowercase name and a regex string")
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise UsageError(f"{source}.patterns.{name}: invalid regex: {exc}") from None
        if pattern.search(""):
            raise UsageError(f"{source}.patterns.{name}: matches the empty string")
        patterns.append((name, pattern))
    return Policy(detectors=detectors, fields=frozenset(fields), patterns=tuple(patterns))


def load_settings(
    *,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
) -> Settings:
    """Resolve settings; `flags` holds only options the user actually passed."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    path = Path(config_path) if config_path else default_config_path()
    file_values = read_config_file(path, required=config_path is not None)

    settings = Settings(config_path=path if file_values else None)
    # Lowest precedence first: file, then environment, then flags.
    layers: list[tuple[str, Mapping[str, Any]]] = [
        (str(path), file_values),
        (
            "environment",
            {
                "dsn": env.get("FSAR_DSN") or None,
                "read_dsn": env.get("FSAR_READ_DSN") or None,
                "mqtt_url": env.get("FSAR_MQTT_URL") or None,
                "read_only": env.get("FSAR_READ_ONLY"),
                "statement_timeout_ms": env.get("FSAR_STATEMENT_TIMEOUT_MS"),
                "live": env.get("FSAR_LIVE") or None,
                "pooler": env.get("FSAR_POOLER") or None,
                "webhook_pool_size": env.get("FSAR_WEBHOOK_POOL_SIZE") or None,
                "webhook_pool_timeout_s": env.get("FSAR_WEBHOOK_POOL_TIMEOUT_S") or None,
                "replica_stale_s": env.get("FSAR_REPLICA_STALE_S") or None,
            },
        ),
        ("flags", flags),
    ]
    for source, values in layers:
        changes: dict[str, Any] = {}
        for key in ("dsn", "read_dsn", "mqtt_url"):
            if values.get(key):
                changes[key] = str(values[key])
        if values.get("read_only") is not None:
            changes["read_only"] = _parse_bool(values["read_only"], f"{source}: read_only")
        if values.get("statement_timeout_ms") is not None:
            changes["statement_timeout_ms"] = _parse_timeout(
                values["statement_timeout_ms"], f"{source}: statement_timeout_ms"
            )
        if values.get("live"):
            if values["live"] not in LIVE_MODES:
                raise UsageError(f"{source}: live must be one of {', '.join(LIVE_MODES)}, got {values['live']!r}")
            changes["live"] = values["live"]
        if values.get("pooler"):
            if values["pooler"] not in POOLER_MODES:
                raise UsageError(f"{source}: pooler must be one of {', '.join(POOLER_MODES)}, got {values['pooler']!r}")
            changes["pooler"] = values["pooler"]
        if values.get("webhook_pool_size") is not None:
            changes["webhook_pool_size"] = parse_pool_size(values["webhook_pool_size"], f"{source}: webhook_pool_size")
        if values.get("webhook_pool_timeout_s") is not None:
            changes["webhook_pool_timeout_s"] = parse_pool_timeout(
                values["webhook_pool_timeout_s"], f"{source}: webhook_pool_timeout_s"
            )
        if values.get("replica_stale_s") is not None:
            stale = parse_seconds(values["replica_stale_s"], f"{source}: replica_stale_s")
            if stale >= MAX_LAG_S:  # the mark could never show: past MAX_LAG_S reads leave the replica
                raise UsageError(f"{source}: replica_stale_s must be below {MAX_LAG_S:g} s (reads leave a replica "
                                 f"further behind than that), got {stale:g}")  # fmt: skip
            changes["replica_stale_s"] = stale
        if values.get("keymap"):
            changes["keymap"] = {**settings.keymap, **values["keymap"]}
        if values.get("redaction") is not None:
            changes["redaction"] = values["redaction"]
        if values.get("retention") is not None:
            changes["retention"] = values["retention"]
        if values.get("metrics") is not None:
            changes["metrics_max_label_values"], changes["metrics_max_pairs"] = values["metrics"]
        if values.get("notify") is not None:
            changes["notify"] = values["notify"]
        for key in ("reveal", "ingest_live"):
            if values.get(key) is not None and source == "flags":
                changes[key] = bool(values[key])
        settings = replace(settings, **changes)
    if settings.read_dsn and not dsn_params(settings.read_dsn):  # refused at start, as the CLI's connect does
        raise UsageError(f"invalid read DSN {mask_dsn(settings.read_dsn)!r}: not a connection string or URI")
    return settings


# -- [metrics] (issue 20): the exporter's label bound -------------------------------------


def parse_metrics(table: Any, source: str) -> tuple[int, int]:
    """config.toml `[metrics]` → (max_label_values, max_pairs): how many distinct values a
    metric label keeps, and how many (task_type, ai_model) pairs (domain/metric_labels.py);
    unknown keys or a bad number: usage errors."""
    if not isinstance(table, dict):
        raise UsageError(f"{source}: must be a table")
    unknown = sorted(set(table) - {"max_label_values", "max_pairs"})
    if unknown:
        raise UsageError(f"{source}: unknown key(s): {', '.join(unknown)}")
    out = []
    for key, default, top in (("max_label_values", DEFAULT_MAX_LABEL_VALUES, MAX_LABEL_VALUES),
                              ("max_pairs", DEFAULT_MAX_PAIRS, MAX_PAIRS)):  # fmt: skip
        n = table.get(key, default)
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
            raise UsageError(f"{source} {key}: expected a whole number 1..{top:,}, got {n!r}")
        out.append(n)
    return out[0], out[1]


# -- [retention] (issue 18): off unless configured ---------------------------------------

DEFAULT_RETENTION_EVERY_S = 3600


@dataclass(frozen=True)
class RetentionConfig:
    """config.toml `[retention]`: the ages as written (domain/retention.parse_age checked
    them), the archive directory, how often the app's audit pass applies them."""

    task_events: str | None = None
    tasks: str | None = None
    archive: Path | None = None
    every_s: int = DEFAULT_RETENTION_EVERY_S

    def masked(self) -> dict[str, Any]:
        return {
            "task_events": self.task_events,
            "tasks": self.tasks,
            "archive": str(self.archive) if self.archive else None,
            "every_s": self.every_s,
        }


def parse_retention(table: Any, source: str) -> RetentionConfig:
    """config.toml `[retention]` → RetentionConfig; unknown keys or bad ages: usage errors."""
    from fsar_tui.domain.durations import DurationError, parse_window
    from fsar_tui.domain.retention import RetentionError, parse_age

    if not isinstance(table, dict):
        raise UsageError(f"{source}: must be a table")
    unknown = sorted(set(table) - {"task_events", "tasks", "archive", "every"})
    if unknown:
        raise UsageError(f"{source}: unknown key(s): {', '.join(unknown)}")
    ages: dict[str, str | None] = {}
    for key in ("task_events", "tasks"):
        value = table.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise UsageError(f'{source} {key}: expected an age such as "14d", got {value!r}')
            try:
                parse_age(value, key)
            except RetentionError as exc:
                raise UsageError(f"{source} {exc}") from None
        ages[key] = value
    archive = table.get("archive")
    if archive is not None and (not isinstance(archive, str) or not archive.strip()):
        raise UsageError(f"{source} archive: expected a directory path")
    archive_dir = directory_path(archive, f"{source} archive") if archive else None
    every = table.get("every", "1h")
    try:
        every_s = parse_window(str(every))
    except DurationError as exc:
        raise UsageError(f"{source} every: {exc}") from None
    return RetentionConfig(
        task_events=ages["task_events"],
        tasks=ages["tasks"],
        archive=archive_dir,
        every_s=every_s,
    )


def directory_path(text: str, what: str) -> Path:
    """A directory path as typed (`~` and `~user` expanded), or a one-line UsageError for
    one no file system takes (a NUL byte) or a `~user` that does not exist."""
    if "\x00" in text:
        raise UsageError(f"{what}: a path cannot hold a NUL byte")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # ~nosuchuser: "Could not determine home directory."
        raise UsageError(f"{what}: {text.split('/')[0]!r} is no user's home directory") from None
