"""The compiled LSTM kernel computes what tfstate.LSTMCell under dynamic_rnn computes, in every variant this CPU
runs, loads only what this user built, and falls back cleanly."""

import os
import platform
import stat
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_nested_close, buildable, graph_session, load_variables, randomize_variables, run_rnn

import tfstate
from tfstate import native
from tfstate.fused import FusedMultiRNNCell, LSTMBlockCell

needs_compiler = pytest.mark.skipif(not buildable, reason="the kernel is built on Linux with a C++ compiler only")
needs_auto_kernel = pytest.mark.skipif(
    not buildable or bool(tf.config.list_physical_devices("GPU")),
    reason="implementation='auto' picks the compiled kernel only where it is built and no GPU is visible",
)

BATCH, TIME, DEPTH, UNITS = 7, 6, 5, 32  # 7 rows: full register tiles and a shorter last one in every variant
LENGTHS = np.array([6, 2, 0, 6, 5, 1, 3], np.int32)


@pytest.fixture
def fresh_native(monkeypatch):
    """Lets a test change TFSTATE_* variables and see `native` re-decide; the real state is restored after."""
    native._load.cache_clear()
    native._status.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    native._load.cache_clear()
    native._status.cache_clear()


_expected = {}


def lstm_cell_oracle(key, values, compute):
    """`compute()` (the same LSTM through dynamic_rnn over tfstate.LSTMCell with `values`), once per session for each
    `key`: the variants' runs draw the same variable values (checked here), so they share one oracle run."""
    if key not in _expected:
        _expected[key] = (values, compute())
    cached_values, expected = _expected[key]
    assert_nested_close(values, cached_values, atol=0)
    return expected


def kernel_op_type(variant):
    return native.op_type("lstm", variant)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
@pytest.mark.parametrize("threads", ["1", "2"])
def test_native_unroll_and_gradients_equal_dynamic_rnn_over_lstm_cell(
    rng, monkeypatch, isa, time_major, lengths, threads
):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", threads)
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    if time_major:
        inputs = inputs.transpose(1, 0, 2)
    outputs, final, grads, values, types = run_rnn(
        inputs, lambda: LSTMBlockCell(UNITS, implementation="native"), lengths, time_major, gradients=True
    )
    assert kernel_op_type(isa) in types
    assert sorted(values) == ["rnn/lstm_cell/bias:0", "rnn/lstm_cell/kernel:0"]
    expected = lstm_cell_oracle(
        ("unroll", time_major, lengths is None),
        values,
        lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), lengths, time_major, values, gradients=True),
    )
    assert_nested_close((outputs, final), expected[:2])
    assert_nested_close(grads, expected[2], atol=2e-5)


def test_native_gradients_through_a_chunk_of_unknown_length_equal_lstm_cell(rng, isa):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)  # the backward loop is a while_loop
    outputs, final, grads, values, types = run_rnn(
        inputs, lambda: LSTMBlockCell(UNITS, implementation="native"), LENGTHS, gradients=True, unknown_length=True
    )
    assert kernel_op_type(isa) in types
    expected = lstm_cell_oracle(
        "unknown length",
        values,
        lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), LENGTHS, values=values, gradients=True),
    )
    assert_nested_close((outputs, final, grads), expected[:3], atol=2e-5)


# 5 units: a partial last group in every variant (groups of 16, 8 or 4 units); 20 and 200 (PTB's small model):
# partial groups of 16 (and of 8 for 20)
@pytest.mark.parametrize("units", [5, 20, UNITS, 200])
def test_native_peepholes_clipping_and_forget_bias_equal_lstm_cell_for_any_number_of_units(
    rng, monkeypatch, isa, units
):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    settings = dict(cell_clip=0.3, forget_bias=0.5)
    outputs, final, grads, values, types = run_rnn(
        inputs,
        lambda: LSTMBlockCell(units, use_peephole=True, implementation="native", **settings),
        LENGTHS,
        gradients=True,
    )
    assert kernel_op_type(isa) in types
    expected = lstm_cell_oracle(
        ("peepholes", units),
        values,
        lambda: run_rnn(
            inputs,
            lambda: tfstate.LSTMCell(units, use_peepholes=True, **settings),
            LENGTHS,
            values=values,
            gradients=True,
        ),
    )
    assert_nested_close((outputs, final), expected[:2])
    assert_nested_close(grads, expected[2], atol=2e-5)


@needs_auto_kernel
def test_auto_picks_native_and_a_stack_of_it_equals_multi_rnn_cell(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, _, values, types = run_rnn(
        inputs, lambda: FusedMultiRNNCell([LSTMBlockCell(UNITS), LSTMBlockCell(UNITS)]), LENGTHS
    )
    assert kernel_op_type(native.variant()) in types
    expected = run_rnn(
        inputs, lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(UNITS), tfstate.LSTMCell(UNITS)]), LENGTHS, values=values
    )
    assert_nested_close((outputs, final), expected[:2])


def test_stateful_stream_through_native_equals_one_long_run_and_the_graph_stays_the_same_size(rng, isa):
    inputs = rng.randn(BATCH, 3 * TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        chunk = tf.compat.v1.placeholder(tf.float32, [BATCH, None, DEPTH])  # unknown length: still native
        rnn = tfstate.stateful_dynamic_rnn(LSTMBlockCell(UNITS, implementation="native"), chunk, batch_size=BATCH)
        assert any(op.type == kernel_op_type(isa) for op in sess.graph.get_operations())
        sess.run(tf.compat.v1.local_variables_initializer())
        values = randomize_variables(sess, scale=0.2)
        ops = len(sess.graph.get_operations())
        pieces = [
            sess.run((rnn.outputs, rnn.keep), {chunk: inputs[:, start : start + size]})[0]
            for start, size in [(0, TIME), (TIME, 1), (TIME + 1, 2 * TIME - 1)]
        ]
        assert len(sess.graph.get_operations()) == ops
    expected = lstm_cell_oracle(
        "stream", values, lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), values=values)
    )
    np.testing.assert_allclose(np.concatenate(pieces, 1), expected[0], atol=1e-5, rtol=0)


def test_zero_steps_and_zero_rows_leave_the_state_as_it_was(rng, isa):
    for shape in [(3, 0, DEPTH), (0, 4, DEPTH)]:
        inputs = rng.randn(*shape).astype(np.float32)
        outputs, final, grads, values, _ = run_rnn(
            inputs, lambda: LSTMBlockCell(UNITS, implementation="native"), gradients=True
        )
        expected = lstm_cell_oracle(
            ("empty", shape),
            values,
            lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), values=values, gradients=True),
        )
        assert outputs.shape == shape[:2] + (UNITS,)
        assert_nested_close((outputs, final, grads), expected[:3])


def test_nan_inputs_give_nan_outputs_as_tensorflow_does(rng, isa):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    inputs[1, 2, 0] = np.nan
    for settings in ({}, {"cell_clip": 0.5}):
        actual = run_rnn(inputs, lambda: LSTMBlockCell(UNITS, implementation="native", **settings))
        expected = lstm_cell_oracle(
            ("nan", settings.get("cell_clip")),
            actual[3],
            lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS, **settings), values=actual[3]),
        )
        np.testing.assert_array_equal(np.isnan(actual[0]), np.isnan(expected[0]))
        assert np.isnan(actual[0][1, 2:]).all() and not np.isnan(actual[0][[0, 2, 3, 4, 5, 6]]).any()


def test_a_long_chunk_on_two_threads_equals_lstm_cell(rng, monkeypatch, isa):
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")  # 64 steps: the per-step barrier is reused 64 times
    inputs = rng.randn(BATCH, 64, DEPTH).astype(np.float32)
    outputs, final, _, values, _ = run_rnn(inputs, lambda: LSTMBlockCell(UNITS, implementation="native"))
    expected = lstm_cell_oracle("long", values, lambda: run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), values=values))
    assert_nested_close((outputs, final), expected[:2])


def test_kernel_rejects_mismatched_shapes_naming_the_expected_ones(isa):
    with graph_session() as sess:
        outputs, _, _, _ = native.lstm_sequence(
            tf.compat.v1.placeholder_with_default(tf.zeros([2, 3, 4]), [None, None, None]),
            tf.zeros([2, 16]),
            tf.zeros([2, 16]),
            tf.compat.v1.placeholder_with_default(tf.zeros([19, 64]), [None, None]),
            tf.zeros([64]),
            None,
            None,
            False,
            1.0,
            None,
        )
        with pytest.raises(tf.errors.InvalidArgumentError, match=kernel_op_type(isa) + r" .*kernel \[20, 64\]"):
            sess.run(outputs)
        zeros = tf.zeros([2, 16])
        outputs, _, _, _ = native.lstm_sequence(  # resets must be time-major [3, 2] whatever the inputs' layout
            tf.zeros([2, 3, 4]),
            zeros,
            zeros,
            tf.zeros([20, 64]),
            tf.zeros([64]),
            None,
            None,
            False,
            1.0,
            None,
            tf.compat.v1.placeholder_with_default(tf.zeros([2, 3], tf.bool), [None, None]),
            (zeros, zeros),
        )
        with pytest.raises(
            tf.errors.InvalidArgumentError,
            match=kernel_op_type(isa) + r" with 3 steps, batch 2 and "
            r"16 units needs resets \[3, 2\] \(time-major; empty for none\) and reset_c, reset_h "
            r"\[2, 16\]",
        ):
            sess.run(outputs)


def test_explicit_native_names_what_it_cannot_run():
    with graph_session():
        cell = LSTMBlockCell(16, implementation="native")
        with pytest.raises(native.NativeUnavailableError, match="float32; the inputs are float64"):
            cell.unroll(tf.zeros([2, 3, 4], tf.float64), cell.zero_state(2, tf.float64))


@needs_compiler
def test_the_fastest_variant_builds_on_every_linux_machine_with_a_compiler(monkeypatch):
    monkeypatch.delenv("TFSTATE_NATIVE_ISA", raising=False)
    assert native.variants()[-1] == "portable" and native.variant() == native.variants()[0]
    assert native.status() is None  # never a silent fallback to XLA (and skipped tests) where it should build


def test_every_kernel_source_ships_in_the_package():
    # a header missing from the wheel makes the build fail on every user's machine, never in this checkout
    import configparser
    import fnmatch

    config = configparser.ConfigParser()
    config.read(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.cfg"))
    patterns = [pattern.strip() for pattern in config["options.package_data"]["tfstate"].split(",")]
    sources = [os.path.basename(source) for source in native._SOURCES]
    assert [source for source in sources if not any(fnmatch.fnmatch(source, p) for p in patterns)] == []
    local_includes = set()  # tfstate's own headers, which the build key must cover too
    for source in native._SOURCES:
        with open(source) as file:
            local_includes |= {line.split('"')[1] for line in file if line.startswith('#include "') and "/" not in line}
    assert local_includes <= set(sources)


@pytest.mark.parametrize(
    "machine, flags, expected",
    [
        ("x86_64", {"avx512f", "avx2", "fma"}, ("avx512", "avx2", "portable")),
        ("x86_64", {"avx2", "fma", "sse4_2"}, ("avx2", "portable")),  # most AMD cloud machines, laptops
        ("x86_64", {"avx2", "sse4_2"}, ("portable",)),  # AVX2 without FMA
        ("aarch64", set(), ("portable",)),
    ],
)
def test_variants_follow_the_cpu_flags_fastest_first(monkeypatch, machine, flags, expected):
    monkeypatch.setattr(native, "_cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(platform, "machine", lambda: machine)
    monkeypatch.delenv("TFSTATE_NATIVE_ISA", raising=False)
    assert native.variants() == expected
    assert native.variant() == expected[0]


def test_tfstate_native_isa_forces_a_variant_or_says_why_it_cannot(fresh_native):
    fresh_native.setattr(native, "_cpu_flags", lambda: frozenset({"avx2", "fma"}))
    fresh_native.setattr(platform, "machine", lambda: "x86_64")
    fresh_native.setenv("TFSTATE_NATIVE_ISA", "portable")
    assert native.variant() == "portable"
    fresh_native.setenv("TFSTATE_NATIVE_ISA", "avx512")
    reason = "TFSTATE_NATIVE_ISA='avx512' needs an x86-64 CPU with avx512f, avx2, fma; this CPU runs 'avx2', 'portable'"
    with pytest.raises(native.NativeUnavailableError, match=reason):
        native.variant()
    assert native.status() == reason
    fresh_native.setenv("TFSTATE_NATIVE_ISA", "sse9")
    assert native.status() == (
        "TFSTATE_NATIVE_ISA='sse9' is not a kernel variant; expected one of 'avx512', "
        "'avx2', 'portable', or unset for the fastest this CPU runs"
    )


def test_without_native_auto_falls_back_to_xla_with_the_same_values(rng, fresh_native):
    fresh_native.setenv("TFSTATE_NATIVE", "0")
    assert native.status() == "TFSTATE_NATIVE=0 is set"
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    outputs, final, _, values, types = run_rnn(inputs, lambda: LSTMBlockCell(UNITS), LENGTHS)
    assert not any(op_type.startswith("TfstateLstmSequence") for op_type in types)
    expected = run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), LENGTHS, values=values)
    assert_nested_close((outputs, final), expected[:2])


@needs_compiler
def test_native_command_reports_the_variant_and_where_it_is_cached_or_says_why_not(capsys, fresh_native):
    from tfstate.__main__ import main

    fresh_native.setenv("TFSTATE_NATIVE_ISA", "portable")
    assert main(["native"]) == 0
    out = capsys.readouterr().out
    assert "compiled LSTM and GRU kernels are ready: variant 'portable'" in out
    assert f"cached in {native._load('portable').path}" in out
    fresh_native.setenv("TFSTATE_NATIVE", "0")
    assert main(["native"]) == 1
    assert "is not used: TFSTATE_NATIVE=0 is set" in capsys.readouterr().out


# The kernel cache. A process loads each variant's op once, so the tests that load a library run in a fresh
# process; those that check which file would be loaded call the cache's own steps.


def planted_library(tmp_path):
    """A shared library (without the op) that creates the file `planted-code-ran` when it is loaded: (path, marker)."""
    marker, source, library = tmp_path / "planted-code-ran", tmp_path / "planted.cc", tmp_path / "planted.so"
    source.write_text(
        "#include <cstdio>\n__attribute__((constructor)) static void planted() {\n"
        f'  if (std::FILE* file = std::fopen("{marker}", "w")) std::fclose(file);\n}}\n'
    )
    subprocess.run([native._compiler(), "-shared", "-fPIC", str(source), "-o", str(library)], check=True)
    return str(library), marker


def current_build():
    return native._Build.of(native.variant(), native._compiler())


def genuine_library(tmp_path):
    """A genuine build of the current variant: the one this process loaded, else one compiled now."""
    return native._load(native.variant()).path or native._compile(current_build(), str(tmp_path))


def run_in_a_fresh_process(code, **env):
    """Runs Python `code` in a new process (no kernel loaded yet) with the variables `env` added; returns its output."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), **env}
    process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert process.returncode == 0, process.stderr[-3000:]
    return process.stdout.strip().splitlines()


@needs_compiler
def test_a_library_planted_in_the_shared_temp_folder_is_never_loaded(tmp_path):
    # Before, the cache also looked in $TMPDIR/tfstate-<uid>, which any local user can create first.
    shared_temp, cache = tmp_path / "tmp", tmp_path / "cache"
    planted, marker = planted_library(tmp_path)
    folder = shared_temp / f"tfstate-{os.getuid()}"
    folder.mkdir(parents=True)
    native._store(str(folder), current_build(), planted)  # named as a genuine build would be
    cache.mkdir(mode=0o700)
    genuine = native._store(str(cache), current_build(), genuine_library(tmp_path))
    output = run_in_a_fresh_process(
        "from tfstate import native; print(native.status())", TMPDIR=str(shared_temp), TFSTATE_CACHE_DIR=str(cache)
    )
    assert output[-1] == "None"
    assert not marker.exists()
    assert [str(entry) for entry in cache.iterdir()] == [genuine]


@needs_compiler
def test_a_cache_folder_others_can_write_is_refused_and_the_kernel_is_built_for_the_process_only(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o775)
    cache.chmod(0o775)  # group-writable: a member of the group could replace the libraries in it
    planted, marker = planted_library(tmp_path)
    stored = native._store(str(cache), current_build(), planted)
    output = run_in_a_fresh_process(
        "from tfstate import native\nprint(native.status())\nprint(native._load(native.variant()).not_cached)",
        TFSTATE_CACHE_DIR=str(cache),
    )
    assert output[-2:] == ["None", f"'{cache}' can be written by other users (mode 0775)"]
    assert not marker.exists()
    assert [str(entry) for entry in cache.iterdir()] == [stored]  # nothing was read from it or written into it


def test_cache_folders_must_be_private_all_the_way_up(tmp_path, fresh_native):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    fresh_native.setenv("TFSTATE_CACHE_DIR", str(private / "tfstate"))
    assert native._cache_folder() == (str(private / "tfstate"), None)  # made if missing
    assert stat.S_IMODE((private / "tfstate").stat().st_mode) & 0o077 == 0
    open_folder = tmp_path / "open"
    open_folder.mkdir()
    open_folder.chmod(0o777)  # anyone may rename the cache inside it and put their own in its place
    fresh_native.setenv("TFSTATE_CACHE_DIR", str(open_folder / "tfstate"))
    assert native._cache_folder() == (
        None,
        f"'{open_folder}', above '{open_folder / 'tfstate'}', can be changed "
        f"by another user (owner {os.getuid()}, mode 0777)",
    )
    open_folder.chmod(0o1777)  # sticky, like /tmp: only the owner may rename or delete its entries
    assert native._cache_folder() == (str(open_folder / "tfstate"), None)
    (tmp_path / "link").symlink_to(private / "tfstate")
    fresh_native.setenv("TFSTATE_CACHE_DIR", str(tmp_path / "link"))
    assert native._cache_folder() == (None, f"'{tmp_path / 'link'}' is a symbolic link")


@needs_compiler
def test_a_symlinked_or_group_writable_cache_entry_is_refused_and_removed(tmp_path):
    build = current_build()
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    planted, _ = planted_library(tmp_path)
    genuine = native._store(str(tmp_path), build, planted)  # a file whose name matches its content
    link = cache / os.path.basename(genuine)
    link.symlink_to(genuine)
    assert native._file_problem(str(link), genuine.rsplit("-", 1)[1][:-3]) == f"'{link}' is a symbolic link"
    assert native._cached(str(cache), build) is None
    assert not os.path.lexists(link) and os.path.exists(genuine)  # the link is gone, its target untouched
    copy = native._store(str(cache), build, planted)
    os.chmod(copy, 0o775)
    assert native._cached(str(cache), build) is None and not os.path.exists(copy)


@needs_compiler
def test_a_cached_library_whose_content_does_not_match_its_name_is_not_loaded(tmp_path):
    build = current_build()
    planted, _ = planted_library(tmp_path)
    cached = native._store(str(tmp_path), build, planted)
    assert native._cached(str(tmp_path), build) == cached
    with open(cached, "r+b") as library:
        library.truncate(100)  # as a crash or a full disk could leave it
    assert native._cached(str(tmp_path), build) is None and not os.path.exists(cached)


@needs_compiler
def test_a_built_kernel_is_stored_once_under_its_content_hash_and_found_again(tmp_path):
    build = current_build()
    library = genuine_library(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    stored = native._store(str(cache), build, library)
    assert os.path.basename(stored).startswith(f"lstm_kernel-{native.variant()}-")
    stamp = os.stat(stored).st_mtime_ns
    assert native._cached(str(cache), build) == stored
    assert os.stat(stored).st_mtime_ns == stamp and os.listdir(cache) == [os.path.basename(stored)]


@needs_compiler
def test_a_cached_library_that_loads_but_lacks_the_op_is_rebuilt_under_a_new_name_and_loaded(tmp_path):
    # Before, the rebuild took the stale library's path, so TensorFlow handed back the stale library again.
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    planted, marker = planted_library(tmp_path)
    stale = native._store(str(cache), current_build(), planted)  # a genuine entry, but without the op
    output = run_in_a_fresh_process(
        "import numpy as np, tensorflow as tf\nfrom tfstate import native\nprint(native.status())\n"
        "tf.compat.v1.disable_eager_execution()\nzeros = tf.zeros([2, 3])\n"
        "outputs = native.lstm_sequence(tf.ones([2, 4, 5]), zeros, zeros, tf.ones([8, 12]), tf.zeros([12]), None,"
        " None, False, 1.0, None)[0]\nprint(tf.compat.v1.Session().run(outputs).shape)",
        TFSTATE_CACHE_DIR=str(cache),
    )
    assert output[-2:] == ["None", "(2, 4, 3)"]
    assert marker.exists()  # the stale library was loaded, found wanting ...
    assert not os.path.exists(stale) and len(os.listdir(cache)) == 1  # ... and replaced by the rebuild


@needs_compiler
def test_a_failing_compiler_is_reported_not_raised_and_leaves_no_file(tmp_path, fresh_native):
    compiler = tmp_path / "fake-c++"  # writes half an output file, then fails
    compiler.write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = "-o" ] && echo partial > "$2"; shift; done\n'
        'echo "fake-c++: error: out of luck" >&2; exit 1\n'
    )
    compiler.chmod(0o755)
    cache = tmp_path / "cache"
    fresh_native.setenv("TFSTATE_CACHE_DIR", str(cache))
    fresh_native.setenv("CXX", str(compiler))
    reason = native.status()
    assert reason.startswith("compiling") and "out of luck" in reason
    assert native.unsupported_reason(tf.float32) == reason
    assert list(cache.iterdir()) == []


@needs_auto_kernel
def test_auto_takes_the_portable_variant_only_when_asked_for_it(fresh_native):
    # the portable variant measured slower than XLA (docs/benchmarks.md): auto keeps XLA on such CPUs
    fresh_native.setattr(native, "_cpu_flags", lambda: frozenset())  # a CPU with neither AVX2 nor AVX-512
    fresh_native.delenv("TFSTATE_NATIVE_ISA", raising=False)
    inputs = tf.zeros([2, 3, 4])
    with graph_session():
        assert native.variant() == "portable" and native.status() is None
        assert "only the portable variant, which is slower than XLA" in native.auto_reason(tf.float32)
        assert LSTMBlockCell(UNITS).implementation_for(inputs, False) == "xla"
        fresh_native.setenv("TFSTATE_NATIVE_ISA", "portable")
        assert native.auto_reason(tf.float32) is None
        assert LSTMBlockCell(UNITS).implementation_for(inputs, False) == "native"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_batch_split_across_threads_by_rows_equals_the_stepped_cell_with_resets_and_gradients(
    rng, monkeypatch, isa, kind
):
    # 17 rows: enough for the threads to own rows (8 and 9) instead of groups of units; no barrier per step
    monkeypatch.setenv("TFSTATE_NATIVE_THREADS", "2")
    batch, steps = 17, 5
    inputs = rng.randn(batch, steps, DEPTH).astype(np.float32)
    resets = rng.rand(batch, steps) < 0.2
    lengths = rng.randint(0, steps + 1, batch).astype(np.int32)
    make = {
        "lstm": lambda: LSTMBlockCell(UNITS, use_peephole=True, cell_clip=0.5, implementation="native"),
        "gru": lambda: tfstate.GRUCell(UNITS),
    }[kind]
    results = []
    for stepped in (False, True):
        with graph_session() as sess:
            cell, x = make(), tf.constant(inputs)
            zero = cell.zero_state(batch, tf.float32)
            if stepped:
                outputs, final = tfstate.resets.stepped_with_resets(cell, x, resets, zero, zero, lengths, False, None)
            else:
                outputs, final = tfstate.dynamic_rnn(cell, x, lengths, zero, resets=resets)
                assert native.op_type(kind, isa) in {op.type for op in sess.graph.get_operations()}
            loss = tf.reduce_sum(outputs * tf.sin(outputs)) + tf.add_n(
                [tf.reduce_sum(s * s) for s in tf.nest.flatten(final)]
            )
            variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)
            grads = tf.gradients(loss, [x] + variables)
            values = randomize_variables(sess, scale=0.3) if not results else load_variables(sess, results[0][1])
            results.append((sess.run((outputs, final, grads)), values))
    assert_nested_close(results[0][0][:2], results[1][0][:2])
    assert_nested_close(results[0][0][2], results[1][0][2], atol=2e-5)


def test_the_forward_saves_its_gates_for_the_gradient_only_once_a_gradient_is_built(rng):
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        outputs, _ = tfstate.dynamic_rnn(
            LSTMBlockCell(UNITS, implementation="native"), tf.constant(inputs), dtype=tf.float32
        )
        forward = [op for op in sess.graph.get_operations() if op.type.startswith("TfstateLstmSequence")]
        assert [op.get_attr("save_gates") for op in forward] == [False]  # streaming writes no gates
        tf.gradients(tf.reduce_sum(outputs), tf.compat.v1.trainable_variables())
        assert [op.get_attr("save_gates") for op in forward] == [True]


def test_a_gradient_built_after_its_forward_ran_recomputes_the_gates_and_equals_lstm_cell(rng):
    # the session already runs the forward op as it was: setting save_gates then has no effect
    inputs = rng.randn(BATCH, TIME, DEPTH).astype(np.float32)
    with graph_session() as sess:
        x = tf.constant(inputs)
        outputs, final = tfstate.dynamic_rnn(
            LSTMBlockCell(UNITS, implementation="native"), x, LENGTHS, dtype=tf.float32
        )
        values = randomize_variables(sess, scale=0.2)
        sess.run(outputs)
        loss = tf.reduce_sum(outputs * tf.sin(outputs)) + tf.add_n([tf.reduce_sum(s * s) for s in final])
        variables = sorted(tf.compat.v1.global_variables(), key=lambda v: v.name)
        actual = sess.run(tf.gradients(loss, [x] + variables))
    expected = run_rnn(inputs, lambda: tfstate.LSTMCell(UNITS), LENGTHS, values=values, gradients=True)
    assert_nested_close(actual, expected.gradients, atol=2e-5)
