"""The one base class of the errors pchw reports to a user as a single ``error:`` line.

Every error a user can cause with a value, a file or a missing data set subclasses
:class:`PchwError`; the command line catches this one class, prints ``error: <message>`` and
exits with the error's ``exit_code``. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class PchwError(Exception):
    """A user-facing error whose message is one line: which value or file, what is wrong, what is allowed.

    ``exit_code`` is the command line's exit status: 2 (bad input or missing data) unless a
    subclass says otherwise (a diverging run exits 1: the input was valid, the run failed).
    """

    exit_code = 2

    def one_line(self) -> str:
        """The message with any line breaks folded into spaces."""
        return " ".join(str(self).split())
