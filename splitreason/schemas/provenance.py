"""What every command records about the software that made its output: Python, the platform and the
versions of the libraries that shaped it (run.json, curate.json, train.json, evaluate offload's
manifest). One function, so a manifest never says `None` in one file and leaves a key out in another
for the same missing package by accident: the caller chooses."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from importlib import metadata

__all__ = ["package_versions"]


def package_versions(packages: Iterable[str], *, missing_as_none: bool = False,
                     with_platform: bool = False) -> dict[str, str | None]:
    """{"python": ..., [ "platform": ...,] package: version, ...}; a package not installed is left out,
    or recorded as None with `missing_as_none` (train.json says which optional libraries were absent)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    if with_platform:
        found["platform"] = platform.platform()
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            if missing_as_none:
                found[package] = None
    return found
