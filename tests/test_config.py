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
    path = write(tmp_path, 'dsn = "postgresql://file/db"\nmqtt_url = "mqtt://file"\nread_only = true\n'
                           'statement_timeout_ms = 100\n[keymap]\nquit = "ctrl+q"\n')
    s = load_settings(env={}, flags={}, config_path=path)
    assert (s.dsn, s.mqtt_url, s.read_only, s.statement_timeout_ms) == ("postgresql://file/db", "mqtt://file", True, 100)
    assert s.keymap == {"quit": "ctrl+q"}

    s = load_settings(env={"FSAR_DSN": "postgresql://env/db", "FSAR_READ_ONLY": "0"}, flags={}, config_path=path)
    assert s.dsn == "postgresql://env/db" and s.read_only is False and s.mqtt_url == "mqtt://file"

    s = load_settings(env={"FSAR_DSN": "postgresql://env/db"}, flags={"dsn": "postgresql://flag/db",
                      "read_only": True, "statement_timeout_ms": 7}, config_path=path)
    assert s.dsn == "postgresql://flag/db" and s.read_only is True and s.statement_timeout_ms == 7


def test_default_file_location_is_user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "fsar-tui").mkdir()
    (tmp_path / "fsar-tui" / "config.toml").write_text('read_dsn = "postgresql://replica/db"\n')
    assert load_settings(env={}, flags={}).read_dsn == "postgresql://replica/db"


def test_missing_explicit_config_is_usage_error(tmp_path):
    with pytest.raises(UsageError, match="config file not found"):
        load_settings(env={}, flags={}, config_path=tmp_path / "nope.toml")


@pytest.mark.parametrize("text,message", [
    ("dsn = ", "invalid TOML"),
    ("colour = 'red'", "unknown setting"),
    ("read_only = 'maybe'", "expected true/false"),
    ("statement_timeout_ms = -5", "must be positive"),
    ("[keymap]\nquit = 3", r"\[keymap\]"),
])
def test_bad_config_values(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        load_settings(env={}, flags={}, config_path=write(tmp_path, text))


def test_bad_env_value(tmp_path):
    with pytest.raises(UsageError, match="environment: read_only"):
        load_settings(env={"FSAR_READ_ONLY": "perhaps"}, flags={}, config_path=write(tmp_path, ""))


def test_masked_settings_hide_passwords(tmp_path):
    s = load_settings(env={"FSAR_DSN": "postgresql://u:topsecret@h/d", "FSAR_MQTT_URL": "mqtt://u:alsosecret@b"},
                      flags={}, config_path=write(tmp_path, ""))
    text = repr(s.masked())
    assert "topsecret" not in text and "alsosecret" not in text and "****" in text


def test_repr_never_shows_password(tmp_path):
    s = load_settings(env={"FSAR_DSN": "host=h password=topsecret"}, flags={}, config_path=write(tmp_path, ""))
    assert "topsecret" not in repr(s) and "topsecret" not in str(s)
