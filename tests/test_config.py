"""Settings precedence: flags > environment > config.toml > defaults."""

from __future__ import annotations

import pytest

from fsar_tui.config import DEFAULT_STATEMENT_TIMEOUT_MS, load_settings
from fsar_tui.errors import UsageError


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_anything(tmp_path):
    s = load_settings(env={}, flags={}, config_path=write(tmp_path, ""))
    assert s.dsn is None and s.embedded and not s.read_only
    assert s.statement_timeout_ms == DEFAULT_STATEMENT_TIMEOUT_MS


def test_file_then_env_then_flags(tmp_path):
    path = write(
        tmp_path,
        'dsn = "postgresql://file/db"\nmqtt_url = "mqtt://file"\nread_only = true\n'
        'statement_timeout_ms = 100\n[keymap]\nquit = "ctrl+q"\n',
    )
    s = load_settings(env={}, flags={}, config_path=path)
    assert (s.dsn, s.mqtt_url, s.read_only, s.statement_timeout_ms) == (
        "postgresql://file/db",
        "mqtt://file",
        True,
        100,
    )
    assert s.keymap == {"quit": "ctrl+q"}

    s = load_settings(env={"FSAR_DSN": "postgresql://env/db", "FSAR_READ_ONLY": "0"}, flags={}, config_path=path)
    assert s.dsn == "postgresql://env/db" and s.read_only is False and s.mqtt_url == "mqtt://file"

    s = load_settings(
        env={"FSAR_DSN": "postgresql://env/db"},
        flags={"dsn": "postgresql://flag/db", "read_only": True, "statement_timeout_ms": 7},
        config_path=path,
    )
    assert s.dsn == "postgresql://flag/db" and s.read_only is True and s.statement_timeout_ms == 7


def test_default_file_location_is_user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "fsar-tui").mkdir()
    (tmp_path / "fsar-tui" / "config.toml").write_text('read_dsn = "postgresql://replica/db"\n')
    assert load_settings(env={}, flags={}).read_dsn == "postgresql://replica/db"


def test_missing_explicit_config_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_settings(env={}, flags={}, config_path=tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "text,message",
    [
        ("dsn = ", "invalid TOML"),
        ("colour = 'red'", "unknown setting"),
        ("read_only = 'maybe'", "expected true/false"),
        ("statement_timeout_ms = -5", "must be positive"),
        ("[keymap]\nquit = 3", r"\[keymap\]"),
    ],
)
def test_bad_config_values(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_settings(env={}, flags={}, config_path=write(tmp_path, text))


def test_bad_env_value(tmp_path):
    with pytest.raises(UsageError, match="environment: read_only"):
        load_settings(env={"FSAR_READ_ONLY": "perhaps"}, flags={}, config_path=write(tmp_path, ""))


def test_masked_settings_hide_passwords(tmp_path):
    s = load_settings(
        env={"FSAR_DSN": "postgresql://u:topsecret@h/d", "FSAR_MQTT_URL": "mqtt://u:alsosecret@b"},
        flags={},
        config_path=write(tmp_path, ""),
    )
    text = repr(s.masked())
    assert "topsecret" not in text and "alsosecret" not in text and "****" in text


def test_repr_never_shows_password(tmp_path):
    s = load_settings(env={"FSAR_DSN": "host=h password=topsecret"}, flags={}, config_path=write(tmp_path, ""))
    assert "topsecret" not in repr(s) and "topsecret" not in str(s)


def test_redaction_policy_from_the_file(tmp_path):
    from fsar_tui.domain.redact import DEFAULT_FIELDS, DETECTORS

    assert load_settings(env={}, config_path=write(tmp_path, "")).redaction.detectors == tuple(DETECTORS)
    text = (
        '[redaction]\ndetectors = ["phone", "email"]\nextra_fields = ["Employee_No"]\n'
        '[redaction.patterns]\nemployee_id = "EMP-[0-9]{6}"\n'
    )
    policy = load_settings(env={}, config_path=write(tmp_path, text)).redaction
    assert policy.detectors == ("email", "phone")  # the disjoint order, whatever the file's
    assert policy.fields == DEFAULT_FIELDS | {"employee_no"}
    assert (
        policy.text("mail a@b.io, key sk-live_abcdefghijklmnop1234, badge EMP-123456")
        == "mail [REDACTED:email], key sk-live_abcdefghijklmnop1234, badge [REDACTED:employee_id]"
    )
    assert policy.value({"employee_no": 7, "EMAIL": "x", "n": 7}) == {
        "employee_no": "[REDACTED:field]",
        "EMAIL": "[REDACTED:field]",
        "n": 7,
    }
    only = load_settings(env={}, config_path=write(tmp_path, '[redaction]\nfields = ["ssn"]\n')).redaction
    assert only.fields == frozenset({"ssn"})


@pytest.mark.parametrize(
    "text, message",
    [
        ('[redaction]\ndetectors = ["email", "telepathy"]\n', "unknown telepathy"),
        ('[redaction]\ndetectors = "email"\n', "expected a list"),
        ("[redaction]\ncolour = 1\n", "unknown key(s): colour"),
        ('[redaction]\n[redaction.patterns]\nbad = "EMP-[0-9"\n', "invalid regex"),
        ('[redaction]\n[redaction.patterns]\nanything = ".*"\n', "matches the empty string"),
        ('[redaction]\n[redaction.patterns]\n"Bad Name" = "x"\n', "needs a lowercase name"),
        ("redaction = 3\n", "must be a table"),
    ],
)
def test_bad_redaction_settings(tmp_path, text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(env={}, config_path=write(tmp_path, text))
