"""Output safety: refuse an output path that would destroy an input or cannot be written, before any work.

Every command that writes (``features``, ``train``, ``score``, ``monitor``) calls :func:`check_output`
first, so a mistyped ``--out`` costs a one-line error instead of an overwritten event log, or a
traceback after minutes of training. The checks look only at the file system; nothing is created.

The data-quality account of a command (:class:`churnlib.load.DataQuality`) is written beside its
output: :func:`quality_path` gives the name (``<out>.quality.json`` for a file, ``quality.json``
inside an output folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["OutputError", "QUALITY_NAME", "check_output", "quality_path"]

#: Name of the data-quality account inside an output folder (``train --out``).
QUALITY_NAME = "quality.json"


class OutputError(ValueError):
    """An output path that must not or cannot be written; the message names the path and the fix.

    Parameters
    ----------
    message : str
        What is wrong and what to do.
    path : path-like
        The output concerned.
    """

    def __init__(self, message: str, path: str | os.PathLike) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"output {self.path}: {message}")


def quality_path(out: str | os.PathLike, *, folder: bool = False) -> Path:
    """Where the data-quality account of an output goes.

    Parameters
    ----------
    out : path-like
        The output file (``risk.csv``) or, with ``folder=True``, the output folder.
    folder : bool, default False
        ``out`` is a folder: the account is ``out/quality.json``.

    Returns
    -------
    pathlib.Path
        ``<out>.quality.json`` (``risk.csv.quality.json``), or ``<out>/quality.json``.
    """
    out = Path(out)
    if not folder and not out.name:  # "." or "/": the name of the folder it stands for
        out = out.absolute().resolve()
    return out / QUALITY_NAME if folder else out.with_name(out.name + ".quality.json")


def _same(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _inside(child: Path, folder: Path) -> bool:
    try:
        child.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _writable_ancestor(path: Path) -> None:
    """Refuse a path under a regular file, or whose nearest existing folder cannot be written."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot be created: {parent} is a file, not a folder", path)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"cannot be created: no permission to write in {parent}", path)
            return


def check_output(out: str | os.PathLike, *, inputs: Iterable[str | os.PathLike | None] = (),
                 folder: bool = False, names: Iterable[str] = (), sidecar: bool = True) -> Path:
    """Check that ``out`` can be written without harm; raise :class:`OutputError` otherwise.

    Parameters
    ----------
    out : path-like
        The output: a file, or with ``folder=True`` a folder the command writes files into.
    inputs : iterable of path-like
        The command's inputs (``None`` entries are ignored). ``out`` must not be one of them, nor lie
        inside an input folder (an event-log folder would read it back next time), nor, for a folder
        output, hold an input under one of the ``names`` it writes.
    folder : bool, default False
        ``out`` is a folder (created if needed); otherwise a file.
    names : iterable of str
        File names a folder output writes (``metrics.json`` ...), checked against ``inputs`` and
        against existing sub-folders of the same name.
    sidecar : bool, default True
        Also check the data-quality account's path (:func:`quality_path`).

    Returns
    -------
    pathlib.Path
        ``out`` as a :class:`~pathlib.Path`.

    Raises
    ------
    OutputError
        ``out`` is an input or inside an input folder; a folder where a file is expected (or a file
        where a folder is expected); under a regular file; in a folder without write permission.
    """
    out = Path(out)
    if str(out).strip() == "":
        raise OutputError("empty output path", out)
    given = [Path(p) for p in inputs if p is not None and str(p) != ""]
    if not folder and out.is_dir():
        raise OutputError("is a folder; give a file name (e.g. a path inside it)", out)
    targets = [out / n for n in names] if folder else [out]
    if sidecar:
        targets.append(quality_path(out, folder=folder))
    for src in given:
        if _same(out, src):
            raise OutputError(f"is also the input {src}; writing it would destroy the input. "
                              "Choose another --out", out)
        if src.is_dir() and _inside(out, src):
            raise OutputError(f"lies inside the input folder {src}, which would read it back as input. "
                              "Choose a path outside it", out)
        for t in targets:
            if _same(t, src):
                raise OutputError(f"would overwrite the input {src} ({t.name}). Choose another --out", out)
    if folder:
        if out.exists() and not out.is_dir():
            raise OutputError("is a file, but this command writes a folder (model, manifest, metrics.json). "
                              "Give a folder path", out)
    for t in targets:
        if t is not out and t.is_dir():
            raise OutputError(f"{t} is a folder where a file would be written; remove or rename it", out)
    _writable_ancestor(out if not folder or not out.exists() else out / "x")
    return out
