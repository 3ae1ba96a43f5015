"""Prompt templates live here as files; loaded with importlib.resources and hashed for provenance."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import resources

import jinja2

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@lru_cache(maxsize=None)
def template_source(name: str) -> str:
    """The raw text of a bundled template, e.g. "judge_spans.jinja"."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def template_hash(name: str) -> str:
    """First 16 hex digits of the template's sha256: goes into provenance and the cache key."""
    return hashlib.sha256(template_source(name).encode("utf-8")).hexdigest()[:16]


@lru_cache(maxsize=None)
def _compiled(name: str) -> jinja2.Template:
    return _ENV.from_string(template_source(name))


def render(name: str, **variables: object) -> str:
    """Render a bundled template with strict variables (a missing one is an error, not blank text)."""
    return _compiled(name).render(**variables)
