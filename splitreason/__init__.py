"""splitreason: mark the difficult spans of reasoning traces for offloading to a larger model."""

__version__ = "0.1.0"

OPEN_TAG = "<bigmodel>"
CLOSE_TAG = "</bigmodel>"
# The reasoning model's thinking markers (DeepSeek-R1 style); spans never cut or contain them.
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def __getattr__(name: str):
    # `splitreason.load_run` without importing polars for every command line start.
    if name in ("load_run", "Run"):
        from splitreason.tables import run

        return getattr(run, name)
    raise AttributeError(f"module 'splitreason' has no attribute {name!r}")
