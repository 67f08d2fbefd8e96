"""tfstate's compiled LSTM kernel (`lstm_kernel.cc`): built on this machine at first use, cached, optional.

The kernel runs a whole chunk of an LSTM in one TensorFlow op: per step one register-blocked
`[x, h] @ kernel` with the gate maths fused in, the hidden units split across the cores. It
needs a C++ compiler, Linux on x86-64 and AVX-512F; it is compiled with `-march=native` against
the installed TensorFlow (`tf.sysconfig`) and cached under `$TFSTATE_CACHE_DIR` (default
`~/.cache/tfstate`; a per-user temp folder where that is not writable), keyed by the source,
TensorFlow's version, the compiler and the CPU. A cached file that does not load is rebuilt.
Where it cannot be built the fused cells use their XLA path instead; `status()` says why.
Set `TFSTATE_NATIVE=0` to never build or use it, `TFSTATE_NATIVE_THREADS=N` to fix its thread
count (default: one per core, one thread below ~1 MFLOP per step).
"""

import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile

import tensorflow as tf

from tfstate._files import atomic_writer

_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lstm_kernel.cc")
_log = logging.getLogger("tfstate")


class NativeUnavailableError(RuntimeError):
    """The compiled kernel cannot be used here (the message says why)."""


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def _compiler():
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dirs():
    """Where built kernels are kept: `$TFSTATE_CACHE_DIR` (or `~/.cache/tfstate`), else a per-user temp folder."""
    if os.environ.get("TFSTATE_CACHE_DIR"):
        yield os.environ["TFSTATE_CACHE_DIR"]
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        yield os.path.join(base, "tfstate")
    yield os.path.join(tempfile.gettempdir(), f"tfstate-{os.getuid()}")


def _build(compiler, flags):
    """Compiles the kernel (or finds it in the cache); returns the shared library's path."""
    with open(_SOURCE, "rb") as source:
        code = source.read()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    command = ["-O3", "-march=native", "-shared", "-fPIC", "-pthread", *tf.sysconfig.get_compile_flags()]
    link = tf.sysconfig.get_link_flags()
    key = hashlib.sha256(b"\0".join(
        [code, tf.__version__.encode(), version.encode(), " ".join(command + link).encode(), " ".join(flags).encode()]))
    name = f"lstm_kernel-{key.hexdigest()[:16]}.so"
    for directory in _cache_dirs():
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    with tempfile.TemporaryDirectory() as scratch:
        built = os.path.join(scratch, "lstm_kernel.so")
        result = subprocess.run([compiler, *command, _SOURCE, "-o", built, *link],
                                capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise NativeUnavailableError(
                f"compiling {_SOURCE} with {compiler} failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
        with open(built, "rb") as library:
            binary = library.read()
    errors = []
    for directory in _cache_dirs():
        path = os.path.join(directory, name)
        try:
            os.makedirs(directory, exist_ok=True)
            with atomic_writer(path, binary=True, permissions=0o755) as cached:
                cached.write(binary)
            return path
        except OSError as error:  # not writable: try the next place
            errors.append(f"{directory}: {error}")
    raise NativeUnavailableError(f"no writable cache folder for the built kernel ({'; '.join(errors)})")


def _load_library(path):
    """The op module in `path`, or None when the file is unusable (then it is deleted, to be rebuilt)."""
    try:
        module = tf.load_op_library(path)
    except tf.errors.OpError:
        module = None
    if module is None or not hasattr(module, "tfstate_lstm_sequence"):
        os.remove(path)
        return None
    return module


@functools.lru_cache(maxsize=None)
def _load():
    """The loaded op module; raises NativeUnavailableError with the reason when there is none."""
    if os.environ.get("TFSTATE_NATIVE", "1") == "0":
        raise NativeUnavailableError("TFSTATE_NATIVE=0 is set")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise NativeUnavailableError(f"it needs Linux on x86-64; this is {platform.system()} on {platform.machine()}")
    flags = _cpu_flags()
    if "avx512f" not in flags:
        raise NativeUnavailableError("this CPU has no AVX-512F")
    compiler = _compiler()
    if compiler is None:
        raise NativeUnavailableError("no C++ compiler found (set CXX, or install g++)")
    for _ in range(2):  # a cached file that does not load is deleted and built again, once
        path = _build(compiler, flags)
        module = _load_library(path)
        if module is not None:
            return module
    raise NativeUnavailableError(f"TensorFlow could not load the kernel it built ({path})")


@functools.lru_cache(maxsize=None)
def status():
    """`None` when the compiled kernel is ready, else the reason it is not (a string). Builds it if needed."""
    try:
        _load()
    except NativeUnavailableError as error:
        _log.info("tfstate: the compiled LSTM kernel is not used: %s", error)
        return str(error)
    except Exception as error:  # noqa: BLE001 - any failure to build or load means: use the XLA path
        _log.warning("tfstate: building the compiled LSTM kernel failed (%s); the XLA path is used", error)
        return f"building it failed: {error}"
    return None


def unsupported_reason(dtype):
    """`None` when the compiled kernel can run an LSTM in `dtype` here, else why not.

    Any number of units works; multiples of 16 use the vector registers fully.
    """
    if dtype != tf.float32:
        return f"it computes in float32; the inputs are {dtype.name}"
    return status()


def lstm_sequence(inputs, c0, h0, kernel, bias, peepholes, lengths, time_major, forget_bias, cell_clip):
    """The whole chunk through the compiled kernel: `(outputs, cell states, both like inputs, c, h)`.

    Same contract as `tfstate.fused.sequence.sequence`: `lengths` is None or `[batch]` int32, `peepholes`
    None or `(w_i, w_f, w_o)`, `cell_clip` None for no clipping.
    """
    units = h0.shape[-1]
    reason = unsupported_reason(inputs.dtype)
    if reason is not None:
        raise NativeUnavailableError(f"tfstate's compiled LSTM kernel cannot run this LSTM: {reason}.")
    steps_axis, batch_axis = (0, 1) if time_major else (1, 0)
    if lengths is None:
        lengths = tf.fill(tf.shape(inputs)[batch_axis:batch_axis + 1], tf.shape(inputs)[steps_axis])
    zeros = tf.zeros([units], tf.float32)
    w_i, w_f, w_o = peepholes or (zeros, zeros, zeros)
    outputs, c, h, cell_states = _load().tfstate_lstm_sequence(
        inputs, c0, h0, kernel, bias, w_i, w_f, w_o, lengths, forget_bias=forget_bias,
        cell_clip=-1.0 if cell_clip is None else cell_clip, use_peephole=peepholes is not None,
        time_major=time_major)
    for sequence in (outputs, cell_states):
        sequence.set_shape(inputs.shape[:2].concatenate([units]))
    c.set_shape(c0.shape)
    h.set_shape(h0.shape)
    return outputs, cell_states, c, h


def configure(parser):
    """`tfstate native`: builds the compiled kernel now (e.g. while building an image) and says whether it is used."""
    del parser  # no options


def run(args):
    del args
    reason = status()
    if reason is None:
        print(f"tfstate's compiled LSTM kernel is ready ({_build(_compiler(), _cpu_flags())}); the fused cells use "
              f"it for float32 LSTMs.")
        return 0
    print(f"tfstate's compiled LSTM kernel is not used: {reason}. The fused cells use XLA instead.")
    return 1
