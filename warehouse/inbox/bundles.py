"""Reading bundles (.zip, .tar, .tar.gz) and .gz dumps safely: member bytes into memory, capped.

Nothing here extracts: member bytes are read through the zipfile and tarfile APIs with a hard
cap, so no file is ever written at a path a member names, and links are never followed. Limits
stop decompression bombs before their bytes are inflated: the sizes a bundle declares are
checked first, and a member's read is cut at the per-dump limit whatever its header says.
A bundle inside a bundle is not opened: it is a member like any other (and fails as binary).
"""

from __future__ import annotations

import gzip
import lzma
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from transforms.records import Rejection

Kind = Literal["zip", "tar", "gz"]

_SUFFIXES: tuple[tuple[str, Kind], ...] = (
    (".tar.gz", "tar"),
    (".tgz", "tar"),
    (".tar", "tar"),
    (".zip", "zip"),
    (".gz", "gz"),
)
_ANY_SUFFIX = tuple(suffix for suffix, _kind in _SUFFIXES)
# Below this many bytes a high compression ratio is harmless (the bytes fit in memory anyway)
# and says nothing: a page of blank lines compresses a thousandfold.
_RATIO_FLOOR = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")
# What corrupt archive data raises from zipfile, tarfile, gzip and their codecs. OSError is
# among them (gzip and bz2 raise it for bad data); one with an errno is a real I/O failure.
_DATA_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    zlib.error,
    lzma.LZMAError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    KeyError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class BundleLimits:
    """How much a bundle may hold before it is refused, and how much one member may."""

    max_member_bytes: int  # the per-dump limit, applied to each member and each .gz
    max_members: int
    max_total_bytes: int  # uncompressed, summed over the bundle's members
    max_ratio: float  # uncompressed / compressed, past which bytes are a bomb


@dataclass(frozen=True, slots=True)
class Member:
    """One file inside a bundle: its bytes, or why they were not read."""

    name: str  # its path inside the bundle, `/`-separated, as the bundle stores it
    size: int  # bytes read, or the size the bundle declares when refused
    data: bytes | None
    refusal: Rejection | None = None


def kind_of(path: Path | str) -> Kind | None:
    """Which archive format a file or object (an s3:// URL) is, by its name; None for a dump."""
    name = (path.name if isinstance(path, Path) else path.rpartition("/")[2]).lower()
    if not name.endswith(_ANY_SUFFIX):  # most files: settled by one test in C
        return None
    return next((kind for suffix, kind in _SUFFIXES if name.endswith(suffix)), None)


def is_bundle(path: Path) -> bool:
    """Whether a file is an archive of several dumps (.zip, .tar, .tar.gz, .tgz)."""
    return kind_of(path) in {"zip", "tar"}


def members(path: Path, limits: BundleLimits) -> Iterator[Member | Rejection]:
    """A bundle's members in stored order; a Rejection, when it comes last, refuses the bundle."""
    with path.open("rb") as handle:
        yield from read_members(handle, kind_of(path) or "zip", path.stat().st_size, limits)


def read_members(
    handle: IO[bytes], kind: Kind, size: int, limits: BundleLimits
) -> Iterator[Member | Rejection]:
    """Members of a bundle open as a binary file of `size` bytes (see `members`)."""
    try:
        reader = _zip_members if kind == "zip" else _tar_members
        yield from reader(handle, size, limits)
    except _DATA_ERRORS as error:
        _reraise_io(error)
        yield _corrupt(kind, error)


def gunzip(path: Path, limits: BundleLimits) -> bytes | Rejection:
    """The dump a .gz file holds, or why it is refused (corrupt, too large, a bomb)."""
    with path.open("rb") as handle:
        return read_gzip(handle, path.stat().st_size, limits)


def read_gzip(handle: IO[bytes], size: int, limits: BundleLimits) -> bytes | Rejection:
    """The decompressed bytes of a gzip stream of `size` bytes, read no further than the limit."""
    try:
        with gzip.GzipFile(fileobj=handle, mode="rb") as stream:
            data = stream.read(limits.max_member_bytes + 1)
    except _DATA_ERRORS as error:
        _reraise_io(error)
        return _corrupt("gz", error)
    if _is_bomb(len(data), size, limits):
        return _bomb(len(data), size, limits)
    if len(data) > limits.max_member_bytes:
        return _too_large(limits, "decompresses to")
    return data


def _zip_members(
    handle: IO[bytes], size: int, limits: BundleLimits
) -> Iterator[Member | Rejection]:
    with zipfile.ZipFile(handle) as archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        total = sum(info.file_size for info in infos)
        refusal = _bundle_refusal(len(infos), total, None, limits)  # ratios: per member
        if refusal is not None:
            yield refusal
            return
        names: set[str] = set()
        for info in infos:
            yield _zip_member(archive, info, limits, names)


def _zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: BundleLimits, names: set[str]
) -> Member:
    name, declared = info.filename, info.file_size
    refusal = _unsafe(name, names) or _zip_type_refusal(info)
    if refusal is None and _is_bomb(declared, info.compress_size, limits):
        refusal = _bomb(declared, info.compress_size, limits)
    if refusal is None and declared > limits.max_member_bytes:
        refusal = _too_large(limits, "holds")
    if refusal is not None:
        return Member(name, declared, None, refusal)
    try:
        with archive.open(info) as stream:
            data = stream.read(limits.max_member_bytes + 1)  # never past the size declared
    except _DATA_ERRORS as error:  # one bad member (CRC, codec): the others still read
        _reraise_io(error)
        detail = f"This member could not be read: {_describe(error)}."
        return Member(name, declared, None, Rejection("unreadable_member", detail))
    return Member(name, len(data), data)


def _zip_type_refusal(info: zipfile.ZipInfo) -> Rejection | None:
    """Links, devices and encrypted members are refused; zip keeps the Unix mode high."""
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return _unsafe_member("a symbolic link")
    if stat.S_IFMT(mode) not in {0, stat.S_IFREG}:
        return _unsafe_member("not a regular file")
    if info.flag_bits & 0x1:
        return Rejection("unreadable_member", "This member is encrypted.")
    return None


def _tar_members(
    handle: IO[bytes], size: int, limits: BundleLimits
) -> Iterator[Member | Rejection]:
    count = total = 0
    names: set[str] = set()
    with tarfile.open(fileobj=handle, mode="r:*") as archive:
        for info in archive:  # headers are read one at a time: the limits stop a bomb early
            if info.isdir():
                continue
            count, total = count + 1, total + max(0, info.size)
            refusal = _bundle_refusal(count, total, size, limits)
            if refusal is not None:
                yield refusal
                return
            yield _tar_member(archive, info, limits, names)


def _tar_member(
    archive: tarfile.TarFile, info: tarfile.TarInfo, limits: BundleLimits, names: set[str]
) -> Member:
    name = _printable(info.name)
    refusal = _unsafe(name, names) or _tar_type_refusal(info)
    if refusal is None and info.size > limits.max_member_bytes:
        refusal = _too_large(limits, "holds")
    if refusal is not None:
        return Member(name, max(0, info.size), None, refusal)
    stream = archive.extractfile(info)
    data = stream.read(limits.max_member_bytes + 1) if stream is not None else b""
    return Member(name, len(data), data)


def _tar_type_refusal(info: tarfile.TarInfo) -> Rejection | None:
    if info.issym() or info.islnk():
        return _unsafe_member("a link")
    if info.issparse():
        return _unsafe_member("a sparse file")
    if not info.isreg():
        return _unsafe_member("a device, pipe or other special file")
    return None


def _unsafe(name: str, names: set[str]) -> Rejection | None:
    """A member name that could reach outside the bundle, or that another member has already."""
    parts = name.replace("\\", "/").split("/")
    refusal = None
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        refusal = _unsafe_member("an absolute path")
    elif ".." in parts:
        refusal = _unsafe_member("a path climbing out of the bundle (..)")
    elif "\0" in name or not name:
        refusal = _unsafe_member("a name that is empty or holds a NUL")
    elif name in names:
        refusal = _unsafe_member("a second member of the same name")
    names.add(name)
    return refusal


def _bundle_refusal(
    count: int, total: int, compressed: int | None, limits: BundleLimits
) -> Rejection | None:
    """Limits on the whole bundle; the ratio only where members have none of their own (tar)."""
    if count > limits.max_members:
        why = f"it holds more than {limits.max_members:,} members"
    elif total > limits.max_total_bytes:
        why = f"its members hold more than {limits.max_total_bytes:,} bytes in all"
    elif compressed is not None and _is_bomb(total, compressed, limits):
        why = f"its members expand more than {limits.max_ratio:g} times (a decompression bomb)"
    else:
        return None
    return Rejection("bundle_refused", f"The bundle was not opened: {why}.")


def _is_bomb(uncompressed: int, compressed: int, limits: BundleLimits) -> bool:
    return uncompressed > _RATIO_FLOOR and uncompressed > limits.max_ratio * max(1, compressed)


def _bomb(uncompressed: int, compressed: int, limits: BundleLimits) -> Rejection:
    detail = (
        f"{compressed:,} compressed bytes expand to {uncompressed:,} or more, past the "
        f"{limits.max_ratio:g}:1 limit (a decompression bomb)."
    )
    return Rejection("compression_bomb", detail)


def _too_large(limits: BundleLimits, verb: str) -> Rejection:
    detail = f"It {verb} more than the {limits.max_member_bytes:,}-byte limit for one dump."
    return Rejection("too_large", detail)


def _unsafe_member(what: str) -> Rejection:
    return Rejection("unsafe_member", f"This member is {what}; it was not read.")


def _corrupt(kind: str, error: BaseException) -> Rejection:
    detail = f"The {kind} archive could not be read: {_describe(error)}."
    return Rejection("corrupt_archive", detail)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:200]


def _reraise_io(error: BaseException) -> None:
    """A real I/O failure (one with an errno) is the system's problem, not the input's."""
    if isinstance(error, OSError) and error.errno is not None:
        raise error


def _printable(name: str) -> str:
    """A name tarfile decoded with surrogates for undecodable bytes, with those bytes escaped."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
