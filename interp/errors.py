"""The one base class of errors that users cause.

Every error that a user can fix (a bad option, a missing or malformed file, an unknown model, a
template the code cannot locate) derives from :class:`InterpError`; the ``interp`` command catches
this class alone, prints its message in one line and exits with status 2. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class InterpError(Exception):
    """A user error: the message names the problem and where it is (file, line, field)."""


class InputNotFoundError(InterpError, FileNotFoundError):
    """A file or folder named by the user (or written by an earlier step) does not exist."""
