"""tfstate's compiled LSTM and GRU kernels: built here at first use, cached privately.

Each kernel runs a whole chunk in one TensorFlow op: per step register-blocked matmuls of
`[x, h]` with the gate maths fused in (the LSTM one, the GRU two: gates, then candidate), the
hidden units split across the cores (`lstm_recurrence.h`, `gru_recurrence.h` on `kernel_base.h`).
A third runs the reverse loop of the LSTM's gradient (`lstm_gradient.h`). The ops are
`lstm_kernel.cc`, `gru_kernel.cc` and `lstm_gradient_kernel.cc` (on `kernel_op.h`). One source
serves every CPU; it is compiled as one of three variants, the fastest this CPU runs:

    "avx512"    x86-64 with AVX-512F          -mavx512f -mfma   (16 floats per vector)
    "avx2"      x86-64 with AVX2 and FMA      -mavx2 -mfma      (8)
    "portable"  any CPU (aarch64, older x86)  the compiler's baseline, -march=x86-64 on x86 (4: SSE2, NEON)

`TFSTATE_NATIVE_ISA=avx512|avx2|portable` forces a variant (one this CPU runs); each variant
registers its own ops (`TfstateLstmSequenceAvx2`, `TfstateGruSequenceAvx2`, ...), so several can
be loaded in one process. A variant is compiled with the system's C++ compiler against the installed TensorFlow
(`tf.sysconfig`) and kept in `$TFSTATE_CACHE_DIR` (default `~/.cache/tfstate`) as
`lstm_kernel-<variant>-<build key>-<SHA-256 of the file>.so`; the build key covers the sources,
TensorFlow's version, the compiler and the flags. A library is only loaded from a folder that
belongs to this user and that nobody else can write (nor any folder above it, unless sticky like
/tmp), and only if it is a regular file of this user's, writable by no one else, whose content
matches the SHA-256 in its name. Where the cache folder fails those checks the kernel is built
in a private temporary folder for this process only (and a warning says why). A cached library
that does not load, or lacks its op, is deleted and rebuilt; the rebuild has another name, so it
is really loaded. Where the kernel cannot be used the fused cells use their XLA path; `status()`
says why. `TFSTATE_NATIVE=0` turns it off; `TFSTATE_NATIVE_THREADS=N` fixes its thread count
(default: one per core, one thread below ~1 MFLOP per step).
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import threading
from typing import NamedTuple

import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from tfstate._files import atomic_writer

_HERE = os.path.dirname(os.path.abspath(__file__))
_OP_SOURCES = tuple(
    os.path.join(_HERE, name) for name in ("lstm_kernel.cc", "gru_kernel.cc", "lstm_gradient_kernel.cc")
)
_SOURCES = _OP_SOURCES + tuple(
    os.path.join(_HERE, name)
    for name in ("kernel_op.h", "kernel_base.h", "lstm_recurrence.h", "gru_recurrence.h", "lstm_gradient.h")
)
# each op's name, before the variant's suffix
_OPS = {"lstm": "TfstateLstmSequence", "gru": "TfstateGruSequence", "lstm_gradient": "TfstateLstmGradient"}


class _Variant(NamedTuple):
    needs: tuple  # the CPU flags it needs (x86-64)
    flags: tuple  # its compiler flags on x86-64 (elsewhere: none, the compiler's baseline)
    suffix: str  # ends the names of the ops it registers


_VARIANTS = {  # fastest first
    "avx512": _Variant(("avx512f", "avx2", "fma"), ("-mavx512f", "-mfma"), "Avx512"),
    "avx2": _Variant(("avx2", "fma"), ("-mavx2", "-mfma"), "Avx2"),
    "portable": _Variant((), ("-march=x86-64",), "Portable"),
}


def op_type(kind, name):
    """The type of variant `name`'s op for `kind` (a key of `_OPS`) as graphs show it: e.g. `TfstateGruSequenceAvx2`."""
    return _OPS[kind] + _VARIANTS[name].suffix


_log = logging.getLogger("tfstate")
_lock = threading.Lock()  # one build and load at a time


class NativeUnavailableError(RuntimeError):
    """The compiled kernel cannot be used here (the message says why)."""


@functools.cache
def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def _x86():
    return platform.machine() in ("x86_64", "AMD64")


def variants() -> tuple[str, ...]:
    """The kernel variants this CPU runs, fastest first: e.g. `("avx512", "avx2", "portable")`."""
    return tuple(
        name
        for name, variant in _VARIANTS.items()
        if not variant.needs or (_x86() and _cpu_flags().issuperset(variant.needs))
    )


def variant() -> str:
    """The variant the fused cells use: `TFSTATE_NATIVE_ISA` when set, else the fastest this CPU runs.

    Raises NativeUnavailableError when `TFSTATE_NATIVE_ISA` names no variant, or one this CPU cannot run.
    """
    forced = os.environ.get("TFSTATE_NATIVE_ISA", "")
    if not forced:
        return variants()[0]
    if forced not in _VARIANTS:
        raise NativeUnavailableError(
            f"TFSTATE_NATIVE_ISA='{forced}' is not a kernel variant; expected one of "
            f"{', '.join(repr(name) for name in _VARIANTS)}, or unset for the fastest this CPU runs"
        )
    if forced not in variants():
        needs = ", ".join(_VARIANTS[forced].needs)
        raise NativeUnavailableError(
            f"TFSTATE_NATIVE_ISA='{forced}' needs an x86-64 CPU with {needs}; this CPU runs "
            f"{', '.join(repr(name) for name in variants())}"
        )
    return forced


def _compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class _Build(NamedTuple):
    """How a variant is compiled, and the key that names its cached files."""

    ops: dict  # {kind: the op's name}
    command: list  # the compiler command for one source, without the source and its output
    link: list  # what follows the objects when they are linked
    stem: str  # cached files are f"{stem}-{sha256 of the file}.so"

    @classmethod
    def of(cls, name, compiler):
        ops = {kind: op_type(kind, name) for kind in _OPS}
        command = [
            compiler,
            "-O3",
            *(_VARIANTS[name].flags if _x86() else ()),
            "-ffp-contract=fast",
            "-fvisibility=hidden",
            "-fPIC",
            "-pthread",
            f"-DTFSTATE_VARIANT={_VARIANTS[name].suffix}",
            *tf.sysconfig.get_compile_flags(),
        ]
        link = ["-shared", "-pthread", *tf.sysconfig.get_link_flags()]
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
        key = hashlib.sha256(tf.__version__.encode() + version.encode() + " ".join(command + link).encode())
        for source in _SOURCES:
            with open(source, "rb") as file:
                key.update(file.read())
        return cls(ops, command, link, f"lstm_kernel-{name}-{key.hexdigest()[:16]}")


def _not_private(path, info, kind):
    """Why `path` (with `info` from lstat or fstat) is not this user's own `kind`, writable only by them; or None."""
    if stat.S_ISLNK(info.st_mode):
        return f"'{path}' is a symbolic link"
    if not (stat.S_ISDIR if kind == "folder" else stat.S_ISREG)(info.st_mode):
        return f"'{path}' is not a {kind}"
    if info.st_uid != os.getuid():
        return f"'{path}' belongs to user id {info.st_uid}, not to this user ({os.getuid()})"
    if info.st_mode & 0o022:
        return f"'{path}' can be written by other users (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def _folder_problem(path):
    """Why kernels must not be loaded from folder `path`, or None.

    It must be this user's own folder (not a link), writable by no one else; every folder above
    it must belong to this user or root and be writable by no one else unless it is sticky (/tmp).
    """
    problem = _not_private(path, os.lstat(path), "folder")
    folder = os.path.realpath(os.path.dirname(path))
    while problem is None:
        info = os.stat(folder)
        if info.st_uid not in (0, os.getuid()) or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            return (
                f"'{folder}', above '{path}', can be changed by another user (owner {info.st_uid}, "
                f"mode {stat.S_IMODE(info.st_mode):04o})"
            )
        if folder == os.path.dirname(folder):
            break
        folder = os.path.dirname(folder)
    return problem


def _cache_folder():
    """`(folder, None)`: the user's private kernel cache (made if missing); or `(None, why it cannot be used)`."""
    folder = os.environ.get("TFSTATE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "tfstate"
    )
    folder = os.path.abspath(folder)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        problem = _folder_problem(folder)
    except OSError as error:
        problem = f"'{folder}' cannot be used ({error.strerror})"
    return (None, problem) if problem else (folder, None)


def _file_problem(path, digest):
    """Why the library at `path` must not be loaded, or None: this user's regular file, content hashing to `digest`."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        return f"'{path}' is a symbolic link" if error.errno == errno.ELOOP else f"'{path}': {error.strerror}"
    with os.fdopen(handle, "rb") as file:
        problem = _not_private(path, os.fstat(handle), "regular file")
        if problem is None and hashlib.sha256(file.read()).hexdigest() != digest:
            problem = f"the content of '{path}' does not match the SHA-256 in its name"
    return problem


def _remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _cached(folder, build):
    """The path of a verified build in the private `folder`, or None; entries failing the checks are removed."""
    prefix = build.stem + "-"
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(prefix) and entry.endswith(".so"):
            path = os.path.join(folder, entry)
            problem = _file_problem(path, entry[len(prefix) : -len(".so")])
            if problem is None:
                return path
            _log.warning("tfstate: not loading the cached kernel: %s; it is built again", problem)
            _remove(path)
    return None


def _store(folder, build, library):
    """Writes the built `library` into the private cache `folder` under its content's name; returns its path."""
    with open(library, "rb") as file:
        binary = file.read()
    path = os.path.join(folder, f"{build.stem}-{hashlib.sha256(binary).hexdigest()}.so")
    with atomic_writer(path, binary=True, permissions=0o755) as cached:
        cached.write(binary)
    return path


def _compile(build, scratch):
    """Compiles `build` into the private folder `scratch`; returns the library's path.

    One compiler process per source, all at once (the build's wall time is then the slowest source's).
    """
    objects = [os.path.join(scratch, os.path.basename(source) + ".o") for source in _OP_SOURCES]
    processes = [
        subprocess.Popen(
            [*build.command, "-c", source, "-o", output], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for source, output in zip(_OP_SOURCES, objects)
    ]
    failures = []
    for source, process in zip(_OP_SOURCES, processes):
        try:
            _, errors = process.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            process.kill()
            _, errors = process.communicate()
        if process.returncode != 0:
            failures.append(
                f"compiling {source} with {build.command[0]} failed (exit {process.returncode}):\n{errors[-2000:]}"
            )
    if failures:
        raise NativeUnavailableError(failures[0])
    library = os.path.join(scratch, "lstm_kernel.so")
    result = subprocess.run(
        [build.command[0], *objects, "-o", library, *build.link], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        raise NativeUnavailableError(
            f"linking {', '.join(objects)} with {build.command[0]} failed (exit {result.returncode}):\n"
            f"{result.stderr[-2000:]}"
        )
    return library


def _open(path, build):
    """`{kind: the op's Python function}` from the library at `path`; None when it does not load or lacks an op."""
    try:
        module = tf.load_op_library(path)
    except tf.errors.OpError as error:
        _log.warning("tfstate: TensorFlow could not load '%s': %s", path, error.message)
        return None
    ops = {
        kind: getattr(module, "".join("_" + char.lower() if char.isupper() else char for char in op).lstrip("_"), None)
        for kind, op in build.ops.items()
    }
    return None if None in ops.values() else ops


class _Kernel(NamedTuple):
    ops: dict  # {kind: the op's Python function}
    path: str | None  # the cached library it was loaded from; None when built for this process only
    not_cached: str | None  # why the cache was not used, or None


@functools.cache
def _load(name):
    """Variant `name` loaded (from the private cache, or built); raises NativeUnavailableError with the reason."""
    compiler = _compiler()
    if compiler is None:
        raise NativeUnavailableError("no C++ compiler found (set CXX, or install g++)")
    build = _Build.of(name, compiler)
    folder, not_cached = _cache_folder()
    path = _cached(folder, build) if folder else None
    if path is not None:
        ops = _open(path, build)
        if ops is not None:
            return _Kernel(ops, path, None)
        _log.warning(
            "tfstate: the cached kernel '%s' does not provide %s; it is built again",
            path,
            ", ".join(build.ops.values()),
        )
        _remove(path)
    with tempfile.TemporaryDirectory(prefix="tfstate-kernel-") as scratch:
        problem = _folder_problem(scratch)
        if problem is not None:
            raise NativeUnavailableError(f"no private folder to build it in: {problem}")
        path = _compile(build, scratch)
        if folder is not None:
            try:
                path = _store(folder, build, path)
            except OSError as error:
                not_cached = f"writing it into '{folder}' failed ({error.strerror})"
        if not_cached is not None:
            _log.warning("tfstate: the compiled LSTM kernel is built for this process only, not cached: %s", not_cached)
        ops = _open(path, build)  # a library stays loaded after its file is removed
    if ops is None:
        raise NativeUnavailableError(
            f"TensorFlow could not load the kernels it built from {', '.join(_OP_SOURCES)} "
            f"({', '.join(build.ops.values())})"
        )
    return _Kernel(ops, None if not_cached else path, not_cached)


@functools.cache
def _status(name):
    with _lock:
        try:
            _load(name)
        except NativeUnavailableError as error:
            _log.info("tfstate: the compiled LSTM kernel is not used: %s", error)
            return str(error)
        except Exception as error:
            _log.warning("tfstate: building the compiled LSTM kernel failed (%s); the XLA path is used", error)
            return f"building it failed: {error}"
    return None


def status() -> str | None:
    """`None` when the compiled kernel (of `variant()`) is ready, else the reason it is not. Builds it if needed."""
    if os.environ.get("TFSTATE_NATIVE", "1") == "0":
        return "TFSTATE_NATIVE=0 is set"
    if platform.system() != "Linux":
        return f"it is built and tested on Linux only; this is {platform.system()}"
    try:
        return _status(variant())
    except NativeUnavailableError as error:
        return str(error)


def unsupported_reason(dtype):
    """`None` when the compiled kernel can run an LSTM in `dtype` here, else why not.

    Any number of units works; multiples of the vector width (16, 8 or 4) use the registers fully.
    """
    if dtype != tf.float32:
        return f"it computes in float32; the inputs are {dtype.name}"
    return status()


def auto_reason(dtype):
    """`None` when the fused cells' implementation="auto" takes the compiled kernel for `dtype`, else why not.

    The portable variant measured slower than the XLA path (docs/benchmarks.md), so "auto" takes it
    only when `TFSTATE_NATIVE_ISA=portable` asks for it; `implementation="native"` always may.
    """
    reason = unsupported_reason(dtype)
    if reason is None and variant() == "portable" and os.environ.get("TFSTATE_NATIVE_ISA") != "portable":
        return "this CPU runs only the portable variant, which is slower than XLA (TFSTATE_NATIVE_ISA=portable uses it)"
    return reason


def kernel_arguments(peepholes, cell_clip, units, dtype):
    """`(wci, wcf, wco, cell_clip)` as TF's LSTMBlockCell/BlockLSTM kernels and tfstate's compiled one take them.

    Those kernels always take three peephole vectors and a float clip: zeros stand for no
    peepholes, and -1 for no clipping.
    """
    zeros = tf.zeros([units], dtype)
    w_i, w_f, w_o = peepholes or (zeros, zeros, zeros)
    return w_i, w_f, w_o, -1.0 if cell_clip is None else cell_clip


def _every_row_runs_every_step(sequence, time_major):
    """`[batch]` lengths that run every step of `sequence` (the kernels always take lengths)."""
    steps_axis, batch_axis = (0, 1) if time_major else (1, 0)
    return tf.fill(tf.shape(sequence)[batch_axis : batch_axis + 1], tf.shape(sequence)[steps_axis])


def lstm_sequence(
    inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias, cell_clip, resets=None, reset_state=None
):
    """The whole chunk through the compiled kernel: `(outputs, cell states, both like inputs, c, h)`.

    Same contract as `tfstate.fused.sequence.sequence`: `lengths` is None or `[batch]` int32, `peepholes`
    None or `(w_i, w_f, w_o)`, `cell_clip` None for no clipping, `resets` None or a time-major bool
    `[time, batch]` mask whose marked rows start that step from `reset_state` `(c, h)`.
    """
    units = h0.shape[-1]
    reason = unsupported_reason(inputs.dtype)
    if reason is not None:
        raise NativeUnavailableError(f"tfstate's compiled LSTM kernel cannot run this LSTM: {reason}.")
    lengths = _every_row_runs_every_step(inputs, time_major) if lengths is None else lengths
    if resets is None:  # empty: the op reads no reset values
        resets, reset_state = tf.zeros([0, 0], tf.bool), (tf.zeros([0, 0]), tf.zeros([0, 0]))
    w_i, w_f, w_o, clip = kernel_arguments(peepholes, cell_clip, units, tf.float32)
    outputs, c, h, cell_states, _ = _load(variant()).ops["lstm"](
        inputs,
        c0,
        h0,
        kernel,
        bias,
        w_i,
        w_f,
        w_o,
        lengths,
        resets,
        *reset_state,
        forget_bias=forget_bias,
        cell_clip=clip,
        use_peephole=peepholes is not None,
        time_major=time_major,
    )
    for sequence in (outputs, cell_states):
        sequence.set_shape(inputs.shape[:2].concatenate([units]))
    c.set_shape(c0.shape)
    h.set_shape(h0.shape)
    return outputs, cell_states, c, h


def saved_gates(outputs):
    """Every step's `[x, h] @ kernel + bias` from the kernel op that computed `outputs` (an `lstm_sequence` result).

    Sets that op's `save_gates`, so the forward writes what the gradient would otherwise recompute
    with one large matmul; a gradient is built after its forward, hence the change to an existing
    op (TensorFlow's private `Operation._set_attr`). Where the op cannot change any more (a session
    has already run it) the tensor stays empty, and `tfstate.fused.sequence.sequence_gradient`
    recomputes. Returns the tensor, laid out like the inputs with width 4H; None where the
    TensorFlow at hand cannot change an op.
    """
    op = outputs.op
    if not hasattr(op, "_set_attr"):
        return None
    op._set_attr("save_gates", attr_value_pb2.AttrValue(b=True))
    return op.outputs[4]


def lstm_reverse_loop(
    gate_inputs,
    c_prev,
    d_outputs,
    d_c,
    d_h,
    recurrent_kernel,
    peepholes,
    lengths,
    time_major,
    forget_bias,
    cell_clip,
    resets=None,
):
    """The reverse loop of `tfstate.fused.sequence.sequence_gradient` through the compiled kernel.

    The sequences are `[T, B, ...]` with `time_major`, else `[B, T, ...]`: `gate_inputs` (every
    step's `[x, h] @ kernel + bias`, 4H wide), `c_prev` (the cell state each step read, H wide),
    `d_outputs`; `resets` is time-major either way. `recurrent_kernel` is `kernel[depth:]`.
    Returns `(d_gates like gate_inputs, d_c0, d_h0, d_reset_c, d_reset_h)`.
    """
    units = c_prev.shape[-1]
    lengths = _every_row_runs_every_step(c_prev, time_major) if lengths is None else lengths
    if resets is None:
        resets = tf.zeros([0, 0], tf.bool)
    w_i, w_f, w_o, clip = kernel_arguments(peepholes, cell_clip, units, tf.float32)
    results = _load(variant()).ops["lstm_gradient"](
        gate_inputs,
        c_prev,
        d_outputs,
        d_c,
        d_h,
        recurrent_kernel,
        w_i,
        w_f,
        w_o,
        lengths,
        resets,
        forget_bias=forget_bias,
        cell_clip=clip,
        use_peephole=peepholes is not None,
        time_major=time_major,
    )
    results[0].set_shape(gate_inputs.shape)
    for state in results[1:]:
        state.set_shape(d_c.shape)
    return results


def gru_sequence(
    inputs, h0, gate_kernel, gate_bias, candidate_kernel, candidate_bias, lengths, time_major, resets=None, reset_h=None
):
    """A GRU's whole chunk through the compiled kernel: `(outputs like inputs, h)`.

    Same contract as `tfstate.fused.gru_sequence.sequence`: `lengths` is None or `[batch]` int32,
    `resets` None or a time-major bool `[time, batch]` mask whose marked rows start that step from `reset_h`.
    """
    reason = unsupported_reason(inputs.dtype)
    if reason is not None:
        raise NativeUnavailableError(f"tfstate's compiled GRU kernel cannot run this GRU: {reason}.")
    lengths = _every_row_runs_every_step(inputs, time_major) if lengths is None else lengths
    if resets is None:  # empty: the op reads no reset values
        resets, reset_h = tf.zeros([0, 0], tf.bool), tf.zeros([0, 0])
    outputs, h = _load(variant()).ops["gru"](
        inputs,
        h0,
        gate_kernel,
        gate_bias,
        candidate_kernel,
        candidate_bias,
        lengths,
        resets,
        reset_h,
        time_major=time_major,
    )
    outputs.set_shape(inputs.shape[:2].concatenate([h0.shape[-1]]))
    h.set_shape(h0.shape)
    return outputs, h


def configure(parser):
    """`tfstate native`: builds the compiled kernel now (e.g. while building an image) and says whether it is used."""
    del parser  # no options


def run(args):
    del args
    reason = status()
    if reason is not None:
        print(f"tfstate's compiled LSTM kernel is not used: {reason}. The fused cells use XLA instead.")
        return 1
    kernel = _load(variant())
    where = (
        f"cached in {kernel.path}" if kernel.path else f"built for this process only, not cached: {kernel.not_cached}"
    )
    print(
        f"tfstate's compiled LSTM and GRU kernels are ready: variant '{variant()}' of the variants this CPU runs "
        f"({', '.join(variants())}; TFSTATE_NATIVE_ISA picks another), {where}. The fused cells use them for "
        f"float32 LSTMs and GRUs."
    )
    return 0
