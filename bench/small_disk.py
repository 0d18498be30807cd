"""Small real filesystems for disk faults: a disk that fills up, a folder that turns read-only.

Shared by the tests and the soak (`bench.soak`), so nothing here imports pytest. Mounting needs
root, or a `sudo` that asks no password (`sudo -n`); where neither is there, or the kernel
refuses (a container without the right), the helpers say so by giving None, and the caller
falls back to the simulated `ENOSPC` of `warehouse/faults.py` (`WIREHOUSE_FAIL_AT=NAME:K`).
Whatever is mounted is unmounted on the way out, whatever happened.

- `small_disk(path, mib)`: a tmpfs of that size at `path` (`kind="ext4"`: an ext4 image on a
  loop device, mounted `errors=remount-ro`, which can also fail as a real disk does and turn
  read-only under open files: `SmallDisk.break_down`).
- `SmallDisk.fill(leave)` leaves only `leave` bytes free; `SmallDisk.unfill()` frees them again.
- `read_only_folder(path)`: the folder, as it is, bound read-only over itself (root's `chmod`
  would not stop root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# The file whose blocks take the disk's free space: hidden, so listings of the home skip it.
BALLAST = ".ballast"
MIB = 1024 * 1024


def mount_prefix() -> list[str] | None:
    """How this process may mount: as itself (root), through `sudo -n`, or not at all (None)."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") is None:
        return None
    asked = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    return ["sudo", "-n"] if asked.returncode == 0 else None


def _run(prefix: list[str], *command: str) -> bool:
    """Run a mount-related command with the prefix; whether it succeeded."""
    done = subprocess.run([*prefix, *command], capture_output=True, check=False)
    return done.returncode == 0


@dataclass
class SmallDisk:
    """A small filesystem mounted at `path` by this process: fill it, free it, make it read-only."""

    path: Path
    kind: str  # "tmpfs" or "ext4"
    prefix: list[str] = field(default_factory=list)  # [] as root, ["sudo", "-n"] otherwise
    device: str | None = None  # the loop device of an ext4 image

    def free_bytes(self) -> int:
        """Bytes that an ordinary write may still take on this filesystem."""
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int = 0) -> int:
        """Take the free space with a ballast file so that only about `leave` bytes remain (to
        a block); the bytes the ballast took."""
        ballast = self.path / BALLAST
        taken = ballast.stat().st_size if ballast.exists() else 0
        block = os.statvfs(self.path).f_frsize
        more = max(0, self.free_bytes() - leave) // block * block
        if more:
            with open(ballast, "ab") as handle:
                os.posix_fallocate(handle.fileno(), taken, more)
        return taken + more

    def unfill(self) -> None:
        """Free the space the ballast took."""
        (self.path / BALLAST).unlink(missing_ok=True)

    def read_only(self) -> bool:
        """Remount the filesystem read-only, as an operator would; whether it could (the kernel
        refuses while a file on it is open for writing)."""
        return _run(self.prefix, "mount", "-o", "remount,ro", str(self.path))

    def read_write(self) -> bool:
        """Remount the filesystem read-write again; whether it could."""
        return _run(self.prefix, "mount", "-o", "remount,rw", str(self.path))

    def break_down(self) -> bool:
        """An ext4 disk fails as a damaged one does: ext4 records an error and, mounted
        `errors=remount-ro`, turns read-only at once, under files open for writing too; whether
        it could (a tmpfs cannot)."""
        if self.kind != "ext4" or self.device is None:
            return False
        trigger = f"/sys/fs/ext4/{Path(self.device).name}/trigger_fs_error"
        if not os.path.exists(trigger):
            return False
        done = subprocess.run(
            [*self.prefix, "tee", trigger], input=b"1", capture_output=True, check=False
        )
        return done.returncode == 0


@contextmanager
def small_disk(path: Path, mib: int, kind: str = "tmpfs") -> Iterator[SmallDisk | None]:
    """A filesystem of `mib` MiB mounted at `path` (made if missing) for the block, owned by
    this process's user; None where this process may not mount. Unmounted in the end."""
    prefix = mount_prefix()
    if prefix is None:
        yield None
        return
    path.mkdir(parents=True, exist_ok=True)
    disk = _mount(path, mib, kind, prefix)
    try:
        yield disk
    finally:
        if disk is not None:
            _unmount(disk)


def _mount(path: Path, mib: int, kind: str, prefix: list[str]) -> SmallDisk | None:
    """Mount a tmpfs, or an ext4 image on a loop device, at `path`; None if refused."""
    owner = f"uid={os.getuid()},gid={os.getgid()}"
    if kind == "tmpfs":
        options = f"size={mib}m,mode=0755,{owner}"
        if not _run(prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)):
            return None
        return SmallDisk(path, kind, prefix)
    if kind != "ext4":
        raise ValueError(f"unknown kind of small disk {kind!r}: tmpfs or ext4")
    image = Path(tempfile.mkstemp(prefix="small-disk-", suffix=".img")[1])
    try:
        os.truncate(image, mib * MIB)
        # No blocks reserved for root (the tests may run as root), one inode per 4 KiB.
        made = subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-m", "0", "-i", "4096", str(image)],
            capture_output=True,
            check=False,
        )
        attached = subprocess.run(
            [*prefix, "losetup", "--find", "--show", str(image)],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        image.unlink()  # the loop device keeps the image's blocks until it is detached
    device = attached.stdout.strip()
    if made.returncode != 0 or attached.returncode != 0 or not device:
        return None
    if not _run(prefix, "mount", "-o", "errors=remount-ro", device, str(path)):
        _run(prefix, "losetup", "--detach", device)
        return None
    _run(prefix, "chown", f"{os.getuid()}:{os.getgid()}", str(path))
    return SmallDisk(path, kind, prefix, device)


def _unmount(disk: SmallDisk) -> None:
    """Unmount the disk (lazily, if a process still holds a file there) and free its device."""
    if not _run(disk.prefix, "umount", str(disk.path)):
        _run(disk.prefix, "umount", "--lazy", str(disk.path))
    if disk.device is not None:
        _run(disk.prefix, "losetup", "--detach", disk.device)


@contextmanager
def read_only_folder(path: Path) -> Iterator[bool]:
    """The folder bound read-only over itself for the block, its files as they were; whether
    that could be done (False: no mounting here). Unbound in the end."""
    prefix = mount_prefix()
    if prefix is None or not _run(prefix, "mount", "--bind", str(path), str(path)):
        yield False
        return
    try:
        bound = _run(prefix, "mount", "-o", "remount,bind,ro", str(path))
        yield bound
    finally:
        if not _run(prefix, "umount", str(path)):
            _run(prefix, "umount", "--lazy", str(path))
