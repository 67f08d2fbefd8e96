"""State files: named float arrays in an .npz archive, written atomically and read back only after checks.

    write_arrays(path, "tfstate-state-v2", {"rnn_state/c": c, "rnn_state/h": h})
    arrays = read_arrays(path, "tfstate-state-v2", {"rnn_state/c": [None, 256], "rnn_state/h": [None, 256]})

Reading checks, before any array data is read or decompressed: the file is a zip archive, its
format entry says `format`, it holds exactly the expected names, and every array's header
declares a float dtype, a shape that fits the expected one and a size that the archive member
really has. Nothing is ever unpickled.
"""

import io
import zipfile
import zlib

import numpy as np

from tfstate._files import atomic_writer

FORMAT_KEY = "__tfstate_format__"
_MAX_HEADER = 65536  # bytes: an .npy header is a few hundred


_KIND_NAMES = {"f": "a float", "i": "an integer", "u": "an unsigned integer"}


class StateFileError(ValueError):
    """A state file that cannot be read, or does not match what it is loaded into (the message says why)."""


def write_arrays(path, format_name, arrays):
    """Writes `{name: array}` and the format entry to `path` (an .npz), atomically."""
    with atomic_writer(path, binary=True) as file:
        np.savez(file, **{FORMAT_KEY: np.array(format_name)}, **arrays)


def _read_member(archive, info, path, size=-1):
    """The first `size` bytes (all by default) of the member `info`; a damaged member is a StateFileError."""
    try:
        with archive.open(info) as member:
            return member.read(size)
    except (OSError, zipfile.BadZipFile, EOFError, zlib.error) as error:
        raise StateFileError(f"{path}: '{info.filename[:-4]}' cannot be read: {error}; the file is damaged.") from None


def _header(archive, info, path):
    """(shape, fortran_order, dtype, header bytes) of the .npy member `info`, read without its data."""
    start = io.BytesIO(_read_member(archive, info, path, min(info.file_size, _MAX_HEADER)))
    try:
        version = np.lib.format.read_magic(start)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read(start)
    except (ValueError, SyntaxError, TypeError) as error:
        raise StateFileError(f"{path}: entry '{info.filename[:-4]}' is not a readable .npy array ({error}).") from None
    return shape, fortran_order, dtype, start.tell()


def _check_format(archive, infos, path, formats):
    info = infos.get(FORMAT_KEY)
    if info is None:
        raise StateFileError(f"{path} is not a tfstate state file: it has no '{FORMAT_KEY}' entry.")
    shape, _, dtype, header = _header(archive, info, path)
    if dtype.kind != "U" or shape != () or info.file_size - header > 4 * 256:
        raise StateFileError(
            f"{path}: the '{FORMAT_KEY}' entry must be a short string; got {dtype} of shape {list(shape)}."
        )
    found = str(np.lib.format.read_array(io.BytesIO(_read_member(archive, info, path)), allow_pickle=False))
    if found not in formats:
        raise StateFileError(f"{path} is a '{found}' file; this reads {' or '.join(map(repr, formats))}.")
    return found


def read_format(path, formats):
    """The format entry of the state file `path`, which must be one of `formats`."""
    with _open(path) as archive:
        return _check_format(archive, _members(archive, path), path, formats)


def _open(path):
    try:
        return zipfile.ZipFile(path)
    except FileNotFoundError:
        raise StateFileError(f"{path}: no such file.") from None
    except (OSError, zipfile.BadZipFile, EOFError) as error:
        raise StateFileError(f"{path} is not a tfstate state file (an .npz archive): {error}.") from None


def _members(archive, path):
    infos = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise StateFileError(f"{path}: unexpected entry '{info.filename}' (a state file holds .npy arrays only).")
        infos[info.filename[:-4]] = info
    return infos


def read_arrays(path, format_name, expected, kinds=None):
    """Reads the arrays of a `write_arrays` file; `expected` maps each name to its shape (None: any size).

    `kinds` maps names to the NumPy dtype kinds they may have ("i" int, "u" unsigned int); every
    other array must be float. Object arrays are never accepted.

    Raises:
      StateFileError: the file is unreadable, of another format, or its names, dtypes or shapes
        are not the expected ones (checked before any array data is read).
    """
    with _open(path) as archive:
        infos = _members(archive, path)
        _check_format(archive, infos, path, [format_name])
        names = set(infos) - {FORMAT_KEY}
        if names != set(expected):
            raise StateFileError(
                f"{path} does not match the state it is loaded into: missing {sorted(set(expected) - names)}, "
                f"unexpected {sorted(names - set(expected))}."
            )
        headers = {}
        for name, want in expected.items():
            info = infos[name]
            shape, fortran_order, dtype, header = _header(archive, info, path)
            fits = len(shape) == len(want) and all(w is None or w == s for w, s in zip(want, shape))
            kind = (kinds or {}).get(name, "f")
            if dtype.kind != kind or dtype.hasobject or not fits:
                shown = "[" + ", ".join("rows" if w is None else str(w) for w in want) + "]"
                raise StateFileError(
                    f"{path}: '{name}' must be {_KIND_NAMES[kind]} array of shape {shown}; "
                    f"the file declares {dtype} of shape {list(shape)}."
                )
            size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if info.file_size != header + size:
                raise StateFileError(
                    f"{path}: '{name}' declares shape {list(shape)} ({size} bytes) but holds "
                    f"{info.file_size - header} bytes; the file is damaged."
                )
            headers[name] = (shape, fortran_order, dtype, header)
        arrays = {}
        for name, (shape, fortran_order, dtype, header) in headers.items():
            data = memoryview(_read_member(archive, infos[name], path))[header:]
            arrays[name] = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C").copy()
        return arrays
