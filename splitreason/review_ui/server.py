"""The review UI's web app: static page, JSON API, access checks, and a server to run it.

Security model (a local tool that shows private data and writes decisions):
- binds 127.0.0.1 unless told otherwise (the command warns for any other address);
- answers only requests whose Host header names the address it serves (a page on another site
  that rebinds its own domain name to 127.0.0.1 is refused: DNS rebinding), and refuses writes
  whose Origin is another site;
- a random launch token, printed once at start inside the URL to open, works once: opening it
  sets an HttpOnly, SameSite=Strict session cookie and redirects to the bare address, so the
  address bar and the browser's history never hold anything a later visitor could reuse. Every
  /api/ request and every write, whatever its path, needs that session;
- request bodies are capped in size and depth, numbers in them in length, ids and offsets are
  checked against the run, and every malformed request gets a 4xx with a one-line JSON error
  (never a traceback, never a 500); the page runs under a strict Content Security Policy with no
  inline script and nothing from the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import secrets
import signal
import socket
import sqlite3
import sys
import threading
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import aiohttp
from aiohttp import web

from splitreason.errors import UsageError
from splitreason.io.run_dir import RunDir
from splitreason.review.store import REVIEW_DB_NAME, ReviewStore
from splitreason.review_ui.api import ReviewApi
from splitreason.review_ui.edits import ReviewRequestError
from splitreason.review_ui.queue import ReviewQueue

SESSION_COOKIE = "splitreason_review_session"
MAX_BODY_BYTES = 64 * 1024
MAX_REVIEWER_CHARS = 100
STATIC_FILES = {"index.html": "text/html", "style.css": "text/css", "app.js": "text/javascript",
                "view.js": "text/javascript", "offsets.js": "text/javascript", "math.js": "text/javascript",
                "favicon.svg": "image/svg+xml"}
# KaTeX, vendored by scripts/vendor_katex.py: the files its VENDORED.json lists, by suffix.
KATEX_DIR = "katex"
KATEX_TYPES = {".js": "text/javascript", ".css": "text/css", ".woff2": "font/woff2", "LICENSE": "text/plain"}
SECURITY_HEADERS = {
    # KaTeX draws with style properties set through the DOM (allowed by style-src 'self'), and its
    # fonts come from /static/katex/fonts (font-src 'self'): nothing inline, nothing from elsewhere.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
log = logging.getLogger(__name__)
API_KEY = web.AppKey("review_api", ReviewApi)
STORE_KEY = web.AppKey("review_store", ReviewStore)


class ReviewUIError(UsageError, ValueError):
    """The review UI cannot start as asked; the message says why."""


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": " ".join(str(message).split())}, status=status)


def check_reviewer(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_REVIEWER_CHARS or not name.isprintable():
        raise ReviewUIError(f"--reviewer must be 1 to {MAX_REVIEWER_CHARS} printable characters")
    return name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Access:
    """Who may use the app: the launch token, good for one exchange, and the session it opened; and
    which Host headers name this server. `served_host` and `port` are set once the server listens
    (`start_site`); until then no request is answered."""

    def __init__(self, token: str):
        self._launch: bytes | None = token.encode()
        self._session: bytes | None = None
        self.served_host = "127.0.0.1"
        self.port: int | None = None

    def exchange(self, given: str) -> str | None:
        """A new session for the launch token, once; None for a wrong or spent token."""
        if self._launch is None or not secrets.compare_digest(given.encode("utf-8", "replace"), self._launch):
            return None
        self._launch = None  # spent: the link in the browser's history opens nothing any more
        session = secrets.token_urlsafe(32)
        self._session = session.encode()
        return session

    def has_session(self, request: web.Request) -> bool:
        given = request.cookies.get(SESSION_COOKIE, "")
        return self._session is not None and secrets.compare_digest(given.encode("utf-8", "replace"), self._session)

    def host_allowed(self, host_header: str | None) -> bool:
        """The Host header names this server: its address (or, on loopback, localhost) and its port."""
        if self.port is None or not host_header:
            return False
        name, _, port = host_header.rpartition(":")
        if not name or port != str(self.port):
            return False
        name = (name[1:-1] if name.startswith("[") and name.endswith("]") else name).lower()
        served = self.served_host.lower()
        wildcard = served in ("", "0.0.0.0", "::")
        if name == "localhost":
            return wildcard or is_loopback(served)
        try:
            address = ipaddress.ip_address(name)
        except ValueError:  # a name: DNS can point it anywhere, so only the name we were told to serve
            return name == served or (wildcard and name in {socket.gethostname().lower(), socket.getfqdn().lower()})
        if wildcard:
            return True  # any address of this machine: an address literal cannot be rebound
        if served == "localhost":
            return address.is_loopback
        try:
            return address == ipaddress.ip_address(served)
        except ValueError:
            return False

    def origin_allowed(self, origin: str | None) -> bool:
        """A write's Origin (browsers send one) is this server, or absent (a script)."""
        if origin is None:
            return True
        scheme, _, rest = origin.partition("://")
        return scheme == "http" and self.host_allowed(rest)


ACCESS_KEY = web.AppKey("review_access", Access)


def _access_middleware(access: Access):
    @web.middleware
    async def check_access(request: web.Request, handler):
        if not access.host_allowed(request.headers.get("Host")):
            return json_error(403, "this server answers only requests addressed to the address it serves "
                                   f"({access.served_host}:{access.port}); the Host header names another (DNS "
                                   "rebinding?)")
        writes = request.method not in ("GET", "HEAD")
        if writes and not access.origin_allowed(request.headers.get("Origin")):
            return json_error(403, "a write from another site's page is refused")
        if request.path == "/" and "token" in request.query:
            return _sign_in(access, request.query["token"])
        if (writes or request.path.startswith("/api/")) and not access.has_session(request):
            return json_error(403, "no review session: open the link printed when the server started (it signs in "
                                   "one browser, once; restart `splitreason review serve` for a new one)")
        return await handler(request)

    return check_access


def _sign_in(access: Access, token: str) -> web.Response:
    session = access.exchange(token)
    if session is None:
        return json_error(403, "this review link is wrong or was used already (each link signs in one browser, "
                               "once); restart `splitreason review serve` for a new link")
    # 303 to the bare address: the token leaves the address bar before the page exists.
    response = web.Response(status=303, headers={"Location": "/"})
    response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="Strict", path="/")
    return response


# What a peer that went away raises in a handler: aiohttp cancels the request's payload with
# ConnectionResetError("Connection lost"), its own ClientConnectionResetError is one too, and an
# incomplete payload can surface as ClientPayloadError. (asyncio.CancelledError is not caught:
# aiohttp handles it quietly, and cancellation must go on.)
_CLIENT_GONE = (ConnectionError, aiohttp.ClientPayloadError)


@web.middleware
async def errors_as_json(request: web.Request, handler):
    """Every failure becomes a JSON error with one line of text; tracebacks stay on the server."""
    try:
        return await handler(request)
    except ReviewRequestError as error:
        return json_error(error.status, str(error))
    except web.HTTPException as error:
        if error.status < 400:
            raise
        if error.status == 413:
            return json_error(413, f"request body larger than {MAX_BODY_BYTES} bytes")
        return json_error(error.status, error.reason)
    except _CLIENT_GONE as error:
        # The client went away (mid-body, say): no bug of ours, and no one left to answer.
        log.debug("review UI request %s %s: the client disconnected (%s)", request.method, request.path,
                  type(error).__name__)
        return json_error(400, "the connection was closed before the request was complete")
    except Exception:
        log.exception("review UI request %s %s failed", request.method, request.path)
        return json_error(500, "internal error (the server's console has the details)")


class _QuietClientErrors(logging.Filter):
    """aiohttp answers a request it cannot even parse (a garbage request line, a header too long) with
    its own 400 before the app sees it, and logs it with a traceback. That is the client's mistake,
    not ours: it is dropped from the server's console."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        error = record.exc_info[1] if record.exc_info else None
        return not (isinstance(error, HttpProcessingError) and 400 <= (error.code or 0) < 500)


_HTTP_LOG = logging.getLogger("splitreason.review_ui.http")
_HTTP_LOG.addFilter(_QuietClientErrors())


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _katex_files(folder) -> dict[str, str]:
    """The vendored KaTeX files the page may load ("katex/…" -> content type), from VENDORED.json."""
    listed = json.loads((folder / KATEX_DIR / "VENDORED.json").read_text(encoding="utf-8"))["files"]
    types = {}
    for name in listed:
        kind = next((t for suffix, t in KATEX_TYPES.items() if name.endswith(suffix)), None)
        if kind is not None:
            types[f"{KATEX_DIR}/{name}"] = kind
    return types


def _static_routes() -> list[web.RouteDef]:
    """The page's files, read once from the package (no directory is served, so no path escapes)."""
    folder = files("splitreason.review_ui") / "static"
    types = {**STATIC_FILES, **_katex_files(folder)}
    contents = {}
    for name in types:
        resource = folder
        for part in name.split("/"):
            resource = resource / part
        contents[name] = resource.read_bytes()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=contents["index.html"], content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in contents:
            raise web.HTTPNotFound()
        text = types[name].startswith("text/")
        return web.Response(body=contents[name], content_type=types[name], charset="utf-8" if text else None)

    async def favicon(request: web.Request) -> web.Response:
        return web.Response(body=contents["favicon.svg"], content_type="image/svg+xml")

    return [web.get("/", index), web.get("/favicon.ico", favicon), web.get("/static/{name:.+}", static)]


def _store_error(out: Path, error: BaseException) -> BaseException:
    """Why OUT/review.sqlite cannot be opened, in one line that fits `review serve` (it has no -o):
    OUT itself must be writable, or the run copied somewhere that is."""
    from splitreason.io.environment import OutputNotWritable, environment_error

    database = out / REVIEW_DB_NAME
    translated = environment_error(error, path=database)
    if not isinstance(translated, OutputNotWritable):
        return translated or error  # a full disk keeps its own line; anything else is not the machine's
    try:
        read_only = bool(os.statvfs(out).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    why = "it is on a read-only file system" if read_only else \
        "this user may not write there" if not os.access(out, os.W_OK) else "it cannot be opened for writing"
    return ReviewUIError(f"cannot write {database}: {why}; review serve saves every decision there, so the run "
                         f"must be writable: copy it somewhere writable (cp -r {out} COPY) and run "
                         "`splitreason review serve COPY`")


def create_app(out: Path, *, reviewer: str, token: str, status: str = "review") -> web.Application:
    """The web app for one run directory and one reviewer; raises ReviewUIError if there is nothing to review."""
    if len(token) < 16:
        raise ReviewUIError("the review token must be at least 16 characters")
    reviewer = check_reviewer(reviewer)
    if status not in ("review", "all"):
        raise ReviewUIError(f"status must be review or all, not {status!r}")
    # Read the run before touching OUT/review.sqlite, so a wrong directory gets no database.
    annotations = [a for a in RunDir(out).iter_annotations() if status == "all" or a.status == "review"]
    if not annotations:
        hint = "" if status == "all" else " (--status all reviews every annotation)"
        raise ReviewUIError(f"{out} has no annotations with status {status!r} to review{hint}")
    try:
        store = ReviewStore.for_run(out)
    except (sqlite3.Error, OSError) as error:
        raise _store_error(out, error) from error
    try:
        own_reviews = [review for review in store.reviews() if review.reviewer == reviewer]
    except BaseException:
        store.close()
        raise
    queue = ReviewQueue(annotations, status, own_reviews)  # type: ignore[arg-type]
    api = ReviewApi(queue, store, reviewer, status)
    access = Access(token)
    app = web.Application(client_max_size=MAX_BODY_BYTES, handler_args={"logger": _HTTP_LOG},
                          middlewares=[errors_as_json, _access_middleware(access)])
    app[API_KEY] = api
    app[STORE_KEY] = store
    app[ACCESS_KEY] = access
    app.add_routes(_static_routes() + api.routes())
    app.on_response_prepare.append(_security_headers)

    async def close_store(app: web.Application) -> None:
        app[STORE_KEY].close()

    app.on_cleanup.append(close_store)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving `app` on host:port (0: a free port); the runner and the port it got."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)  # no access log: URLs may carry the token
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise ReviewUIError(f"cannot listen on {host}:{port}: {error.strerror or error} "
                            "(--port picks another port, --port 0 any free one)") from error
    bound = runner.addresses[0][1]
    access = app[ACCESS_KEY]
    access.served_host, access.port = host, bound  # from now on requests addressed here are answered
    return runner, bound


def page_url(host: str, port: int, token: str) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/?token={token}"


async def serve_until_stopped(app: web.Application, host: str, port: int,
                              on_ready: Callable[[int], None]) -> None:
    """Serve until SIGINT or SIGTERM; decisions are already on disk, so stopping loses nothing."""
    runner, bound_port = await start_site(app, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # asyncio takes signal handlers only on the main thread of a Unix event loop; elsewhere (a
    # test's thread, Windows) the caller stops the server by cancelling this coroutine.
    if sys.platform != "win32" and threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    try:
        on_ready(bound_port)
        await stop.wait()
    finally:
        await runner.cleanup()
