"""Atomic file writes: a crash or an error never leaves a half-written file behind."""

import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_writer(path, binary=False, encoding=None, newline=None, permissions=None):
    """Yields a temporary file beside `path`; when the block succeeds it replaces `path`, else it is removed.

    `permissions` (mode bits) are given to the file before it takes `path`'s place. The data is
    flushed to disk first, so a crash cannot leave a truncated file under `path` either.
    """
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".tfstate-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb" if binary else "w", encoding=encoding, newline=newline) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        if permissions is not None:
            os.chmod(temporary, permissions)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
