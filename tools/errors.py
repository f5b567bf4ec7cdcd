"""The one root of every error a user can cause or fix.

Every package raises subclasses of :class:`SenseError` for problems a person can act on (a file
that is not audio, a missing model or data folder, a bad conversation file, an unreachable LLM
server). The command line, the web app and the eval harness each catch ``SenseError`` at one
boundary and show its message as one line; anything else is a bug and keeps its traceback.

``tools`` is the bottom layer of the project (``knowledge``, ``demt``, ``agent``, ``eval`` and the
app may all import it), so the root lives here.
"""

from __future__ import annotations


class SenseError(Exception):
    """A problem the user can fix; ``str(error)`` is one line that says what and how.

    Subclasses keep a second base where callers already catch a built-in type
    (``FileNotFoundError``, ``ValueError``, ``RuntimeError``).
    """


def one_line(exc: BaseException) -> str:
    """The error's message on one line (newlines folded), never empty.

    Args:
        exc: any exception.
    Returns:
        ``str(exc)`` with whitespace runs folded, or the class name when the message is empty.
    """
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


class OutputExistsError(SenseError, FileExistsError):
    """An output file already exists; SENSE never overwrites one (choose another path)."""


class DataMissingError(SenseError, RuntimeError):
    """The shared data set is not on this machine and could not be fetched.

    The message is one line saying what is missing and how to point ``SENSE_DATA_DIR`` at it.
    """
