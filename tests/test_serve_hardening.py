"""`fsar-tui serve` against an attacker's input: an SMTP server that does not answer
refuses the start (as `audit run` does), a token sent under another parameter name is
never logged, and a token a URL would not carry unchanged is refused (the real CLI and
the real server; tests/test_serve.py has the browser)."""

from __future__ import annotations

import re
import socket
import subprocess

import pytest

from test_notify import free_port
from test_serve import TOKEN, http_get, serving

UNRESERVED = re.compile(r"[A-Za-z0-9._~-]+")  # RFC 3986, section 2.3


def refused_in_time(run_cli, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI run, which must end on its own: a serve that started listening would not."""
    try:
        return run_cli(*args, env=env, timeout=30)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`fsar-tui {' '.join(args)}` was still running after 30 s (it served):\n{exc.stdout!r}")


def test_an_smtp_server_that_does_not_answer_refuses_serve_before_it_listens(db_dsn, run_cli, tmp_path):
    config = tmp_path / "notify.toml"
    config.write_text(f'[notify]\nsmtp = "smtp://u:SECRET@127.0.0.1:{free_port()}"\nto = ["oncall@example.com"]\n')
    port = free_port()
    result = refused_in_time(
        run_cli, "serve", "--config", str(config), "--port", str(port), "--token", TOKEN, "--dsn", db_dsn
    )
    assert result.returncode == 2 and result.stdout == "", result.stdout  # no URL: nothing was served
    assert len(result.stderr.strip().splitlines()) == 1 and "does not answer" in result.stderr, result.stderr
    assert "smtp://***@127.0.0.1:" in result.stderr and "SECRET" not in result.stderr
    with socket.socket() as again:  # nothing is listening on the port it was given
        again.bind(("127.0.0.1", port))


@pytest.mark.slow
def test_a_token_under_another_parameter_name_is_never_logged(db_dsn, isolated_env, tmp_path):
    """The refusal log line holds the path only: `?TOKEN=` and `?access_token=` are not
    the `?token=` the server reads, so the request is refused — and its query, holding
    the real token, must not reach the serving terminal."""
    with serving(db_dsn, isolated_env, tmp_path) as served:
        tries = [
            f"{served.base}?TOKEN={TOKEN}",
            f"{served.base}?access_token={TOKEN}",
            f"{served.base}static/js/textual.js?Token={TOKEN}&x=1",
            f"{served.base}ws?width=80&auth={TOKEN}",
        ]
        for url in tries:
            assert http_get(url)[0] == 401, url
        served.wait_for(re.compile(r"refused GET /ws\b"))  # the last refusal is logged: so are those before it
        refusals = [line for line in served.lines if "refused GET" in line]
        assert len(refusals) == len(tries), served.output()
        assert TOKEN not in served.output(), served.output()
        assert all("?…" in line for line in refusals)  # that there was a query is still said


@pytest.mark.parametrize("token", ["tok+abc/def=0123456789", "plus+in-the-middle-0123", "ends-in-padding-0123=="])
@pytest.mark.parametrize("source", ["--token", "FSAR_SERVE_TOKEN"])
def test_a_token_a_url_would_change_is_refused_in_one_line(run_cli, isolated_env, token, source):
    args = ["serve", "--port", "0", "--dsn", "postgresql://nowhere.invalid/x"]
    env = dict(isolated_env)
    if source == "--token":
        args += ["--token", token]
    else:
        env["FSAR_SERVE_TOKEN"] = token
    result = refused_in_time(run_cli, *args, env=env)
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.splitlines() == [
        f"fsar-tui: {source}: only letters, digits and . _ ~ - (RFC 3986 unreserved characters) are allowed"
    ]
    assert token not in result.stderr and token[:8] not in result.stderr  # never echoed


def test_generated_tokens_are_rfc_3986_unreserved():
    from fsar_tui.domain import serve_auth

    for _ in range(200):
        assert UNRESERVED.fullmatch(serve_auth.generate_token())
        assert UNRESERVED.fullmatch(serve_auth.generate_ticket())
