"""splitreason: mark the difficult spans of reasoning traces for offloading to a larger model."""

__version__ = "0.1.0"

OPEN_TAG = "<bigmodel>"
CLOSE_TAG = "</bigmodel>"
# The reasoning model's thinking markers (DeepSeek-R1 style); spans never cut or contain them.
THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
