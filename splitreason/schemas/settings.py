"""The pattern every command's settings follow: one pydantic model, declared once.

A command's settings are one `CommandSettings` subclass in `schemas/` (each field with its
default and a description). The CLI builds it: every option's default *is* the field's default
(`Settings.default("name")`) and its help the field's description (`Settings.help("name")`), so
neither is written twice. The model validates on construction, is what the run's manifest stores
and what a resumed run compares (`Settings.differences`), and a `--config FILE` (TOML or YAML,
the same keys as the fields) fills whatever the command line did not give:

    command line (given explicitly)  >  --config FILE  >  the field's default

Fields that only change how fast a run goes (concurrency, timeouts, progress) are marked with
`operational()` and may change between a run and its resume; every other field shapes the
output, and a resume with another value is refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticUndefined

from splitreason.errors import UsageError, one_line

__all__ = ["CommandSettings", "ModelDtype", "SettingsError", "TraceSelectionSettings", "load_config_file", "operational"]

_OPERATIONAL = "operational"

#: The dtypes a model is loaded in (models/loading.py pick_dtype); auto: bf16 on a GPU that has it, else fp32.
ModelDtype = Literal["auto", "float32", "bfloat16", "float16"]


class SettingsError(UsageError, ValueError):
    """Settings that cannot be used: a bad value, an unknown key in a config file, a changed setting."""


def operational(default: Any = PydanticUndefined, *, description: str, **kwargs: Any) -> Any:
    """A field that may change between a run and its resume (speed, progress, logging)."""
    extra = {**kwargs.pop("json_schema_extra", {}), _OPERATIONAL: True}
    return Field(default, description=description, json_schema_extra=extra, **kwargs)


class CommandSettings(BaseModel):
    """Base of every command's settings model."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: What the command is called in messages ("annotate", "train sft").
    command: ClassVar[str] = ""

    @classmethod
    def default(cls, name: str) -> Any:
        """The field's default, for the CLI option's default."""
        field = cls.model_fields[name]
        if field.default_factory is not None:
            return field.default_factory()  # type: ignore[call-arg]
        if field.default is PydanticUndefined:
            raise KeyError(f"{cls.__name__}.{name} has no default")
        return field.default

    @classmethod
    def help(cls, name: str) -> str:
        """The field's description, for the CLI option's help."""
        return cls.model_fields[name].description or ""

    @classmethod
    def operational_fields(cls) -> set[str]:
        return {name for name, field in cls.model_fields.items()
                if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get(_OPERATIONAL)}

    @classmethod
    def build(cls, given: dict[str, Any], *, explicit: set[str] | None = None,
              config_file: Path | None = None, option_names: dict[str, str] | None = None) -> Self:
        """Settings from the command line's values (`given`), of which `explicit` were typed by the
        user, over a config file's values. Invalid values are one `SettingsError` line; a required
        one missing is named as `option_names` says (`--data`, `DATA`) where it has the field."""
        values: dict[str, Any] = {}
        if config_file is not None:
            values.update(load_config_file(config_file, cls))
        explicit = set(given) if explicit is None else explicit
        for name, value in given.items():
            if name in explicit or name not in values:
                values[name] = value
        try:
            return cls(**values)
        except ValidationError as error:
            raise SettingsError(_one_line(error, cls.command, option_names or {})) from None

    def fingerprint(self) -> dict[str, Any]:
        """The settings that shape the output (everything not operational), JSON-ready."""
        return self.model_dump(mode="json", exclude=self.operational_fields())

    def differences(self, previous: dict[str, Any]) -> list[str]:
        """`name: old -> new` for each output-shaping setting that differs from a stored run's."""
        current = self.fingerprint()
        return [f"{name}: {previous.get(name)!r} -> {value!r}" for name, value in current.items()
                if previous.get(name) != value]


class TraceSelectionSettings(BaseModel):
    """Which generations of OpenR1 rows a command reads (annotate, curate, shard): declared once here."""

    include_incorrect: bool = Field(False, description="Also select generations math-verify marked wrong.")
    include_unfinished: bool = Field(False, description="Also select generations whose finish reason is not stop.")
    include_incomplete: bool = Field(False, description="Also select generations with incomplete reasoning.")
    hub_config: str | None = Field(None, description="Config name for a hub dataset (e.g. default, extended).")
    hub_split: str = Field("train", description="Split of a hub dataset.")


def load_config_file(path: Path, model: type[CommandSettings]) -> dict[str, Any]:
    """A TOML or YAML file of settings (keys as the fields, `-` or `_`), checked against `model`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"cannot read config file {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            raise SettingsError(f"config file {path} must end in .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, ValueError) as error:
        if isinstance(error, SettingsError):
            raise
        raise SettingsError(f"config file {path} is not valid {path.suffix[1:].upper()}: {_first_line(error)}") from None
    except Exception as error:  # yaml.YAMLError without importing yaml at module level
        raise SettingsError(f"config file {path} is not valid YAML: {_first_line(error)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must hold a table of settings, not {type(data).__name__}")
    values = {str(key).replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting {unknown[0]!r} for "
                            f"{model.command or model.__name__} (known: {', '.join(sorted(model.model_fields))})")
    return values


def _one_line(error: ValidationError, command: str, option_names: dict[str, str]) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    prefix = f"{command}: " if command else ""
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    if problem["type"] == "missing" and where in option_names:
        return f"{prefix}{option_names[where]} is required{more}"
    # A model validator's message names its options itself ("--min-chars 5 is above --max-chars 3").
    message = problem["msg"].removeprefix("Value error, ")
    if message.startswith("--"):
        where = ""
    return f"{prefix}{where.replace('_', '-') + ': ' if where else ''}{message}{more}"


def _first_line(error: BaseException) -> str:
    return one_line(error, 200)
