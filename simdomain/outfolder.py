"""Output folders: checked, locked, and replaced whole.

Every command that writes results goes through :func:`open_folder`::

    with open_folder(out, "run") as folder:      # checks the path, takes the lock
        result = simulate(...)                   # the work, the lock held
        with folder.stage() as scratch:          # an empty folder beside ``out``
            write_result(result, scratch)        # write every file here
        # leaving the block swaps scratch in for ``out`` in one step

So a folder always holds one command's outputs, complete: a killed process (even by
``kill -9``) leaves the old folder or the new one, never a mix. Experiments, which
write part files as they go, write in place instead (:meth:`OutputFolder.in_place`)
and hold the lock for their whole run.

- **Checks.** ``--out`` naming a file, a path below a file, a folder that cannot be
  written, the working folder (or one above it), or a folder holding files that
  simdomain did not write is refused with :class:`~simdomain.errors.InputError`.
- **Lock.** ``PARENT/.NAME.lock`` holds the writer's pid under an ``flock``. The
  kernel drops the lock when its process ends, however it ends, so a lock left by a
  dead process is taken over at once. A second writer is refused at once, with the
  folder and the holder's pid.
- **Swap.** On Linux ``renameat2(RENAME_EXCHANGE)`` exchanges the old and new folders
  atomically; elsewhere two renames, and the next writer restores the old folder if a
  process died between them. Scratch folders (``PARENT/.NAME.staging-*``) left by
  killed processes are removed by the next writer.
- **Marker.** Each folder holds ``.simdomain.json`` listing the entries its writer
  made; only those (or, in folders of older versions, the names simdomain writes) are
  ever deleted.
- **Names.** :func:`default_out` and :func:`slug` turn user text (scenario, variant,
  channel, experiment names) into folder and file names that cannot leave the folder.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import unicodedata
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from simdomain.errors import InputError, Problem

MARKER = ".simdomain.json"
"""The file in each output folder that lists what its writer made."""
MAX_NAME = 100
"""Longest user name (in characters) used as a folder name."""
_KNOWN = re.compile(
    r"^(daily\.csv|channels\.csv|monthly\.csv|targets\.csv|summary\.json|agents\.parquet|"
    r"scenario\.resolved\.yaml|comparison\.csv|variants|plan\.csv|plan\.xlsx|plan\.json|"
    r"diagnostics\.json|diagnosis\.txt|report\.html|figures|manifest\.json|summary\.csv|"
    r"sensitivity\.csv|"
    r"experiment\.resolved\.yaml|part-\d{6}\.parquet|report\.md|channel_value\.csv|"
    r"value_check\.csv|metrics\.csv|calibration\.csv|channel_calibration\.csv|rates\.yaml|"
    r"rates\.csv|targeting\.csv|targeting_per_rep\.csv|models\.joblib|scenario\.yaml|"
    r"population\.parquet|parameters\.parquet|estimates\.csv|cleaning\.txt|rejects\.csv|"
    r"calibration\.html|customers\.csv|backtest\.json|origins\.csv|cutoff-[\d-]+|\.staging-.*|"
    + re.escape(MARKER) + r")$")
"""Names simdomain writes: what a folder without a marker may hold and still be replaced."""
_HELD: dict[Path, OutputFolder] = {}


def _refuse(where: str | Path, message: str) -> InputError:
    return InputError([Problem(str(where), (), message)])


def check_name(text: str, *, what: str = "name", source: str = "") -> str:
    """``text`` if it can name one folder or file, else :class:`InputError`.

    Refused: empty names, ``.`` and ``..``, path separators, NUL and other control
    characters, and names longer than :data:`MAX_NAME` characters.
    """
    problem = None
    if not text.strip():
        problem = "is empty"
    elif text in {".", ".."} or text.strip(" .") == "":
        problem = f"{text!r} is not a name"
    elif "/" in text or "\\" in text:
        problem = "has a path separator (/ or \\)"
    elif any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in text):
        problem = "has a control character (NUL, newline, ...)"
    elif len(text) > MAX_NAME:
        problem = f"is {len(text)} characters long (at most {MAX_NAME})"
    if problem is not None:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise _refuse(source or what, f"{what} {shown!r} cannot name an output folder: "
                                      f"{problem}; rename it or give --out")
    return text


def slug(text: str, max_len: int = 60) -> str:
    """A file-name-safe form of ``text``: letters (any script), digits, ``-`` and ``_``.

    Anything else becomes ``_``; when that changed ``text`` or it was cut to
    ``max_len``, a short hash of the original keeps distinct names distinct. Never
    empty, never ``.`` or ``..``, never a separator.
    """
    safe = "".join(c if (c.isalnum() or c in "-_") and c.isprintable() else "_" for c in text)
    if safe == text and 0 < len(safe) <= max_len:
        return safe
    digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe[:max_len - 9]}-{digest}" if safe.strip("_") else digest


def default_out(name: str, *, prefix: str = "", suffix: str = "", source: str = "") -> Path:
    """``out/PREFIX NAME SUFFIX``: the default output folder for a user-chosen ``name``.

    ``name`` (a scenario's or an experiment's) is checked with :func:`check_name`:
    spaces and other scripts are kept; separators, ``..``, control characters and
    over-long names are refused, naming ``source``.
    """
    check_name(name, what="name", source=source)
    return Path("out") / f"{prefix}{name}{suffix}"


class OutputFolder:
    """One output folder held by this process (from :func:`open_folder`).

    Attributes
    ----------
    path
        The folder (absolute, symlinks resolved).
    command
        The command writing it, recorded in the marker.
    """

    def __init__(self, path: Path, command: str, shown: str = "") -> None:
        self.path = path
        self.command = command
        self.shown = shown or str(path)
        """The folder as the user wrote it, for messages."""
        self._lock_path = path.parent / f".{path.name}.lock"
        self._fd: int | None = None
        self._created: list[Path] = []
        self._made_in_place = False
        self.depth = 0

    # -- the lock ---------------------------------------------------------------------

    def _acquire(self) -> None:
        import fcntl

        for _ in range(10):
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise _unwritable(self.path.parent, exc) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise _refuse(self.shown, f"is being written by another simdomain process "
                                         f"(pid {holder}); wait for it to finish or choose "
                                         "another --out") from None
            try:  # the file may have been unlinked by a holder releasing it: retry
                same = os.path.samestat(os.fstat(fd), os.stat(self._lock_path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - ten releases in a row between open and flock
            raise _refuse(self.shown, "could not take the folder's lock; try again")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self._lock_path)  # while still holding it (see _acquire)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    # -- what the folder holds --------------------------------------------------------

    def entries(self) -> list[str]:
        """Names in the folder now (without the marker)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name != MARKER)

    def _own(self) -> set[str]:
        marker = self.path / MARKER
        try:
            listed = json.loads(marker.read_text(encoding="utf-8")).get("files", [])
            return {str(name) for name in listed}
        except (OSError, ValueError, AttributeError):
            return set()

    def check_replaceable(self, keep: Collection[str] = ()) -> None:
        """Refuse if replacing the folder would delete an entry simdomain did not write."""
        own = self._own()
        foreign = [n for n in self.entries() if n not in keep and n not in own
                   and not _KNOWN.match(n)]
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise _refuse(self.shown, f"holds files simdomain did not write ({shown}); "
                                     "they would be deleted: choose another --out, or move "
                                     "them away")

    # -- writing ----------------------------------------------------------------------

    @contextmanager
    def stage(self, keep: Collection[str] = ()) -> Iterator[Path]:
        """An empty scratch folder that replaces the output folder when the block ends.

        Parameters
        ----------
        keep
            Entries of the current folder to carry into the new one (as hard links,
            so write new files rather than into carried ones). Everything else in the
            old folder goes.

        If the block raises, the output folder is left as it was.
        """
        self.check_replaceable(keep)
        scratch = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.staging-",
                                        dir=self.path.parent))
        try:
            os.chmod(scratch, 0o777 & ~_umask())  # as mkdir would have made it
            for name in keep:
                if (self.path / name).exists():
                    _link_tree(self.path / name, scratch / name)
            yield scratch
            names = sorted(p.name for p in scratch.iterdir() if p.name != MARKER)
            _write_marker(scratch, self.command, names)
            self._swap(scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)  # after a swap: the old folder

    def in_place(self) -> Path:
        """Create the folder if needed for writing in place (experiments); return it.

        The folder must be new, empty, or already an experiment's (holding
        ``manifest.json``). If the command then fails having written nothing, the
        folder it created is removed again.
        """
        entries = self.entries()
        if entries and "manifest.json" not in entries:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise _refuse(self.shown, f"holds other files ({shown}), not an experiment's "
                                     "results; choose another --out")
        if not self.path.is_dir():
            self._mkdir(self.path)
            self._made_in_place = True
        _write_marker(self.path, self.command, None)
        return self.path

    def _swap(self, new: Path) -> None:
        if not os.path.lexists(self.path):
            os.rename(new, self.path)
            new.mkdir()  # so the caller's cleanup finds what it expects
        elif not _exchange(new, self.path):
            old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
            os.rename(self.path, old)
            os.rename(new, self.path)
            os.rename(old, new)
        _fsync_dir(self.path.parent)

    def _recover(self) -> None:
        """Under the lock: put back a folder moved aside by a process killed mid-swap,
        and remove scratch folders of killed processes."""
        pattern = re.compile(rf"^\.{re.escape(self.path.name)}\.(staging|old)-\w+$")
        leftovers = [p for p in self.path.parent.iterdir() if pattern.match(p.name)]
        for old in leftovers:
            if ".old-" in old.name and not os.path.lexists(self.path):
                os.rename(old, self.path)
            else:
                shutil.rmtree(old, ignore_errors=True)

    def _mkdir(self, path: Path) -> None:
        missing = [p for p in [path, *path.parents] if not os.path.lexists(p)]
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise _unwritable(folder.parent, exc) from None
            self._created.append(folder)

    def _abandon(self) -> None:
        """After a failure: remove what this process created and left empty."""
        if self._made_in_place and self.entries() == []:
            (self.path / MARKER).unlink(missing_ok=True)
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break


@contextmanager
def open_folder(out: str | Path, command: str, *,
                replace: bool = True) -> Iterator[OutputFolder]:
    """Check ``out``, take its lock and yield it; release the lock when the block ends.

    With ``replace`` (commands that write a whole folder), a folder holding files
    simdomain did not write is refused now rather than after the work.

    Re-entrant: opening a folder this process already holds yields the same
    :class:`OutputFolder`. If the block raises, the missing parent folders created for
    it are removed again.

    Raises
    ------
    InputError
        ``out`` is a file, below a file, not writable, the working folder (or above
        it), or is being written by another process.
    """
    path = check_out(out)
    held = _HELD.get(path)
    if held is not None:
        held.depth += 1
        try:
            yield held
        finally:
            held.depth -= 1
        return
    folder = OutputFolder(path, command, os.fspath(out))
    ok = False
    try:
        folder._mkdir(path.parent)
        folder._acquire()
        _HELD[path] = folder
        folder._recover()
        if replace:
            folder.check_replaceable()
        yield folder
        ok = True
    finally:
        _HELD.pop(path, None)
        folder._release()
        if not ok:
            folder._abandon()


def check_out(out: str | Path) -> Path:
    """``out`` as an absolute path, or :class:`InputError` if it cannot be an output folder."""
    text = os.fspath(out)
    if not text.strip():
        raise _refuse("--out", "is empty; give a folder")
    if "\x00" in text:
        raise _refuse("--out", "has a NUL character")
    path = Path(os.path.realpath(Path(text).expanduser()))
    if path.parent == path:
        raise _refuse(path, "is the root of the file system; give a folder below it")
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise _refuse(text, "is the working folder or one above it; give a folder for the "
                            "outputs, e.g. out/NAME")
    for part in path.parts:
        if len(os.fsencode(part)) > 255:
            raise _refuse(text, f"has a name of {len(os.fsencode(part))} bytes "
                                "(at most 255)")
    for parent in [path, *path.parents]:
        if os.path.lexists(parent):
            if not parent.is_dir():
                where = "is a file" if parent == path else f"is below {parent}, a file"
                raise _refuse(text, f"{where}; --out needs a folder")
            break
    return path


def _unwritable(folder: Path, exc: OSError) -> InputError:
    reason = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
              errno.EROFS: "read-only file system", errno.ENOSPC: "no space left",
              errno.ENOTDIR: "a part of it is a file"}.get(exc.errno or 0, exc.strerror)
    return _refuse(folder, f"cannot write here ({reason}); choose another --out")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_marker(folder: Path, command: str, files: list[str] | None) -> None:
    marker = {"command": command, "pid": os.getpid(),
              "written_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "files": files if files is not None else "written in place"}
    try:
        (folder / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _unwritable(folder, exc) from None


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link ``source`` (a file or a folder tree) at ``target``; copy across devices."""
    if source.is_dir() and not source.is_symlink():
        target.mkdir()
        for child in source.iterdir():
            _link_tree(child, target / child.name)
        return
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); ``False`` where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
