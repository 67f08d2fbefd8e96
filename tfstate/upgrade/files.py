"""Reading a program and writing its upgrade safely.

Reading: regular files only (a FIFO or /dev/zero is refused before anything is read), at most
MAX_INPUT_BYTES, decoded by its coding cookie with its line endings kept. Writing: atomically (a temporary
file renamed over the target), through symlinks to the file they point at (the link stays a link), with the
target's permission bits (or the input's for a new file) but never setuid, setgid or sticky.
"""

import io
import os
import stat
import tokenize

from tfstate._files import atomic_writer
from tfstate.upgrade.errors import UpgradeError
from tfstate.upgrade.source import MAX_INPUT_CHARS, upgrade_source

MAX_INPUT_BYTES = MAX_INPUT_CHARS


def read_program(path):
    """(text, encoding) of the Python file `path`, honouring its coding cookie and keeping its line endings."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # opening a FIFO must not wait for a writer
    except OSError as error:
        raise UpgradeError(f"{path}: cannot read it ({error.strerror or error}).") from None
    mode = os.fstat(handle).st_mode
    if not stat.S_ISREG(mode):
        os.close(handle)
        raise UpgradeError(
            f"{path}: not a regular file ({_kind(mode)}); tfstate upgrade reads Python source files only."
        )
    with os.fdopen(handle, "rb") as file:
        data = file.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise UpgradeError(
            f"{path}: larger than {MAX_INPUT_BYTES} bytes (4 MiB), the most tfstate upgrade reads; "
            "split the program into modules of up to 4 MiB and upgrade each."
        )
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (SyntaxError, LookupError, UnicodeDecodeError) as error:
        raise UpgradeError(f"{path}: cannot read it as Python source ({error}).") from None


def _kind(mode):
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def write_text(path, text, encoding, mode_from=None):
    """Writes `text` to `path` atomically; see the module docstring for symlinks and permissions.

    The file gets the permission bits of the existing target, else of `mode_from`, else the umask's.
    """
    target = os.path.realpath(path)
    source = target if os.path.exists(target) else mode_from
    if source is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    else:
        mode = stat.S_IMODE(os.stat(source).st_mode) & 0o777  # never setuid, setgid or sticky
    with atomic_writer(target, encoding=encoding, newline="", permissions=mode) as file:
        file.write(text)


def same_file(a, b):
    """Whether the paths `a` and `b` name one file (after symlinks; hard links too)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def upgrade_file(in_path, out_path):
    """Upgrades the file `in_path` into `out_path` (the same path upgrades in place); returns the report.

    Raises:
        UpgradeError: the input cannot be read, parsed or upgraded; `out_path` is left untouched.
        OSError: `out_path` cannot be written; it is left untouched.
    """
    text, encoding = read_program(in_path)
    new_text, report = upgrade_source(text, in_path)
    write_text(out_path, new_text, encoding, mode_from=in_path)
    return report
