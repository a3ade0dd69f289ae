"""User-facing errors.

A `ZooError` is a problem with what the user asked for (a name, an option, a file, the data), not a
bug. Its message is one line that names the problem and the fix; the command line prints it without a
traceback and exits with status 2.
"""

from collections.abc import Iterable


class ZooError(ValueError):
    """Bad input: the message says what is wrong and how to fix it."""

    def __init__(self, message: object = "", *args: object) -> None:
        # A line break that comes from the user's data (a column name, a cell, a parser's message) is
        # shown escaped, so that the message stays the one line a failed command prints.
        text = str(message).strip()
        for breaking in ("\r\n", "\n", "\r"):
            text = text.replace(breaking, "\\n")
        super().__init__(text, *args)


def closest(word: object, candidates: Iterable[object]) -> str:
    """Return a ' Did you mean ...?' suffix for the candidate closest to `word`, or ''."""
    import difflib

    match = difflib.get_close_matches(str(word), [str(c) for c in candidates], n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
