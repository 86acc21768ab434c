"""User-facing errors: a clear message that names the problem and the fix, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """An error caused by the user's input or environment. The CLI prints it and exits 2."""

    exit_code = 2


class UnknownNameError(HarnessError):
    """A task, model or benchmark name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str], hint: str = "") -> None:
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        message = f"unknown {kind} {name!r}."
        if close:
            message += f" Did you mean: {', '.join(close)}?"
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.name = name
        self.suggestions = close


class BadInputError(HarnessError):
    """An input item that cannot be used (for example an image that does not decode)."""
