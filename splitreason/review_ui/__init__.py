"""The built-in review UI: `splitreason review serve OUT` starts a local web app where one
reviewer goes through the traces in review, edits their spans and accepts or rejects them.

    queue.py    which traces, in which order, and progress
    edits.py    span edits (code-point offsets, checked against the trace) and the Review record
    api.py      the JSON API
    server.py   the aiohttp app: static page, token check, errors as JSON, serving
    static/     the page (no network: everything is served from here)
"""
