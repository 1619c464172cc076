"""File names read from a task's JSON stay inside its folder.

A task folder is data from elsewhere: ``task.json`` names its program text,
``circuit.json`` its residual basis, a manifest its task folders and their files. A name
such as ``../../../../etc/hostname``, an absolute path, or a symlink pointing out of the
folder would make loading read (or a sweep run) something outside the set, so every such
name is checked here before it is opened, and refused with the file and field it came from.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from rasp_compiler.interp.tasks.sources import TaskSetError


def confined(folder: Path, name, where: str, single: bool = False) -> Path:
    """``folder / name``, if ``name`` is a plain relative file name that stays inside ``folder``
    (no ``..``, not absolute, no symlink leaving it); ``single`` also forbids subfolders.
    ``where`` names the JSON file and field, for the error."""
    if not isinstance(name, str) or name in ("", "."):
        raise TaskSetError(f"{where}: {name!r} is not a file name")
    parts = PurePosixPath(name).parts
    if (PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or PureWindowsPath(name).drive
            or ".." in parts or "\\" in name or "\0" in name or (single and len(parts) != 1)):
        raise TaskSetError(f"{where}: {name!r} must be a {'plain name' if single else 'relative path'} inside "
                           f"{folder} (no '..', no absolute path{', no subfolder' if single else ''})")
    path = folder / name
    root = folder.resolve()
    if not path.resolve().is_relative_to(root):
        raise TaskSetError(f"{where}: {name!r} leads outside {folder} (through a symlink)")
    return path


__all__ = ["confined"]
