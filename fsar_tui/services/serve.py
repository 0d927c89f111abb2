"""`fsar-tui serve`: the app in a browser through textual-serve, behind a token.

Owns the HTTP side: the listening socket (bound before anything else starts, so a port
in use or a bad host is one line and nothing half-started), the aiohttp application and
its token middleware, one app process per browser session, and their shutdown.

Routes, every one behind the middleware (domain/serve_auth.py says what carries a
token): `/` the page, `/static/…` textual-serve's JS, CSS and fonts, `/ws` the WebSocket
that drives one app. A missing or wrong token (or ticket) is answered 401 with one line
and nothing else, before any handler runs: no page, no static file, no WebSocket
upgrade — so no app process is ever started for it. A WebSocket whose Origin is another
site is refused (403), whatever cookie the browser attached.

The page, once let in, sets the cookie to this run's session ticket (ServeConfig.ticket,
random, drawn when the server starts, kept in memory only), never to the token: cookies
are not port-scoped, so whatever the cookie holds every other service on this host name
receives. The ticket lets the page's static files and WebSocket in while this process
runs; a restarted server draws another and refuses the old one.

Built from textual-serve's parts rather than its `Server`: `AppService` (one app
subprocess per WebSocket, speaking Textual's web-driver protocol), the page template
and the static files. `Server`'s handlers cannot do what is needed here: every session
runs one fixed command (each session here gets its own actor channel,
`FSAR_ACTOR_CHANNEL=browser:<session id>`, read by db/actions.os_user), its page
points the browser at the configured host rather than the one the browser used (the
cookie would not follow), it loads a font from fonts.googleapis.com (a third-party
request from an operator's console, and a hang on a machine without Internet), and it
would have to be changed through private methods of a dependency that is not pinned.

The served app gets its settings from the environment (FSAR_DSN … resolved here, flags
> env > config), never on its command line, where `ps` would show a DSN's password.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import re
import shlex
import socket
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fsar_tui.config import Settings
from fsar_tui.domain import serve_auth
from fsar_tui.domain.sanitize import MAX_HOST_CHARS, clip
from fsar_tui.errors import UsageError

if TYPE_CHECKING:
    from aiohttp import web
    from textual_serve.app_service import AppService

MAX_SESSIONS = 8  # each session is a whole app with its own database pool
STOP_GRACE_S = 5.0  # an app asked to quit has this long before it is killed
MAX_WS_MESSAGE = 1 << 20  # keystrokes and resizes: a megabyte is far beyond either
MAX_TERMINAL = 1000  # columns or rows a browser may ask for
GOOGLE_FONTS = re.compile(r"<link[^>]*fonts\.googleapis\.com[^>]*>\s*", re.IGNORECASE)
# Takes the token out of the address bar once the page has been let in (the cookie's
# ticket lets the rest in from here on): not left on screen, in screenshots or in the
# browser's history.
FORGET_TOKEN = (
    "<script>(function(){var u=new URL(location.href);if(u.searchParams.has('token')){"
    "u.searchParams.delete('token');history.replaceState(null,'',u.pathname+u.search+u.hash);}})();</script>"
)
REFUSED_401 = "401: a token is required (open the URL `fsar-tui serve` printed, or send Authorization: Bearer)\n"
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the page's URL holds the token
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class ServeConfig:
    token: str = field(repr=False)
    port: int  # the bound port (names the cookie)
    allow_writes: bool
    app_argv: tuple[str, ...]  # the served app's command, without the per-session channel
    max_sessions: int = MAX_SESSIONS
    log: TextIO | None = field(default=None, compare=False)  # None: sys.stderr as it is when saying
    # What the cookie carries: drawn for this run, never the token (domain/serve_auth.py).
    ticket: str = field(default_factory=serve_auth.generate_ticket, repr=False, compare=False)

    def say(self, line: str) -> None:
        print(f"fsar-tui serve: {line}", file=self.log or sys.stderr, flush=True)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), or UsageError in one line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or exc
        raise UsageError(f"--host {clip(host, MAX_HOST_CHARS)}: cannot resolve it ({why})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        # Lets a restarted server take its port back from connections in TIME_WAIT; on
        # Linux a port another process listens on is still refused (EADDRINUSE).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        where = f"{clip(serve_auth.url_host(host), MAX_HOST_CHARS)}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"cannot listen on {where}: the port is in use (--port another)") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise UsageError(f"cannot listen on {where}: not an address of this machine") from None
        raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    return sock


def app_command(settings: Settings, *, allow_writes: bool) -> tuple[str, ...]:
    """The served app: this interpreter's fsar_tui, read-only unless writes are allowed."""
    argv = [sys.executable, "-m", "fsar_tui"]
    if settings.config_path is not None:
        argv += ["--config", str(settings.config_path)]
    if not allow_writes:
        argv.append("--read-only")  # a flag: nothing in the environment or the file overrides it
    if settings.ingest_live:
        argv.append("--ingest-live")
    return tuple(argv)


def app_environment(settings: Settings, dsn: str) -> dict[str, str | None]:
    """The FSAR_* variables every session's app gets (None: removed): the settings as
    resolved here, so each app meets the database this process checked."""
    values: dict[str, str | None] = {
        "FSAR_DSN": dsn,
        "FSAR_READ_DSN": settings.read_dsn,
        "FSAR_MQTT_URL": settings.mqtt_url,
        "FSAR_STATEMENT_TIMEOUT_MS": str(settings.statement_timeout_ms),
        "FSAR_LIVE": settings.live,
        "FSAR_POOLER": settings.pooler,
        "FSAR_REPLICA_STALE_S": f"{settings.replica_stale_s:g}",
        "FSAR_SERVE_TOKEN": None,  # the app has no use for it
        serve_auth.CHANNEL_ENV: None,  # set per session on its command line
    }
    return values


def apply_environment(values: dict[str, str | None]) -> None:
    """Into this process's environment, which AppService copies for each app it starts."""
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def session_command(argv: tuple[str, ...], session_id: str) -> str:
    """The shell command AppService runs for one session: the app with its channel."""
    channel = f"{serve_auth.CHANNEL_ENV}={serve_auth.channel(session_id)}"
    return f"exec env {shlex.quote(channel)} {shlex.join(argv)}"


def page_template() -> str:
    """textual-serve's page, without the third-party font and with the token forgotten."""
    import textual_serve

    html = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text(encoding="utf-8")
    html = GOOGLE_FONTS.sub("", html)
    return html.replace("<head>", "<head>\n    " + FORGET_TOKEN, 1)


@dataclass
class Session:
    id: str
    peer: str
    ws: web.WebSocketResponse | None = None
    service: AppService | None = None


class Sessions:
    """The open browser sessions: how many, and closing them all at shutdown."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.open: dict[str, Session] = {}

    def reserve(self, peer: str) -> Session | None:
        if len(self.open) >= self.config.max_sessions:
            return None
        session = Session(uuid.uuid4().hex[:12], peer)
        self.open[session.id] = session
        return session

    def release(self, session: Session) -> None:
        self.open.pop(session.id, None)

    async def close_all(self, _app: object = None) -> None:
        from aiohttp import WSCloseCode

        for session in list(self.open.values()):
            if session.ws is not None and not session.ws.closed:
                await session.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping")
        for session in list(self.open.values()):
            await stop_app(session)


async def stop_app(session: Session) -> None:
    """Ask the session's app to quit and wait for its process to end; kill it if it has
    not within STOP_GRACE_S. AppService.stop() returns when the app closes its output,
    which is before the process has exited: the wait is ours."""
    service = session.service
    if service is None:
        return
    session.service = None
    # AppService keeps its process private; it has no wait or kill of its own.
    process = getattr(service, "_process", None)

    async def quit_and_wait() -> None:
        await service.stop()
        if process is not None:
            await process.wait()

    try:
        await asyncio.wait_for(quit_and_wait(), STOP_GRACE_S)
    except TimeoutError:
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()


def _size(value: Any, default: int) -> int:
    try:
        return max(1, min(MAX_TERMINAL, int(value)))
    except (TypeError, ValueError):
        return default


async def pump(ws: web.WebSocketResponse, service: AppService) -> None:
    """The browser's messages to the app (textual-serve's envelope: ["stdin", text],
    ["resize", {width, height}], ["ping", x], ["blur"], ["focus"]); anything else is
    ignored rather than ending the session."""
    from aiohttp import WSMsgType

    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            envelope = json.loads(message.data)
        except ValueError:
            continue
        if not isinstance(envelope, list) or not envelope:
            continue
        kind, data = envelope[0], envelope[1] if len(envelope) > 1 else None
        if kind == "stdin" and isinstance(data, str):
            await service.send_bytes(data.encode("utf-8", "replace"))
        elif kind == "resize" and isinstance(data, dict):
            await service.set_terminal_size(_size(data.get("width"), 80), _size(data.get("height"), 24))
        elif kind == "ping" and isinstance(data, str):
            await ws.send_json(["pong", data[:64]])
        elif kind == "blur":
            await service.blur()
        elif kind == "focus":
            await service.focus()


def make_app(config: ServeConfig) -> web.Application:
    """The aiohttp application: the token (or ticket) middleware in front of the three routes."""
    import jinja2
    import textual_serve
    from aiohttp import web
    from textual_serve.app_service import AppService
    from textual_serve.download_manager import DownloadManager

    sessions = Sessions(config)
    template = jinja2.Environment(autoescape=True).from_string(page_template())
    cookie = serve_auth.cookie_name(config.port)
    mode = "writes allowed" if config.allow_writes else "read-only"

    @web.middleware
    async def require_token(request: web.Request, handler: Any) -> web.StreamResponse:
        if not serve_auth.authorized(
            config.token,
            config.ticket,
            query=request.query.get(serve_auth.QUERY_PARAM),
            authorization=request.headers.get("Authorization"),
            cookie=request.cookies.get(cookie),
        ):
            where = serve_auth.logged_path(request.path_qs)  # never the query: any value may be a token
            config.say(f"refused {request.method} {where} from {request.remote}: no or wrong token or ticket (401)")
            return web.Response(
                status=401,
                text=REFUSED_401,
                headers={"WWW-Authenticate": 'Bearer realm="fsar-tui"', "Cache-Control": "no-store"},
            )
        response: web.StreamResponse = await handler(request)
        return response

    async def page(request: web.Request) -> web.Response:
        scheme = "wss" if request.secure else "ws"
        html = template.render(
            font_size=_size(request.query.get("fontsize"), 16),
            app_websocket_url=f"{scheme}://{request.host}/ws",
            config={"static": {"url": "/static/"}},
            application={"name": f"fsar-tui ({mode})"},
            ping_url="",
        )
        response = web.Response(text=html, content_type="text/html", headers=PAGE_HEADERS)
        # The ticket, never the token: another port on this host gets this cookie too.
        response.set_cookie(cookie, config.ticket, httponly=True, samesite="Strict", path="/")
        return response

    async def websocket(request: web.Request) -> web.StreamResponse:
        if not serve_auth.same_origin(request.headers.get("Origin"), request.host):
            config.say(f"refused a WebSocket from {request.remote}: its page is on another site (403)")
            return web.Response(status=403, text="403: the page that opened this is on another site\n")
        session = sessions.reserve(str(request.remote))
        if session is None:
            return web.Response(status=503, text=f"503: {config.max_sessions} sessions are open already\n")
        ws = web.WebSocketResponse(heartbeat=15, max_msg_size=MAX_WS_MESSAGE)
        session.ws = ws

        async def close() -> None:  # the app said it exited: the browser shows "Session ended"
            await ws.close()

        try:
            await ws.prepare(request)
            session.service = service = AppService(
                session_command(config.app_argv, session.id),
                write_bytes=ws.send_bytes,
                write_str=ws.send_str,
                close=close,
                download_manager=DownloadManager(),
            )
            await service.start(_size(request.query.get("width"), 80), _size(request.query.get("height"), 24))
            config.say(f"session {session.id} opened from {session.peer} ({mode}; {len(sessions.open)} open)")
            await pump(ws, service)
        finally:
            await stop_app(session)
            sessions.release(session)
            if ws.prepared:
                config.say(f"session {session.id} closed ({len(sessions.open)} open)")
        return ws

    app = web.Application(middlewares=[require_token])
    app.router.add_get("/", page)
    app.router.add_get("/ws", websocket)
    static = Path(textual_serve.__file__).parent / "static"
    app.router.add_static("/static", static, show_index=False, follow_symlinks=False)
    app.on_shutdown.append(sessions.close_all)
    return app


def serve(sock: socket.socket, config: ServeConfig) -> None:
    """Serve on the bound socket until SIGINT or SIGTERM; every app is stopped before this returns."""
    from aiohttp import web

    web.run_app(
        make_app(config),
        sock=sock,
        access_log=None,  # its lines would hold `?token=`: refusals and sessions are said instead
        print=None,
        handle_signals=True,
        shutdown_timeout=STOP_GRACE_S + 2,
    )
