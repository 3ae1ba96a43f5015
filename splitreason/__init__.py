"""splitreason: mark the difficult spans of reasoning traces for offloading to a larger model."""

__version__ = "0.1.0"

OPEN_TAG = "<bigmodel>"
CLOSE_TAG = "</bigmodel>"
