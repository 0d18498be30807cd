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
    number = disk_errno(error)
    if number is None:
        return None
    name, where = _failed_place(error, number, disk_places(home))
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
        found = next(((n, p) for n, p, s in disks if s.f_flag & os.ST_RDONLY), None)
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
