"""What the judges' tokens cost: a price table per judge, in US dollars per million tokens.

The shipped table (prices.toml, next to this module) holds list prices for the built-in aliases
with the date they were copied; `--prices FILE` (same TOML format) replaces entries judge by
judge. A judge with no price is reported as "no price": a cost is never guessed.
"""

from __future__ import annotations

import datetime
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from splitreason.report.stats import JudgeUsage
from splitreason.errors import UsageError

PER_TOKENS = 1_000_000
_ENTRY_KEYS = {"prompt", "completion", "note"}


class PricesError(UsageError, ValueError):
    """A price table cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Price:
    prompt: float | None  # dollars per million prompt tokens; None: no price
    completion: float | None
    note: str
    origin: str  # where the price comes from, shown beside it

    @property
    def known(self) -> bool:
        return self.prompt is not None and self.completion is not None


@dataclass(frozen=True)
class JudgeCost:
    """The cost of one judge's (or one set of judges') usage, or why there is none."""

    name: str
    usage: JudgeUsage
    price: Price | None
    dollars: float | None
    missing: str | None  # why there is no cost ("no price for X", ...)


class PriceTable:
    def __init__(self, entries: dict[str, Price], as_of: str | None):
        self.entries = entries
        self.as_of = as_of  # date of the shipped list prices

    @classmethod
    def load(cls, override: Path | None = None) -> PriceTable:
        text = resources.files("splitreason.report").joinpath("prices.toml").read_text(encoding="utf-8")
        defaults = _parse(text, "the shipped price table")
        as_of = defaults.get("as_of")
        entries = _entries(defaults, "the shipped price table", f"list price as of {as_of}, check it")
        if override is not None:
            try:
                text = override.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise PricesError(f"cannot read price table {override}: {error}") from error
            entries.update(_entries(_parse(text, str(override)), str(override), f"from {override.name}"))
        return cls(entries, as_of)

    def cost(self, name: str, usage: JudgeUsage) -> JudgeCost:
        judges = usage.judges or (name,)
        prices = [self.entries.get(judge) for judge in judges]
        unknown = [judge for judge, price in zip(judges, prices, strict=True) if price is None or not price.known]
        if unknown:
            return JudgeCost(name, usage, prices[0] if len(judges) == 1 else None, None,
                             "no price for " + ", ".join(unknown))
        if len({(price.prompt, price.completion) for price in prices}) > 1:
            # One usage total for several judges with different prices: any split would be made up.
            return JudgeCost(name, usage, None, None, "no price: the tokens of several judges with different "
                             "prices are recorded together, not per judge")
        price = prices[0]
        dollars = (usage.prompt_tokens * price.prompt + usage.completion_tokens * price.completion) / PER_TOKENS
        return JudgeCost(name, usage, price, dollars, None)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PricesError(f"price table {where} is not valid TOML: {error}") from error
    unknown = set(data) - {"as_of", "judges"}
    if unknown:
        raise PricesError(f"price table {where}: unknown key {sorted(unknown)[0]!r} (expected as_of and [judges.NAME])")
    if "as_of" in data:
        if not isinstance(data["as_of"], str | datetime.date):
            raise PricesError(f"price table {where}: as_of must be a date")
        data["as_of"] = str(data["as_of"])  # a bare TOML date is read as datetime.date
    return data


def _entries(data: dict[str, Any], where: str, origin: str) -> dict[str, Price]:
    judges = data.get("judges", {})
    if not isinstance(judges, dict):
        raise PricesError(f"price table {where}: judges must be a table of [judges.NAME] entries")
    entries = {}
    for name, entry in judges.items():
        if not isinstance(entry, dict):
            raise PricesError(f"price table {where}: judges.{name} must be a table with prompt and completion")
        unknown = set(entry) - _ENTRY_KEYS
        if unknown:  # a typo such as "promt" must not silently read as "no price"
            raise PricesError(f"price table {where}: judges.{name} has unknown key {sorted(unknown)[0]!r} "
                              "(expected prompt, completion, note)")
        values = [entry.get("prompt"), entry.get("completion")]
        for key, value in zip(("prompt", "completion"), values, strict=True):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise PricesError(f"price table {where}: judges.{name}.{key} must be a number >= 0 "
                                  "(dollars per million tokens)")
        if (values[0] is None) != (values[1] is None):
            raise PricesError(f"price table {where}: judges.{name} needs both prompt and completion prices")
        note = entry.get("note", "")
        if not isinstance(note, str):
            raise PricesError(f"price table {where}: judges.{name}.note must be a string")
        entries[name] = Price(None if values[0] is None else float(values[0]),
                              None if values[1] is None else float(values[1]), note, origin)
    return entries
