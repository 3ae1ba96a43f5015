"""The review UI's web app: static page, JSON API, token check, and a server to run it.

Security model (a local tool that shows private data and writes decisions):
- binds 127.0.0.1 unless told otherwise (the command warns for any other address);
- a random token, printed once at start inside the URL to open, is required in the
  X-Review-Token header of every /api/ request and of every write, whatever its path; the
  page reads it from the URL once and then drops it from the address bar;
- request bodies are capped, ids and offsets are checked against the run, errors are JSON
  with a one-line message (never a traceback), and the page runs under a strict Content
  Security Policy with no inline script and nothing from the network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import signal
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from aiohttp import web

from splitreason.io.run_dir import RunDir
from splitreason.review.store import ReviewStore
from splitreason.review_ui.api import ReviewApi
from splitreason.review_ui.edits import ReviewRequestError
from splitreason.review_ui.queue import ReviewQueue
from splitreason.errors import UsageError

TOKEN_HEADER = "X-Review-Token"
MAX_BODY_BYTES = 64 * 1024
MAX_REVIEWER_CHARS = 100
STATIC_FILES = {"index.html": "text/html", "style.css": "text/css", "app.js": "text/javascript",
                "view.js": "text/javascript", "offsets.js": "text/javascript", "favicon.svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first page load carries the token in its URL
    "Cache-Control": "no-store",
}
log = logging.getLogger(__name__)
API_KEY = web.AppKey("review_api", ReviewApi)
STORE_KEY = web.AppKey("review_store", ReviewStore)


class ReviewUIError(UsageError, ValueError):
    """The review UI cannot start as asked; the message says why."""


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


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


def _token_middleware(token: str):
    expected = token.encode()

    @web.middleware
    async def require_token(request: web.Request, handler):
        needs_token = request.method not in ("GET", "HEAD") or request.path.startswith("/api/")
        given = request.headers.get(TOKEN_HEADER, "").encode("utf-8", "replace")
        if needs_token and not secrets.compare_digest(given, expected):
            return json_error(403, f"missing or wrong review token ({TOKEN_HEADER} header): "
                                   "open the URL printed when the server started")
        return await handler(request)

    return require_token


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
    except Exception:
        log.exception("review UI request %s %s failed", request.method, request.path)
        return json_error(500, "internal error (the server's console has the details)")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def _static_routes() -> list[web.RouteDef]:
    """The page's files, read once from the package (no directory is served, so no path escapes)."""
    folder = files("splitreason.review_ui") / "static"
    contents = {name: (folder / name).read_bytes() for name in STATIC_FILES}

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=contents["index.html"], content_type="text/html", charset="utf-8")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in contents:
            raise web.HTTPNotFound()
        return web.Response(body=contents[name], content_type=STATIC_FILES[name], charset="utf-8")

    async def favicon(request: web.Request) -> web.Response:
        return web.Response(body=contents["favicon.svg"], content_type="image/svg+xml")

    return [web.get("/", index), web.get("/favicon.ico", favicon), web.get("/static/{name}", static)]


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
    store = ReviewStore.for_run(out)
    try:
        own_reviews = [review for review in store.reviews() if review.reviewer == reviewer]
    except BaseException:
        store.close()
        raise
    queue = ReviewQueue(annotations, status, own_reviews)  # type: ignore[arg-type]
    api = ReviewApi(queue, store, reviewer, status)
    app = web.Application(client_max_size=MAX_BODY_BYTES,
                          middlewares=[errors_as_json, _token_middleware(token)])
    app[API_KEY] = api
    app[STORE_KEY] = store
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
    return runner, runner.addresses[0][1]


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
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals on this platform
            pass
    try:
        on_ready(bound_port)
        await stop.wait()
    finally:
        await runner.cleanup()
