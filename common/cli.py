"""Argument types for management commands: hostile or impossible input is refused by the argument parser with
a plain reason (exit status 2 on the command line, CommandError through call_command), never a traceback."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def clean_text(value: str, *, max_length: int, strip: bool = True) -> str:
    """The value (stripped unless told); ValueError with a plain reason for NUL bytes, undecodable bytes (lone
    surrogates, as Python shows bytes that are not UTF-8), or more than `max_length` characters."""
    if "\x00" in value:
        raise ValueError("contains a NUL byte")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid UTF-8 text") from None
    value = value.strip() if strip else value
    if len(value) > max_length:
        raise ValueError(f"is longer than {max_length} characters")
    return value


def text_arg(max_length: int, *, blank: bool = False) -> Callable[[str], str]:
    """An argparse `type=` for a text option of at most `max_length` characters (argparse names the option in
    its message: "argument --name: contains a NUL byte")."""

    def parse(value: str) -> str:
        try:
            value = clean_text(value, max_length=max_length)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not value and not blank:
            raise argparse.ArgumentTypeError("is empty")
        return value

    parse.__name__ = "text"  # argparse names the type in its messages
    return parse


def int_arg(*, low: int, high: int) -> Callable[[str], int]:
    """An argparse `type=` for a whole number in [low, high]."""

    def parse(value: str) -> int:
        try:
            number = int(value.strip())
        except (ValueError, UnicodeError):
            raise argparse.ArgumentTypeError(f"must be a whole number, not {value[:40]!r}") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, not {number}")
        return number

    parse.__name__ = "number"
    return parse
