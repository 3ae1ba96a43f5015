"""Placeholder: being written (calibrate)."""


def calibrate() -> None:
    raise NotImplementedError
