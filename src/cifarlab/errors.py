"""One exception type for every user-facing failure.

The CLI turns a `CifarlabError` into a one-line message and exit code 2 (no traceback unless
`--debug`); anything else is a bug and keeps its traceback.
"""


class CifarlabError(Exception):
    """A problem with the user's input: says what was wrong and how to fix it."""

    exit_code = 2
