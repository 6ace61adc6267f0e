"""One line for a failed command: the words ``python -m churnlib`` prints after ``error:``, and the
dashboard shows for a failed upload (the same checks, the same words).

Bad input -- :class:`churnlib.load.DataValidationError` and other ``ValueError``, a missing column, a
truncated compressed file, text that is not UTF-8, an unreadable or misplaced file -- is described as it
is (exit code 2); anything else is an internal error that asks to be reported (exit code 1).
"""
from __future__ import annotations

from typing import Sequence

__all__ = ["error_message"]

_WHY = {IsADirectoryError: "is a folder where a file was expected",
        NotADirectoryError: "part of the path is a file, not a folder",
        FileExistsError: "already exists and is in the way (a file where a folder is needed?)",
        PermissionError: "permission denied",
        FileNotFoundError: "no such file or folder"}


def error_message(exc: BaseException, files: Sequence[str], command: str, *,
                  internal_hint: str = "please report it") -> tuple[int, str]:
    """Exit code and one-line message for an exception raised by a command.

    Parameters
    ----------
    exc : BaseException
        What the command raised.
    files : sequence of str
        The files the command was given, named when the message does not name one.
    command : str
        The command's name (``score``, ``train`` ...), named in an internal error.
    internal_hint : str, default "please report it"
        What an internal error asks the user to do.

    Returns
    -------
    (int, str)
        2 and the message for bad input, 1 and the message for an internal error; one line, never a
        traceback.
    """
    files = [str(f) for f in files]
    if isinstance(exc, EOFError):
        code, message = 2, f"a compressed input ends early (truncated, or still being written): {', '.join(files)} ({exc})"
    elif isinstance(exc, UnicodeDecodeError):
        code, message = 2, f"an input is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})"
    elif isinstance(exc, OSError) and (not isinstance(exc, FileNotFoundError) or exc.filename):
        why = _WHY.get(type(exc), exc.strerror or type(exc).__name__)
        code, message = 2, f"{exc.filename or ', '.join(files)}: {why}"
    elif isinstance(exc, (ValueError, KeyError, FileNotFoundError)):  # bad input: the message says what to fix
        message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        if isinstance(exc, KeyError):
            message = f"no column or key {message!r}"
        if files and not any(f in message for f in files):
            message += f" (files: {', '.join(files)})"
        code = 2
    else:
        code, message = 1, f"internal error in `churnlib {command}` ({type(exc).__name__}: {exc}); {internal_hint}"
    return code, " ".join(message.splitlines())
