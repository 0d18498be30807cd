"""What a night depends on failing: which failures a retry can mend, and what to tell the user.

Each service has a detector: given an error, True (transient: a task's retry seconds later
may succeed), False (lasting: retrying only repeats it) or None (not this service's error).
`transient` asks them in turn; an error none of them knows keeps the old rule (an `OSError`
or a timeout is worth a retry, a logic error is not). A lasting outage fails the night with a
`ServiceUnavailable` naming the service and what to do.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from warehouse.home import Home


class ServiceUnavailable(RuntimeError):
    """A service the night needs is down, full or refusing: `service` names it for the user,
    the message says what to do."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


def transient(error: BaseException) -> bool:
    """Whether a second try of the failed task can succeed (the first detector that knows the
    error decides; otherwise an OSError or a timeout is, anything else is not)."""
    for detector in _DETECTORS:
        verdict = detector(error)
        if verdict is not None:
            return verdict
    return isinstance(error, OSError | TimeoutError)


# --- the disk ------------------------------------------------------------------------------

# What each errno means for the disk, and the words it takes in errors that carry no errno
# (DuckDB's and SQLite's messages, Arrow's).
_DISK_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "over its quota", errno.EROFS: "read-only"}
_DISK_WORDS = {
    "no space left on device": errno.ENOSPC,
    "database or disk is full": errno.ENOSPC,
    "disk quota exceeded": errno.EDQUOT,
    "read-only file system": errno.EROFS,
    "readonly database": errno.EROFS,
}


# SQLite's words for a failure that may be the disk's or not (a missing folder, a lost device):
# the disk's when one of the night's folders is on a read-only or full disk right then.
_MAYBE_DISK_WORDS = ("unable to open database file", "disk i/o error")
# Free bytes under which a disk counts as full for such an error.
_NEARLY_FULL = 1024 * 1024


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and those it was raised from or while handling, each once."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def disk_errno(error: BaseException) -> int | None:
    """ENOSPC, EDQUOT or EROFS when the error (or one it came from) is a full, over-quota or
    read-only disk; None otherwise. A `ServiceUnavailable` already said so: None."""
    for link in _chain(error):
        if isinstance(link, ServiceUnavailable):
            return None
        if isinstance(link, OSError) and link.errno in _DISK_ERRNOS:
            return link.errno
        text = str(link).lower()
        for words, number in _DISK_WORDS.items():
            if words in text:
                return number
    return None


def is_maybe_disk(error: BaseException) -> bool:
    """Whether the error is a disk's, or one of SQLite's that a bad disk also gives."""
    if isinstance(error, ServiceUnavailable):
        return False  # already said
    if disk_errno(error) is not None:
        return True
    return any(w in str(link).lower() for link in _chain(error) for w in _MAYBE_DISK_WORDS)


def _disk(error: BaseException) -> bool | None:
    """A full or read-only disk stays so until someone frees space or remounts it: a retry of
    the task seconds later only fails again (and on a full disk, fills what the first try
    freed). Not transient."""
    return False if disk_errno(error) is not None else None


def disk_places(home: Home) -> list[tuple[str, Path]]:
    """The folders on this machine a night writes to, named for the user, the home first."""
    places = [("the home", home.root)]
    if home.data_is_local:
        places.append(("the data path", Path(home.data_url)))
    for name, location in (("the archive", home.archive), ("the staging folder", home.staging)):
        if "://" not in location:
            places.append((name, Path(location)))
    if home.catalog_spec.startswith("sqlite:"):
        places.append(("the catalog's folder", Path(home.catalog_spec[7:]).parent))
    return places


def disk_unavailable(
    error: BaseException, home: Home, committed: bool = False
) -> ServiceUnavailable | None:
    """The error as the user should read it when it is a disk's (full, over quota, read-only):
    which folder, and what to do, and whether the night had committed before; None for any
    other error."""
    places = disk_places(home)
    number = disk_errno(error)
    if number is None and is_maybe_disk(error):
        number = _probed(places)
    if number is None:
        return None
    name, where = _failed_place(error, number, places)
    state = _DISK_ERRNOS[number]
    if number == errno.EROFS:
        todo = (
            "make it writable again (remount it read-write; a disk that turned read-only by "
            "itself had errors: check it first)"
        )
    elif number == errno.EDQUOT:
        todo = f"free space under {where} or raise the quota"
    else:
        todo = f"free space under {where}"
    return ServiceUnavailable(
        f"the disk under {where}",
        f"the disk under {where} ({name}) is {state}: {todo}, then run again; "
        + _outcome(committed),
    )


def _probed(places: list[tuple[str, Path]]) -> int | None:
    """EROFS when one of the places is on a read-only disk, ENOSPC when one is on a (nearly)
    full one, None otherwise."""
    states = {_disk_state(path) for _, path in places} - {None}
    return next((n for n in (errno.EROFS, errno.EDQUOT, errno.ENOSPC) if n in states), None)


def _disk_state(path: Path) -> int | None:
    """EROFS, EDQUOT or ENOSPC when the disk holding `path` is read-only, over quota or (nearly)
    full right now, else None. A file is made and removed to tell: a disk that turned
    read-only after errors (ext4's emergency read-only) still says read-write in its flags."""
    found = _existing(path)
    if found is None or not found.is_dir():
        return None
    stat = os.statvfs(found)
    if stat.f_flag & os.ST_RDONLY:
        return errno.EROFS
    try:
        handle, name = tempfile.mkstemp(prefix=".wirehouse-probe-", dir=found)
    except OSError as error:
        return error.errno if error.errno in _DISK_ERRNOS else None
    os.close(handle)
    os.unlink(name)
    return errno.ENOSPC if stat.f_bavail * stat.f_frsize < _NEARLY_FULL else None


def _outcome(committed: bool) -> str:
    """What became of the night, for the end of the message."""
    if not committed:
        return "nothing was committed."
    return (
        "the night itself was committed before that; only what follows the commit "
        "(compaction, report) was not done."
    )


def _failed_place(
    error: BaseException, number: int, places: list[tuple[str, Path]]
) -> tuple[str, Path]:
    """The place the error is about, widened to the first place on the same disk (the home,
    when the folder is inside it): the place holding the file the error names, else the one
    whose disk is read-only (EROFS) or has the least space left, else the home."""
    found = _named_place(error, places)
    disks = [(name, path, os.statvfs(at)) for name, path in places if (at := _existing(path))]
    if found is None and number == errno.EROFS:
        found = next(((n, p) for n, p in places if _disk_state(p) == errno.EROFS), None)
    elif found is None and disks:
        least = min(s.f_bavail * s.f_frsize for _, _, s in disks)
        found = next((n, p) for n, p, s in disks if s.f_bavail * s.f_frsize == least)
    if found is None:
        return places[0]
    device = _device(found[1])
    return next((place for place in places if _device(place[1]) == device), found)


def _named_place(error: BaseException, places: list[tuple[str, Path]]) -> tuple[str, Path] | None:
    """The innermost place holding the file that the error (or one it came from) names."""
    for link in _chain(error):
        filename = getattr(link, "filename", None)
        if isinstance(filename, str | Path) and filename:
            holding = [p for p in places if _is_under(Path(filename), p[1])]
            if holding:
                return max(holding, key=lambda p: len(p[1].parts))
    return None


def _device(path: Path) -> int | None:
    """The device (disk) holding a path, or its nearest existing folder."""
    found = _existing(path)
    return os.stat(found).st_dev if found is not None else None


def _is_under(path: Path, folder: Path) -> bool:
    """Whether `path` is `folder` or inside it."""
    return path == folder or folder in path.parents


def _existing(path: Path) -> Path | None:
    """The path, or its nearest folder that exists (on the same disk as the path would be)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return None


_DETECTORS: tuple[Callable[[BaseException], bool | None], ...] = (_disk,)
