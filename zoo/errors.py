"""User-facing errors.

A `ZooError` is a problem with what the user asked for (a name, an option, a file, the data), not a
bug. Its message is one line that names the problem and the fix; the command line prints it without a
traceback and exits with status 2.
"""

from collections.abc import Iterable


class ZooError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""


def closest(word: object, candidates: Iterable[object]) -> str:
    """Return a ' Did you mean ...?' suffix for the candidate closest to `word`, or ''."""
    import difflib

    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
