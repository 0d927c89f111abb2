"""`fsar-tui serve` end to end: the real server (a subprocess, on a free port) against a
seeded test database, a real headless Chromium driven by selenium, and plain HTTP and
WebSocket clients for what must be refused.

The browser's terminal is xterm.js drawing on a canvas (textual-serve loads its WebGL
and canvas renderers), so its `.xterm-rows` hold no text: the test catches the page's
Terminal object as it is made (a setter on Object.prototype installed before the page's
scripts run, via the DevTools protocol) and reads the screen from its buffer — what the
operator sees. Keystrokes go in as real key events to the terminal's focused textarea.

Chromium and chromedriver are Debian's `chromium` and `chromium-driver`: when missing the
browser tests FAIL (they are not optional): `.ci/run` installs them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from support.screen import shows
from support.sql import q

TOKEN = "serve-test-token-0123456789abcdef"
URL_LINE = re.compile(r"open (http://[^/\s]+:(\d+)/)\?token=(\S+)")
OPENED = re.compile(r"session ([0-9a-f]{12}) opened")

# Runs before any of the page's scripts: keeps the xterm.js Terminal the page creates
# (textual.js assigns it to `this.terminal`), so its buffer can be read.
CATCH_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  get() { return undefined; },
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true, enumerable: true});
    if (value && typeof value.write === "function" && typeof value.open === "function") {
      window.__fsarTerminal = value;
    }
  },
});
"""
READ_SCREEN = """
const t = window.__fsarTerminal;
if (!t) { const rows = document.querySelector(".xterm-rows"); return rows ? rows.innerText : ""; }
const b = t.buffer.active, out = [];
for (let i = 0; i < t.rows; i++) {
  const line = b.getLine(b.viewportY + i);
  out.push(line ? line.translateToString(true) : "");
}
return out.join("\\n");
"""


class Served:
    """A running `fsar-tui serve`: its process, its output so far, its URL."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.base, self.port, self.shown_token = "", 0, ""

    def started(self) -> None:
        match = self.wait_for(URL_LINE)
        self.base, self.port, self.shown_token = match.group(1), int(match.group(2)), match.group(3)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := pattern.search(line):
                    return match
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{pattern.pattern!r} never appeared; the server said:\n{self.output()}")

    def children(self) -> list[int]:
        """The server's child processes: one app per open browser session."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def url(self, path: str = "/", token: str | None = TOKEN) -> str:
        return f"{self.base}{path.lstrip('/')}" + (f"?token={token}" if token is not None else "")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the server closes every session and stops their apps
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        return self.proc.returncode


@contextmanager
def serving(dsn: str, env: dict[str, str], cwd: Path, *args: str, token: str | None = TOKEN) -> Iterator[Served]:
    """`fsar-tui serve` on a free port; the token through FSAR_SERVE_TOKEN (None: generated)."""
    env = {**env, **({"FSAR_SERVE_TOKEN": token} if token else {})}
    command = [sys.executable, "-m", "fsar_tui", "serve", "--dsn", dsn, "--port", "0", "--live", "poll", *args]
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = Served(proc)
    try:
        served.started()
        yield served
    except BaseException:
        served.stop()
        raise
    apps = served.children()
    code = served.stop()
    assert code == 0, f"the server ended with {code}:\n{served.output()}"
    for pid in apps:  # stopping the server stopped every app it had started
        assert not _alive(pid), f"app process {pid} outlived the server"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by its new parent counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


async def ws_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The HTTP status a WebSocket handshake to url gets (101 when it is accepted)."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(url, headers=headers or {}, timeout=aiohttp.ClientWSTimeout(ws_close=5))
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
        await ws.close()
        return 101


def blocking_proposal(run_cli, db_dsn: str, tmp_path: Path) -> None:
    from test_proposals import report, write

    path = write(tmp_path, "block.txt", report("fsar_web", severity=9, block="true", task_type="self_improvement"))
    ingested = run_cli("ingest-fsar", str(path), "--dsn", db_dsn)
    assert ingested.returncode == 0, ingested.stderr


# --- the browser --------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path):
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and chromium-driver "
            "(.ci/run installs them; by hand: apt-get install -y chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(shutil.which("chromium"))
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root in a container
        "--disable-dev-shm-usage",
        "--window-size=1100,800",
        "--enable-unsafe-swiftshader",  # textual-serve's page needs WebGL2: software GL without a GPU
        "--no-first-run",
        "--disable-background-networking",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(shutil.which("chromedriver"))), options=options)
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CATCH_TERMINAL})
        yield driver
    finally:
        driver.quit()


def screen_text(driver) -> str:
    return str(driver.execute_script(READ_SCREEN) or "")


def wait_screen(driver, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = screen_text(driver)
        if shows(screen, needle):
            return screen
        time.sleep(0.25)
    raise AssertionError(f"{needle!r} never appeared in the browser; its terminal showed:\n{screen}")


def press(driver, keys: str) -> None:
    """Real key events to the terminal (xterm.js listens on its hidden, focused textarea)."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("document.querySelector('.xterm-helper-textarea').focus()")
    ActionChains(driver).send_keys(keys).perform()


def open_app(driver, served: Served) -> None:
    driver.get(served.url())
    wait_screen(driver, "BLOCKED")  # screen 1, with the blocking proposal's banner
    assert "token=" not in driver.current_url  # the page took it out of the address bar
    assert len(served.children()) == 1  # one app for the one browser session


@pytest.mark.slow
def test_a_browser_session_acts_and_the_operator_log_names_it(db_dsn, run_cli, isolated_env, tmp_path, browser):
    """--allow-writes: screen 5, `L`, a reason, typed in the browser: the block is lifted,
    and the operator log's row claims the browser session."""
    from selenium.webdriver.common.keys import Keys

    blocking_proposal(run_cli, db_dsn, tmp_path)
    with serving(db_dsn, isolated_env, tmp_path, "--allow-writes") as served:
        open_app(browser, served)
        session_id = served.wait_for(OPENED).group(1)
        press(browser, "5")
        wait_screen(browser, "BLOCKS self_improvement")
        press(browser, "L")
        wait_screen(browser, "Reason (recorded in operator_actions)")
        press(browser, "fix verified in staging" + Keys.ENTER)
        wait_screen(browser, "block lifted")
        browser.get("about:blank")  # the session ends: its app quits
        served.wait_for(re.compile(rf"session {session_id} closed"))
        deadline = time.monotonic() + 15
        while served.children() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert served.children() == []
    rows = q(db_dsn, "SELECT reason, claimed_os_user FROM operator_actions WHERE action = 'proposal.lift_block'")
    assert rows == [("fix verified in staging", f"browser:{session_id} ({getpass.getuser()})")]
    assert q(db_dsn, "SELECT ref FROM execution_blocks WHERE source = 'proposal'") == []
    assert TOKEN not in served.output()  # a token the operator chose is never printed


@pytest.mark.slow
def test_without_allow_writes_the_same_keys_change_nothing(db_dsn, run_cli, isolated_env, tmp_path, browser):
    from selenium.webdriver.common.keys import Keys

    blocking_proposal(run_cli, db_dsn, tmp_path)
    with serving(db_dsn, isolated_env, tmp_path) as served:
        open_app(browser, served)
        wait_screen(browser, "READ-ONLY")
        press(browser, "5")
        wait_screen(browser, "BLOCKS self_improvement")  # the keys reach the app
        press(browser, "L")
        press(browser, "fix verified in staging" + Keys.ENTER)
        press(browser, "1")
        screen = wait_screen(browser, "matching")  # back on screen 1: every key before it was handled
        assert not shows(screen, "Reason (recorded in operator_actions)")
    assert q(db_dsn, "SELECT count(*) FROM operator_actions WHERE action = 'proposal.lift_block'") == [(0,)]
    assert q(db_dsn, "SELECT count(*) FROM execution_blocks WHERE source = 'proposal'") == [(1,)]


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.slow
def test_no_token_no_page_no_static_file_no_app(db_dsn, isolated_env, tmp_path):
    with serving(db_dsn, isolated_env, tmp_path) as served:
        cookie = f"fsar_serve_{served.port}"
        refused = [
            (served.url("/", None), {}),
            (served.url("/", "wrong-token-0123456789"), {}),
            (served.url("/", TOKEN[:-1]), {}),
            (served.url("/", None), {"Authorization": "Bearer wrong-token-0123456789"}),
            (served.url("/", None), {"Authorization": f"Basic {TOKEN}"}),
            (served.url("/", None), {"Cookie": f"{cookie}=wrong-token-0123456789"}),
            (served.url("/", None), {"Cookie": f"{cookie}={TOKEN}"}),  # the cookie carries the ticket, never the token
            (served.url("/static/js/textual.js", None), {}),
            (served.url("/static/css/xterm.css", "wrong-token-0123456789"), {}),
            (served.url("/ws", None), {}),
            (served.url("/no/such/page", None), {}),
        ]
        for url, headers in refused:
            status, body, response_headers = http_get(url, headers)
            assert status == 401, (url, headers, status)
            assert body.startswith("401: a token is required") and "<" not in body
            assert "Set-Cookie" not in response_headers
        ws = served.url("/ws", None).replace("http://", "ws://")
        assert asyncio.run(ws_status(ws)) == 401
        assert asyncio.run(ws_status(ws + "?token=wrong-token-0123456789")) == 401
        assert asyncio.run(ws_status(ws, {"Authorization": "Bearer wrong-token-0123456789"})) == 401
        # The right token from another site's page (cross-site WebSocket hijacking): 403.
        assert asyncio.run(ws_status(ws, {"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"})) == 403
        assert served.children() == []  # not one app was started
        assert not OPENED.search(served.output())
        assert "wrong-token" not in served.output() and TOKEN not in served.output()  # refusals logged, tokens not

        status, body, headers = http_get(served.url("/"))
        assert status == 200 and 'class="textual-terminal"' in body and "googleapis" not in body
        assert TOKEN not in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        ticket = SimpleCookie(headers["Set-Cookie"])[cookie].value
        assert headers["Referrer-Policy"] == "no-referrer"
        assert http_get(served.url("/static/js/textual.js", None), {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert http_get(served.url("/static/css/xterm.css", None), {"Cookie": f"{cookie}={ticket}"})[0] == 200
        assert served.children() == []  # a page is not a session: only its WebSocket starts an app


@pytest.mark.slow
def test_a_generated_token_is_printed_once_and_required_on_every_interface(db_dsn, isolated_env, tmp_path):
    """No token given, listening beyond localhost: one is generated, shown once in the URL,
    the operator is told the server is reachable from elsewhere, and it is required."""
    with serving(db_dsn, isolated_env, tmp_path, "--host", "0.0.0.0", token=None) as served:
        token = served.shown_token
        assert len(token) >= 43 and served.output().count(token) == 1
        assert "reachable from other machines" in served.output()
        local = f"http://127.0.0.1:{served.port}/"
        assert http_get(local)[0] == 401
        assert http_get(f"{local}?token={token}")[0] == 200
        assert served.children() == []


# --- bad input: before anything starts ----------------------------------------------------


def test_a_port_in_use_is_one_line_and_exit_2(run_cli):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port), "--token", TOKEN, "--dsn", "postgresql://nowhere.invalid/x")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"fsar-tui: cannot listen on 127.0.0.1:{port}: the port is in use (--port another)"
    ]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--host", "not a host"], "fsar-tui: --host 'not a host': not an IP address or a host name"),
        (["--host", "nowhere.invalid"], "fsar-tui: --host nowhere.invalid: cannot resolve it"),
        (["--token", "tiny-tok"], "fsar-tui: --token: too short"),
        (["--port", "70000"], "fsar-tui: argument --port: must be 0..65,535"),
        (["--allow-writes", "--read-only"], "fsar-tui: --allow-writes and read-only"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run_cli, args, message):
    # The DSN is never reached: each of these is refused first.
    result = run_cli("serve", "--port", "0", "--dsn", "postgresql://nowhere.invalid/x", *args)
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message), result.stderr
    assert "tiny-tok" not in result.stderr  # a bad token is not echoed either


def test_reveal_is_refused_before_a_reveal_is_logged(db_dsn, login, run_cli):
    """The refusal comes first: the operator log gets no "reveal" row for a serve that
    never ran (with a role whose reveal would be allowed and logged)."""
    admin = login("fsar_admin")
    before = q(db_dsn, "SELECT count(*) FROM operator_actions")
    result = run_cli("serve", "--reveal", "--port", "0", "--token", TOKEN, "--dsn", admin)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["fsar-tui: --reveal is not offered in a browser: drop it"]
    assert q(db_dsn, "SELECT count(*) FROM operator_actions") == before
    assert q(db_dsn, "SELECT count(*) FROM operator_actions WHERE action = 'reveal'") == [(0,)]


def test_an_unreachable_database_is_one_line_exit_2_and_the_port_is_let_go(run_cli):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_cli("serve", "--port", str(port), "--token", TOKEN, "--dsn", "postgresql://fsar@127.0.0.1:1/x")
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "127.0.0.1" in result.stderr, result.stderr
    with socket.socket() as again:  # nothing kept listening
        again.bind(("127.0.0.1", port))
