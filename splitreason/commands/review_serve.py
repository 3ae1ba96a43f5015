"""Placeholder: being written (review UI)."""


def serve() -> None:
    raise NotImplementedError
