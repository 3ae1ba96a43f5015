"""`splitreason review serve OUT`: the built-in review UI, a local web app (see splitreason/review_ui)."""

from __future__ import annotations

import getpass
import os
import sys
from typing import Annotated, Literal

import typer

from splitreason.commands.options import RunDirArg


def _default_reviewer() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser() or "reviewer"
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "reviewer"


def serve(
    run: RunDirArg,
    host: Annotated[str, typer.Option(help="Address to listen on. Anything but a loopback address exposes "
                                      "the traces to the network (a warning is printed).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).", min=0, max=65535)] = 8765,
    reviewer: Annotated[str | None, typer.Option(help="Your name in the review records (default: $USER, "
                                                 "else 'reviewer').")] = None,
    status: Annotated[Literal["review", "all"], typer.Option(help="review: traces routed to review; all: every "
                                                             "annotation.")] = "review",
    open_browser: Annotated[bool, typer.Option("--open/--no-open", help="Open the page in a web browser.")] = False,
) -> None:
    """Review traces in a local web page: edit spans, accept or reject; every decision is saved at once."""
    import asyncio
    import secrets
    import webbrowser

    from splitreason.review_ui.server import create_app, is_loopback, page_url, serve_until_stopped

    token = secrets.token_urlsafe(24)
    app = create_app(run, reviewer=reviewer or _default_reviewer(), token=token, status=status)
    if not is_loopback(host):
        print(f"warning: listening on {host}: anyone who can reach this port and learns the token can read "
              "these traces and write reviews, over unencrypted HTTP", file=sys.stderr, flush=True)

    def announce(bound_port: int) -> None:
        url = page_url(host, bound_port, token)
        print(f"Review UI for {run}: open {url}", flush=True)
        print(f"The link signs in one browser, once; that browser then keeps {url.split('?', 1)[0]} open. "
              "Every decision is saved in review.sqlite as it is made; press Ctrl+C to stop.", flush=True)
        if open_browser:
            webbrowser.open(url)

    try:
        asyncio.run(serve_until_stopped(app, host, port, announce))
    except KeyboardInterrupt:  # a second Ctrl+C while shutting down
        pass
    print("stopped", flush=True)
