"""Writing outputs safely: checked before any work (never over an input, never into a dangling link or a
read-only place), built under a temporary name and renamed at the end, folders a command keeps writing
locked. Every command writes through here."""
from __future__ import annotations

import ctypes
import ctypes.util
import errno
import io
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from vid2act.errors import UsageError, Vid2ActError


STDIO = "-"


NAME_MAX = 255  # bytes in one path component, on every common file system


_UMASK = os.umask(0)


os.umask(_UMASK)


# --- outputs: checked before any work ----------------------------------------------------------------
def check_can_write(path: Path, force: bool) -> None:
    """Refuse, before any work, an output that exists (a dangling symlink included) without `force`, that is
    standard output where a command writes a file or folder, or whose folder cannot be made (a file or a
    dangling symlink in the way) or written (read-only)."""
    path = Path(path)
    check_writable_place(path)
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} already exists; pass --force to replace it, or choose another --out")


def check_writable_place(path: Path) -> None:
    """The place of an output, `path` itself aside: not standard output, a name short enough for its temporary
    twin, and a nearest existing folder above it that is a folder (not a file, not a dangling symlink) and
    writable. Every command's outputs go through it, runs and datasets too."""
    path = Path(path)
    if str(path) == STDIO:
        raise UsageError("--out -: this command writes a file or folder, not standard output; give a path")
    if len(os.fsencode(path.name)) > NAME_MAX - len(".XXXXXXXX.tmp.old") - 1:  # its temporary twin must fit too
        raise UsageError(f"cannot write {path}: its name is {len(os.fsencode(path.name))} bytes, longer than this "
                         f"file system allows ({NAME_MAX}, less the temporary suffix); choose a shorter --out")
    for parent in path.absolute().parents:
        if not os.path.lexists(parent):
            continue
        if not parent.exists():
            raise UsageError(f"cannot write {path}: {parent} is a symbolic link to {os.readlink(parent)}, which "
                             "does not exist; make its target or choose another --out")
        if not parent.is_dir():
            raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")
        try:  # a real file made and removed: permissions, read-only mounts and odd file systems all show
            fd, probe = tempfile.mkstemp(prefix=".vid2act-probe.", dir=parent)
            os.close(fd)
            os.unlink(probe)
        except OSError as e:
            raise Vid2ActError(f"cannot write {path}: {parent} is not writable here ({e.strerror}); check its "
                               "permissions, or choose another --out") from None
        break


def check_apart(outputs: dict, inputs: dict) -> None:
    """Refuse, before any work, an output that is, holds or lies inside one of the command's inputs (writing it,
    or replacing it with --force, would destroy that input), and outputs that overlap one another. Both map an
    option's name to its path (None, "" and "-" are skipped); symbolic links are followed."""
    def named(paths: dict):
        return [(name, Path(p), Path(os.path.realpath(p))) for name, p in paths.items()
                if p is not None and str(p) not in ("", STDIO)]

    outs = named(outputs)
    for name, out, full_out in outs:
        for input_name, source, full_in in named(inputs):
            relation = ("is" if full_out == full_in else "holds" if full_out in full_in.parents
                        else "lies inside" if full_in in full_out.parents else None)
            if relation:
                raise UsageError(f"{name} {out} {relation} the input {input_name} {source}: writing there would "
                                 f"destroy it; choose another {name}")
    for i, (name_a, a, full_a) in enumerate(outs):
        for name_b, b, full_b in outs[i + 1:]:
            if full_a == full_b or full_a in full_b.parents or full_b in full_a.parents:
                relation = "are the same path" if full_a == full_b else "lie one inside the other"
                raise UsageError(f"the outputs {a} and {b} {relation}; give each its own place")


def _rename_noreplace_call():
    """The kernel's rename that fails when the destination exists (Linux renameat2, macOS renamex_np), or None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    if hasattr(libc, "renameat2"):  # glibc >= 2.28, musl
        at_fdcwd, noreplace = -100, 1
        return lambda src, dst: libc.renameat2(at_fdcwd, src, at_fdcwd, dst, noreplace)
    if hasattr(libc, "renamex_np"):
        return lambda src, dst: libc.renamex_np(src, dst, 0x4)  # RENAME_EXCL
    return None


_RENAME_NOREPLACE = _rename_noreplace_call()


def rename_noreplace(src: Path, dst: Path) -> None:
    """Move `src` to `dst` only if nothing is at `dst`, in one step: of two commands writing the same output,
    exactly one wins and the other gets FileExistsError."""
    if _RENAME_NOREPLACE is not None:
        if _RENAME_NOREPLACE(os.fsencode(src), os.fsencode(dst)) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(dst))
    # no such call (or the file system lacks it): a hard link for files, a check for folders
    if Path(src).is_dir():
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
        os.rename(src, dst)
    else:
        os.link(src, dst)
        os.unlink(src)


LOCK_FILE = ".lock"  # inside a folder a command keeps writing (a dataset, a training run): held with flock


def lock_folder(folder: Path, command: str):
    """Create `folder` if needed and lock it for this process (an open file; closing it, or the process
    ending in any way, releases the lock). Another process holding it: refused, exit 2."""
    import fcntl
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = open(folder / LOCK_FILE, "a+")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise UsageError(f"another vid2act {command} is writing {folder}; wait for it to finish or stop it") from None
    return lock


def clear_folder(folder: Path) -> None:
    """Delete what `folder` holds except its lock (which this process holds): --force under a lock."""
    for item in Path(folder).iterdir():
        if item.name != LOCK_FILE:
            shutil.rmtree(item) if item.is_dir() and not item.is_symlink() else item.unlink()


def _appeared(path: Path) -> UsageError:
    return UsageError(f"{path} already exists (it appeared while this command ran: is another one writing it?); "
                      "pass --force to replace it, or choose another --out")


def write_bytes(path: Path, data: bytes, replace: bool = True) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename; with `replace` False
    the rename fails if `path` appeared meanwhile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; outputs get the usual permissions
        if replace:
            os.replace(tmp, path)
        else:
            try:
                rename_noreplace(Path(tmp), path)
            except FileExistsError:
                raise _appeared(path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, document: dict) -> None:
    write_bytes(path, dumps(document).encode())


def write_npz(path: Path, arrays: dict) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_bytes(path, buffer.getvalue())


@contextmanager
def output_dir(path: Path, force: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success it takes `path`'s name in one rename, on
    failure it disappears, so a reader never sees a half-written output. Without `force` the rename never
    replaces what appeared at `path` meanwhile."""
    path = Path(path)
    check_can_write(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        if force:
            replace_path(tmp, path)
        else:
            try:
                rename_noreplace(tmp, path)
            except FileExistsError:
                raise _appeared(path) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_path(new: Path, path: Path) -> None:
    """Move the file or folder `new` to `path`, replacing what is there. A folder in the way is renamed aside
    and deleted only after `new` has its name: a kill -9 in between (a checkpoint being replaced) leaves the
    old folder on disk instead of neither."""
    if path.is_dir() and not path.is_symlink():
        old = new.with_name(new.name + ".old")
        os.replace(path, old)
        os.replace(new, path)
        shutil.rmtree(old)
        return
    if new.is_dir() and (path.exists() or path.is_symlink()):
        path.unlink()  # a folder cannot be renamed onto a file
    os.replace(new, path)


def recover_leftovers(folder: Path) -> list[str]:
    """What a writer killed mid-way left in `folder` (which the caller has locked, so no writer is alive):
    an output being staged (`.NAME.xxxxxxxx.tmp`) is deleted; an old output set aside while its
    replacement took its name (`.NAME.xxxxxxxx.tmp.old`) is put back if NAME is missing (killed between
    the two renames), else deleted. Returns the names it dealt with."""
    import re
    staged = re.compile(r"^\.(?P<name>.+)\.[A-Za-z0-9_]{8}\.tmp(?P<old>\.old)?$")
    dealt = []
    for entry in sorted(Path(folder).iterdir()):
        match = staged.match(entry.name)
        if match is None:
            continue
        target = entry.with_name(match["name"])
        if match["old"] and not (target.exists() or target.is_symlink()):
            os.replace(entry, target)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
        dealt.append(entry.name)
    return dealt
