"""Atomic file writes: a crash or an error never leaves a half-written file behind.

    with atomic_writer("state.npz", binary=True) as file:    # a temporary file beside the target
        file.write(data)                                     # flushed and fsynced, then renamed over it

A symlink as the target is written through (the link stays, its target is replaced). The file
keeps the mode of the file it replaces (or gets the umask's default) without setuid, setgid or
sticky bits. Temporary files left by a writer that crashed are removed on the next write.
"""

import contextlib
import errno
import glob
import os
import tempfile

_SUFFIX = ".tfstate-tmp"


def _umask():
    """The process umask, read without changing it (changing it races with other threads' file creation)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o022)  # no /proc: the classic read-and-restore
    os.umask(umask)
    return umask


def default_permissions(path):
    """Mode bits for a file written to `path`: the existing file's (no special bits), else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_orphans(directory, base):
    """Removes temporary files for `base` whose writer process no longer exists."""
    for orphan in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(base)}.*{_SUFFIX}")):
        pid = os.path.basename(orphan)[len(base) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            with contextlib.suppress(OSError):
                os.unlink(orphan)


@contextlib.contextmanager
def atomic_writer(path, binary=False, encoding=None, newline=None, permissions=None):
    """Yields a temporary file beside `path`; when the block succeeds it replaces `path`, else it is removed.

    `permissions` (mode bits) are given to the file before it takes `path`'s place; by default
    those of `default_permissions(path)`. The data is flushed to disk first, so a crash cannot
    leave a truncated file under `path` either.

    Raises:
      FileNotFoundError: `path`'s folder does not exist (the message names `path`).
    """
    target = os.path.realpath(path)  # a symlink is written through, not replaced
    directory, base = os.path.split(target)
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path}: no such folder", directory)
    if permissions is None:
        permissions = default_permissions(target)
    _remove_orphans(directory, base)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{base}.{os.getpid()}.", suffix=_SUFFIX)
    try:
        with os.fdopen(handle, "wb" if binary else "w", encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, permissions & 0o777)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
