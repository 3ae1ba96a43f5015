"""Where a latency projection's rates come from: a profile file of measured rates, or a roofline.

A profile is a TOML file with each model's prefill and decode rate in tokens/s at batch size 1:

    description = "..."            # optional
    source = "..."                 # optional: where the figures were measured
    [small]
    name = "DeepSeek-R1-Distill-Qwen-1.5B"   # optional
    prefill = 28868.4664
    decode = 141
    [large]
    prefill = 2594.868088
    decode = 16

Shipped profiles (`profiles/*.toml`, named by file stem): `a6000-paper`, the paper's own A6000
measurements. Any other path works too.

The roofline is an upper bound from a GPU's datasheet (`gpus.toml`): decoding one token reads
every weight once, so decode <= memory bandwidth / (parameters x bytes per parameter); prefill
does two FLOPs per parameter per token, so prefill <= peak FLOP/s / (2 x parameters). It leaves
out the KV cache, attention's own FLOPs, kernel launch overheads and achieved (not peak)
bandwidth: measured rates are lower, decode typically 50-80 % of the bound.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from splitreason.errors import UsageError
from splitreason.evaluate.latency import Rates

__all__ = ["GPU", "RatesError", "gpus", "load_profile", "roofline_rates", "shipped_profiles"]

PROFILES_DIR = Path(__file__).with_name("profiles")
GPUS_FILE = Path(__file__).with_name("gpus.toml")


class RatesError(UsageError):
    """Rates that cannot be used: a profile that is missing or malformed, an unknown GPU."""


class _ModelRates(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    prefill: float = Field(gt=0)
    decode: float = Field(gt=0)


class _Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str | None = None
    source: str | None = None
    small: _ModelRates
    large: _ModelRates


@dataclass(frozen=True)
class GPU:
    key: str
    name: str
    memory_bandwidth_gbs: float
    tflops: float  # dense BF16/FP16 tensor peak


def shipped_profiles() -> list[str]:
    return sorted(path.stem for path in PROFILES_DIR.glob("*.toml"))


def load_profile(spec: str) -> Rates:
    """The rates of a shipped profile (by name) or of a profile file (by path)."""
    path = PROFILES_DIR / f"{spec}.toml" if spec in shipped_profiles() else Path(spec)
    if not path.is_file():
        raise RatesError(f"profile {spec} is neither a shipped profile ({', '.join(shipped_profiles())}) "
                         "nor a TOML file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise RatesError(f"cannot read profile {path}: {' '.join(str(error).split())[:200]}") from None
    try:
        profile = _Profile(**data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise RatesError(f"profile {path}: {where}: {problem['msg']}") from None
    names = " + ".join(name for name in (profile.small.name, profile.large.name) if name)
    source = profile.source or profile.description or str(path)
    return Rates(small_prefill=profile.small.prefill, small_decode=profile.small.decode,
                 large_prefill=profile.large.prefill, large_decode=profile.large.decode,
                 source=f"profile {spec}" + (f" ({names}; {source})" if names else f" ({source})"))


def gpus() -> dict[str, GPU]:
    data = tomllib.loads(GPUS_FILE.read_text(encoding="utf-8"))
    return {key: GPU(key=key, **values) for key, values in data.items()}


def roofline_rates(gpu: str | GPU, *, small_params_b: float, large_params_b: float,
                   bytes_per_param: float = 2.0) -> Rates:
    """Upper-bound rates of two models of `*_params_b` billion parameters on one `gpu`."""
    if isinstance(gpu, str):
        known = gpus()
        if gpu.lower() not in known:
            raise RatesError(f"unknown GPU {gpu!r} (known: {', '.join(known)}); give measured rates or a --profile")
        gpu = known[gpu.lower()]
    if min(small_params_b, large_params_b, bytes_per_param) <= 0:
        raise RatesError("parameter counts and bytes per parameter must be positive")

    def decode(params_b: float) -> float:
        return gpu.memory_bandwidth_gbs * 1e9 / (params_b * 1e9 * bytes_per_param)

    def prefill(params_b: float) -> float:
        return gpu.tflops * 1e12 / (2 * params_b * 1e9)

    return Rates(small_prefill=prefill(small_params_b), small_decode=decode(small_params_b),
                 large_prefill=prefill(large_params_b), large_decode=decode(large_params_b),
                 source=f"roofline on {gpu.name} ({gpu.memory_bandwidth_gbs:g} GB/s, {gpu.tflops:g} TFLOP/s; "
                        f"{small_params_b:g}B + {large_params_b:g}B parameters, {bytes_per_param:g} bytes each)")
