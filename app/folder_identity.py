"""What a library folder is, beyond its path: a marker file's id, or its volume's id.

A library folder gets a hidden marker file (``.samplescout-folder``, a small JSON object
holding a random id) the first time it is scanned, when the folder can be written. The
marker travels with the folder: renamed, moved, its parent renamed, its drive mounted
somewhere else, the folder still says which library folder it is, and the library relinks
it instead of analysing it again. A folder that cannot be written (a read-only share, a
write-protected drive) is known by its volume instead: the filesystem's UUID (from
``/dev/disk/by-uuid``) and the folder's path inside that filesystem (from
``/proc/self/mountinfo``, which also names a bind mount's subtree), so one folder seen
through two mounts has one volume id.

Pure functions over the filesystem: any thread may call them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass

from engine.json_file import JsonFileError, read_json_file

MARKER_NAME = ".samplescout-folder"
MARKER_MAX_BYTES = 4096
# Folders the system's packages install into: never written to, even by root (a package
# manager does not expect our file there); they are known by their volume.
SYSTEM_FOLDERS = ("/usr", "/opt", "/etc", "/var/lib", "/snap", "/nix", "/boot")
MOUNTINFO = "/proc/self/mountinfo"
BY_UUID = "/dev/disk/by-uuid"


@dataclass(frozen=True)
class FolderIdentity:
    """What was found at a folder now: its marker's id (None: no readable marker) and its
    volume id (None: the filesystem has no UUID, e.g. tmpfs or an overlay)."""
    folder_id: str | None
    volume_id: str | None


def read_marker(folder: str | os.PathLike) -> str | None:
    """The id in the folder's marker file; None when there is none or it is not ours (a
    FIFO, a link to a device, damaged JSON: never trusted, never waited on)."""
    path = os.path.join(os.fspath(folder), MARKER_NAME)
    try:
        value = read_json_file(path, max_bytes=MARKER_MAX_BYTES)
    except (JsonFileError, OSError):
        return None
    folder_id = value.get("folder_id") if isinstance(value, dict) else None
    if not isinstance(folder_id, str):
        return None
    try:
        return uuid.UUID(folder_id).hex
    except ValueError:
        return None


def write_marker(folder: str | os.PathLike, folder_id: str | None = None) -> str | None:
    """Give the folder a marker (a new id unless ``folder_id``); returns the id, or None
    when the folder cannot be written (read-only, full disk, a system folder such as
    /usr/share): it is then known by its volume. Written to a temporary name and renamed, so a marker is never half written."""
    folder = os.fspath(folder)
    real = os.path.realpath(folder)
    if any(real == f or real.startswith(f + "/") for f in SYSTEM_FOLDERS):
        return None
    folder_id = folder_id or uuid.uuid4().hex
    text = json.dumps({"folder_id": folder_id,
                       "about": "Sample Scout's id of this library folder: its analysis "
                                "stays with it when it moves. Safe to delete."}) + "\n"
    temporary = os.path.join(folder, f"{MARKER_NAME}.{os.getpid()}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, os.path.join(folder, MARKER_NAME))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return None
    return folder_id


def volume_id(folder: str | os.PathLike, *, mountinfo: str | None = None,
              by_uuid: str = BY_UUID) -> str | None:
    """``UUID:/path/inside/the/filesystem`` of the folder; None when its filesystem has no
    UUID listed in ``by_uuid`` or the mount table cannot be read. ``mountinfo`` (the text
    of /proc/self/mountinfo) may be given, for tests."""
    real = os.path.realpath(os.fspath(folder))
    if mountinfo is None:
        try:
            with open(MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
                mountinfo = f.read()
        except OSError:
            return None
    mount = _mount_of(real, mountinfo)
    if mount is None:
        return None
    mount_point, fs_root, source = mount
    fs_uuid = _uuid_of(source, by_uuid)
    if fs_uuid is None:
        return None
    inside = os.path.relpath(real, mount_point)
    path = os.path.normpath(os.path.join(fs_root, "" if inside == "." else inside))
    return f"{fs_uuid}:{path}"


def identify(folder: str | os.PathLike) -> FolderIdentity:
    """The folder's marker id and volume id as they are now (nothing is written)."""
    return FolderIdentity(read_marker(folder), volume_id(folder))


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (``\\040``)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and len(field[i + 1:i + 4]) == 3 and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mount_of(real: str, mountinfo: str) -> tuple[str, str, str] | None:
    """(mount point, root of the mount inside its filesystem, source device) of the
    deepest mount holding ``real``; the last such line wins (mounts over mounts)."""
    best: tuple[str, str, str] | None = None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if "-" not in fields or len(fields) < 10:
            continue
        dash = fields.index("-")
        if dash + 2 >= len(fields):
            continue
        fs_root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        source = _unescape(fields[dash + 2])
        if real == mount_point or real.startswith(mount_point.rstrip("/") + "/"):
            if best is None or len(mount_point) >= len(best[0]):
                best = (mount_point, fs_root, source)
    return best


def _uuid_of(source: str, by_uuid: str) -> str | None:
    if not source.startswith("/"):
        return None   # tmpfs, overlay, proc...: no device, no UUID
    try:
        device = os.path.realpath(source)
        names = os.listdir(by_uuid)
    except OSError:
        return None
    for name in sorted(names):
        if os.path.realpath(os.path.join(by_uuid, name)) == device:
            return name
    return None
