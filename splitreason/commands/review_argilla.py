"""Placeholder: being written (Argilla push/pull)."""


def push() -> None:
    raise NotImplementedError


def pull() -> None:
    raise NotImplementedError
