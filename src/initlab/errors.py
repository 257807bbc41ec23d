"""Errors initlab raises on bad input.

Every error is one line that says what was wrong, what is allowed, and (for names) the
closest valid one. The CLI turns any :class:`InitlabError` into that line and exit status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Every character str.splitlines() breaks at, mapped to its escaped form.
_LINE_BREAKS = {ord(c): repr(c)[1:-1] for c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"}


class InitlabError(Exception):
    """Base class of every error initlab raises on purpose.

    Its text is always one line: line breaks that user input carries into a message (a
    name or key with a newline in it) are shown escaped, as ``\\n``.

    >>> print(InitlabError("no layer 'a\\nb'"))
    no layer 'a\\nb'
    >>> import initlab
    >>> try:
    ...     initlab.get("he_nromal")
    ... except initlab.InitlabError as e:  # catches every error initlab raises on purpose
    ...     print(type(e).__name__, isinstance(e, ValueError))
    InitSpecError True
    """

    def __str__(self) -> str:
        return super().__str__().translate(_LINE_BREAKS)


class InitSpecError(InitlabError, ValueError):
    """A spec (initializer, optimizer, schedule, dataset, model...) could not be understood.

    >>> import initlab
    >>> initlab.get("normal:std=abc")
    Traceback (most recent call last):
    initlab.errors.InitSpecError: Option std='abc' of initializer 'normal' must be a float.
    """


class ConfigError(InitlabError, ValueError):
    """A configuration file or option has an unknown key, a wrong type or a bad value.

    >>> import initlab
    >>> initlab.compare(setps=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    initlab.errors.ConfigError: Unknown key 'setps'. Did you mean 'steps'? Allowed: name, ...
    """


class DataError(InitlabError):
    """A data file is missing, truncated, corrupted or has the wrong checksum.

    >>> from initlab.data.idx import read_idx
    >>> read_idx("no/such/file.gz")
    Traceback (most recent call last):
    initlab.errors.DataError: no/such/file.gz: file not found.
    """


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> str:
    """One-line message for an unknown name, scikit-learn style."""
    choices = sorted(set(choices))
    return f"Unknown {kind} '{name}'.{did_you_mean(name, choices)} Allowed: {', '.join(choices)}."
