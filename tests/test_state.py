"""RNNState, stateful_dynamic_rnn and StatefulSession against one long dynamic_rnn and fresh starts."""

import io
import os
import subprocess
import sys
import textwrap
import threading
import time
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    CELLS,
    CountingCell,
    NestedInputsCell,
    assert_nested_close,
    graph_session,
    in_threads,
    nested_inputs_recurrence,
    randomize_variables,
)

import tfstate

BATCH, DEPTH = 3, 4

STATE_CELLS = ["multi_lstm", "gru", "lstm_projection_concat_state", "multi_concat_state"]  # from conftest.CELLS


def _make(name):
    return lambda: CELLS[name](tfstate.rnn_cell)


MULTI_LSTM = _make("multi_lstm")


class Model:
    """A stateful RNN and, sharing its weights, a plain dynamic_rnn from a fed initial state (the oracle)."""

    def __init__(self, sess, make_cell=MULTI_LSTM, batch_size=None, time_major=False, **kwargs):
        self.sess, self.time_major = sess, time_major
        shape = [None, None, DEPTH]
        self.x = tf.compat.v1.placeholder(tf.float32, shape)
        self.lengths = tf.compat.v1.placeholder_with_default(
            tf.fill([tf.shape(self.x)[1 if time_major else 0]], tf.shape(self.x)[0 if time_major else 1]), [None]
        )
        self.cell = make_cell()
        self.rnn = tfstate.stateful_dynamic_rnn(
            self.cell, self.x, batch_size=batch_size, time_major=time_major, sequence_length=self.lengths, **kwargs
        )
        self.oracle_state = tf.nest.map_structure(
            lambda size: tf.compat.v1.placeholder(tf.float32, [None, size]), self.cell.state_size
        )
        self.oracle_outputs, self.oracle_final = tf.compat.v1.nn.dynamic_rnn(
            self.cell,
            self.x,
            initial_state=self.oracle_state,
            sequence_length=self.lengths,
            time_major=time_major,
            scope="oracle",
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        self.stateful = tfstate.StatefulSession(sess, self.rnn)

    def feed(self, chunk, lengths=None):
        chunk = np.transpose(chunk, [1, 0, 2]) if self.time_major else chunk
        feed = {self.x: chunk}
        if lengths is not None:
            feed[self.lengths] = lengths
        return feed

    def oracle(self, chunk, state, lengths=None):
        """(outputs, final state) of plain dynamic_rnn over `chunk` from `state`."""
        feed = self.feed(chunk, lengths)
        feed.update(zip(tf.nest.flatten(self.oracle_state), tf.nest.flatten(state)))
        return self.sess.run((self.oracle_outputs, self.oracle_final), feed)

    def zeros(self, batch=BATCH):
        return tf.nest.map_structure(lambda size: np.zeros([batch, size], np.float32), self.cell.state_size)

    def read(self):
        return self.rnn.state.read(self.sess)


def _stream(rng, batch=BATCH, steps=12):
    return rng.randn(batch, steps, DEPTH).astype(np.float32)


@pytest.mark.parametrize("time_major", [False, True], ids=["batch_major", "time_major"])
@pytest.mark.parametrize("cell_name", STATE_CELLS)
def test_chunked_stream_with_keep_equals_one_long_run(cell_name, time_major, rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess, _make(cell_name), time_major=time_major)
        expected_outputs, expected_final = model.oracle(stream, model.zeros())
        chunks = [model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]), step=0)]
        for t in (4, 8):
            chunks.append(sess.run([model.rnn.outputs, model.rnn.keep], model.feed(stream[:, t : t + 4]))[0])
        outputs = np.concatenate(chunks, axis=0 if time_major else 1)
        final = model.read()
    assert_nested_close(outputs, expected_outputs, atol=1e-5)
    assert_nested_close(final, expected_final, atol=1e-5)


def test_rows_shorter_than_the_chunk_carry_the_state_of_their_last_valid_step(rng):
    stream = _stream(rng, steps=8)
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4], lengths=[4, 2, 0]), step=0)
        _, expected_after_first = model.oracle(stream[:, :4], model.zeros(), lengths=[4, 2, 0])
        assert_nested_close(model.read(), expected_after_first)
        outputs = model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:]))
        expected_outputs, _ = model.oracle(stream[:, 4:], expected_after_first)
    assert_nested_close(outputs, expected_outputs)


def test_nested_inputs_given_as_numpy_arrays_reach_the_cell_whole(rng):
    a, b = rng.randn(2, 4, 2).astype(np.float32), rng.randn(2, 4, 1).astype(np.float32)
    expected, _ = nested_inputs_recurrence(a, b, np.zeros([2, 2], np.float32))
    with graph_session() as sess:
        rnn = tfstate.stateful_dynamic_rnn(NestedInputsCell(), (a[:, :2], tf.constant(b[:, :2])))
        later = tfstate.stateful_dynamic_rnn(NestedInputsCell(), (a[:, 2:], b[:, 2:]), name="later")
        sess.run(tf.compat.v1.global_variables_initializer())
        for state in (rnn.state, later.state):
            state.initialize_if_needed(sess)
        first = sess.run([rnn.outputs, rnn.keep])[0]
        later.state.assign(sess, rnn.state.read(sess))
        np.testing.assert_allclose(np.concatenate([first, sess.run(later.outputs)], 1), expected, atol=1e-5)


def test_peek_leaves_the_state_alone_and_keep_false_too(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]), step=0)
        before = model.read()
        peeked = sess.run(model.rnn.outputs, model.feed(stream[:, 4:8]))
        not_kept = model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:8]), keep=False)
        after = model.read()
        expected, _ = model.oracle(stream[:, 4:8], before)
    assert_nested_close(after, before, atol=0)
    assert_nested_close(peeked, expected)
    assert_nested_close(not_kept, expected)


def test_reset_fetch_and_step_zero_equal_a_fresh_start_and_other_steps_carry(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        fresh_outputs, fresh_final = model.oracle(stream[:, 4:8], model.zeros())
        model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]), step=0)
        carried = model.read()
        carried_outputs, _ = model.oracle(stream[:, 4:8], carried)

        assert_nested_close(model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:8]), step=0), fresh_outputs)
        assert_nested_close(model.read(), fresh_final)  # keep stored the state reached from zeros

        model.rnn.state.assign(sess, carried)
        assert_nested_close(model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:8]), step=7), carried_outputs)

        sess.run(model.rnn.reset)
        assert_nested_close(model.read(), model.zeros(), atol=0)
        assert_nested_close(sess.run(model.rnn.outputs, model.feed(stream[:, 4:8])), fresh_outputs)


def test_reset_rows_resets_exactly_those_rows(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]), step=0)
        carried = model.read()
        rows = np.array([False, True, False])
        mixed = tf.nest.map_structure(lambda c: np.where(rows[:, None], 0.0, c).astype(np.float32), carried)
        expected_outputs, expected_final = model.oracle(stream[:, 4:8], mixed)
        outputs = model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:8]), reset_rows=rows)
        final = model.read()
        carried_outputs, _ = model.oracle(stream[:, 4:8], carried)
    assert_nested_close(outputs, expected_outputs)
    assert_nested_close(final, expected_final)
    np.testing.assert_array_equal(outputs[[0, 2]], expected_outputs[[0, 2]])
    assert np.abs(outputs[1] - carried_outputs[1]).max() > 1e-3  # row 1 really was reset


def test_global_variables_initializer_leaves_the_state_alone(rng):
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        before = model.read()
        sess.run(tf.compat.v1.global_variables_initializer())
        after = model.read()
        variables = tf.nest.flatten(model.rnn.state.variables)
        assert not set(variables) & set(tf.compat.v1.global_variables())
        assert set(variables) <= set(tf.compat.v1.local_variables())
        collected = {v.op.name for v in tf.compat.v1.get_collection(tfstate.STATE_VARIABLES)}
        assert collected == {v.op.name for v in variables} | {"rnn_state/rows", "rnn_state/writes"}
        assert not set(variables) & set(tf.compat.v1.trainable_variables())
    assert_nested_close(after, before, atol=0)
    assert any(np.abs(part).max() > 0 for part in tf.nest.flatten(before))


def test_assign_then_run_equals_dynamic_rnn_from_that_state_and_read_returns_it(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        given = tf.nest.map_structure(lambda z: rng.randn(*z.shape), model.zeros())  # float64 is cast
        model.rnn.state.assign(sess, given)
        assert_nested_close(model.read(), given, atol=1e-7)
        outputs = model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]))
        expected, _ = model.oracle(stream[:, :4], given)
    assert_nested_close(outputs, expected)


def test_batch_size_none_takes_the_batch_of_the_run_that_resets_it(rng):
    with graph_session() as sess:
        model = Model(sess)
        small = _stream(rng, batch=2)
        model.stateful.run(model.rnn.outputs, model.feed(small[:, :4]), step=0)
        assert model.read()[0].c.shape == (2, 5)
        big = _stream(rng, batch=5)
        outputs = model.stateful.run(model.rnn.outputs, model.feed(big[:, :4]), step=0)
        expected, _ = model.oracle(big[:, :4], model.zeros(batch=5))
        assert_nested_close(outputs, expected)
        sess.run(model.rnn.reset)
        assert model.read()[1].h.shape == (5, 4)


def test_first_run_of_a_batch_size_none_state_starts_fresh_without_the_step_flag(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        outputs = sess.run([model.rnn.outputs, model.rnn.keep], model.feed(stream[:, :4]))[0]
        expected, expected_final = model.oracle(stream[:, :4], model.zeros())
        assert_nested_close(outputs, expected)
        assert_nested_close(model.read(), expected_final)


def test_batch_size_mismatch_is_a_clear_error_and_leaves_the_state_alone(rng):
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        before = model.read()
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=r"RNNState rnn_state holds 3 rows, but the run fed 2 rows"
        ):
            model.stateful.run(model.rnn.outputs, model.feed(_stream(rng, batch=2)[:, :4]))
        assert_nested_close(model.read(), before, atol=0)
    with graph_session() as sess:
        fixed = Model(sess, batch_size=3)
        fixed.stateful.run(fixed.rnn.outputs, fixed.feed(_stream(rng)[:, :4]), step=0)
        before = fixed.read()
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"holds 3 rows, but the run fed 2 rows.*fixed"):
            fixed.stateful.run(fixed.rnn.outputs, fixed.feed(_stream(rng, batch=2)[:, :4]), step=0)
        assert_nested_close(fixed.read(), before, atol=0)
    with graph_session():
        with pytest.raises(ValueError, match=r"has batch size 3, but the inputs have 2 rows"):
            tfstate.stateful_dynamic_rnn(tfstate.GRUCell(2), tf.zeros([2, 4, 1]), batch_size=3)


def test_assign_of_wrong_shapes_or_dtypes_is_a_clear_error_and_leaves_the_state_alone(rng):
    with graph_session() as sess:
        model = Model(sess, batch_size=3)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        before = model.read()
        good = model.zeros()
        bad_width = (good[0], tfstate.LSTMStateTuple(good[1].c, np.zeros([3, 5], np.float32)))
        bad_rows = tf.nest.map_structure(lambda z: np.zeros([2, z.shape[1]], np.float32), good)
        bad_dtype = (tfstate.LSTMStateTuple(good[0].c.astype(np.int32), good[0].h), good[1])
        cases = [
            (bad_width, r"part 'cell_1/h' has shape \[3, 4\]; got \[3, 5\]"),
            (bad_rows, r"part 'cell_0/c' has shape \[3, 5\]; got \[2, 5\]"),
            (bad_dtype, r"part 'cell_0/c' holds float32 values; got int32"),
            (good[0], r"The values for RNNState 'rnn_state' must be structured like the state_size"),
        ]
        for values, message in cases:
            with pytest.raises(ValueError, match=message):
                model.rnn.state.assign(sess, values)
            with pytest.raises(ValueError, match=message):
                model.stateful.set_state((values,))
            assert_nested_close(model.read(), before, atol=0)


def test_save_and_load_state_round_trip(tmp_path, rng):
    path = str(tmp_path / "state.npz")
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        saved = model.read()
        model.stateful.save_state(path)
        sess.run(model.rnn.reset)
        model.stateful.load_state(path)
        assert_nested_close(model.read(), saved, atol=0)
    assert not [name for name in os.listdir(tmp_path) if name != "state.npz"]  # no temporary left behind


def _npy_bytes(array, shape=None):
    """An .npy file's bytes for `array`, its header declaring `shape` when given (to forge a header)."""
    header = {
        "descr": np.lib.format.dtype_to_descr(array.dtype),
        "fortran_order": False,
        "shape": tuple(shape or array.shape),
    }
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, header)
    return stream.getvalue() + array.tobytes()


def _write_zip(path, members, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_bad_state_files_are_clear_errors_read_nothing_unchecked_and_leave_the_state_alone(tmp_path, rng, monkeypatch):
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        good = str(tmp_path / "good.npz")
        model.stateful.save_state(good)
        before = model.read()
        with zipfile.ZipFile(good) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        assert sorted(members) == [
            "__tfstate_format__.npy",
            "rnn_state/cell_0/c.npy",
            "rnn_state/cell_0/h.npy",
            "rnn_state/cell_1/c.npy",
            "rnn_state/cell_1/h.npy",
        ]
        files = {}

        def forged(name, changes=(), drop=(), compression=zipfile.ZIP_STORED):
            files[name] = str(tmp_path / name)
            _write_zip(
                files[name], {**{k: v for k, v in members.items() if k not in drop}, **dict(changes)}, compression
            )
            return files[name]

        (tmp_path / "truncated.npz").write_bytes(open(good, "rb").read()[:100])
        np.save(tmp_path / "plain.npy", np.zeros([3, 4], np.float32))
        np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
        h = "rnn_state/cell_1/h.npy"
        # a small file that would inflate to 256 MiB, under a name the state does not have
        bomb = forged(
            "bomb.npz", {"bomb.npy": _npy_bytes(np.zeros([64, 2**20], np.float32))}, compression=zipfile.ZIP_DEFLATED
        )
        assert os.path.getsize(bomb) < 2**20
        cases = [
            (str(tmp_path / "truncated.npz"), r"truncated.npz is not a tfstate state file \(an .npz archive\)"),
            (str(tmp_path / "plain.npy"), r"plain.npy is not a tfstate state file \(an .npz archive\)"),
            (str(tmp_path / "absent.npz"), r"absent.npz: no such file"),
            (str(tmp_path / "foreign.npz"), r"foreign.npz is not a tfstate state file: it has no '__tfstate_format__'"),
            (
                forged("malformed.npz", {"__tfstate_format__.npy": _npy_bytes(np.zeros(3))}),
                r"the '__tfstate_format__' entry must be a short string; got float64 of shape \[3\]",
            ),
            (
                forged("other.npz", {"__tfstate_format__.npy": _npy_bytes(np.array("tfstate-state-v9"))}),
                r"is a 'tfstate-state-v9' file; this reads 'tfstate-state-v2' or 'tfstate-state-v1'",
            ),
            (
                forged("missing.npz", drop=[h]),
                r"does not match the state it is loaded into: "
                r"missing \['rnn_state/cell_1/h'\], unexpected \[\]",
            ),
            (bomb, r"unexpected \['bomb'\]"),
            (
                forged("wrong_shape.npz", {h: _npy_bytes(np.zeros([3, 7], np.float32))}),
                r"'rnn_state/cell_1/h' must be a float array of shape \[rows, 4\]; the file declares float32 of "
                r"shape \[3, 7\]",
            ),
            (
                forged("wrong_dtype.npz", {h: _npy_bytes(np.zeros([3, 4], np.int32))}),
                r"'rnn_state/cell_1/h' must be a float array of shape \[rows, 4\]; the file declares int32",
            ),
            (
                forged("huge.npz", {h: _npy_bytes(np.zeros([3, 4], np.float32), shape=[10**12, 4])}),
                r"'rnn_state/cell_1/h' declares shape \[1000000000000, 4\] \(16000000000000 bytes\) but holds 48 "
                r"bytes; the file is damaged",
            ),
            (
                forged("rows.npz", {h: _npy_bytes(np.zeros([2, 4], np.float32))}),
                r"parts must all have the same batch size; got \[2, 3\]",
            ),
        ]
        opened = []
        real_open = zipfile.ZipFile.open
        monkeypatch.setattr(
            zipfile.ZipFile,
            "open",
            lambda self, name, *args, **kwargs: (
                opened.append(getattr(name, "filename", name)) or real_open(self, name, *args, **kwargs)
            ),
        )
        for path, message in cases:
            with pytest.raises(ValueError, match=message):
                model.stateful.load_state(path)
            assert_nested_close(model.read(), before, atol=0)
        assert "bomb.npy" not in opened  # rejected by name before a byte of it was inflated


def test_saved_state_is_keyed_by_state_name_so_rnns_given_in_another_order_get_their_own(tmp_path, rng):
    stream = _stream(rng)
    path = str(tmp_path / "two.npz")
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        first = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(3), x, scope="first", name="first_state")
        second = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(3), x, scope="second", name="second_state")
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        tfstate.StatefulSession(sess, first, second).run([first.outputs, second.outputs], {x: stream}, step=0)
        saved = first.state.read(sess), second.state.read(sess)
        assert np.abs(saved[0] - saved[1]).max() > 1e-3
        tfstate.StatefulSession(sess, first, second).save_state(path)
        swapped = tfstate.StatefulSession(sess, second, first)
        swapped.reset()
        swapped.load_state(path)
        np.testing.assert_array_equal(first.state.read(sess), saved[0])
        np.testing.assert_array_equal(second.state.read(sess), saved[1])
        before = second.state.read(sess)
        with pytest.raises(ValueError, match=r"missing \[\], unexpected \['first_state/state'\]"):
            tfstate.StatefulSession(sess, second).load_state(path)  # a file of another model
        np.testing.assert_array_equal(second.state.read(sess), before)


def test_a_version_1_state_file_loads_by_position(tmp_path, rng):
    with graph_session() as sess:
        model = Model(sess, _make("gru"))
        values = rng.randn(BATCH, 5).astype(np.float32)
        path = str(tmp_path / "v1.npz")
        np.savez(path, __tfstate_format__=np.array("tfstate-state-v1"), **{"0/state": values})
        model.stateful.load_state(path)
        np.testing.assert_array_equal(model.read(), values)


def test_reset_value_from_features_is_where_resets_start(rng):
    features = rng.randn(BATCH, 2).astype(np.float32)
    with graph_session() as sess:
        f = tf.compat.v1.placeholder(tf.float32, [None, 2])
        start = tfstate.layers.dense(f, 5, activation=tf.tanh, name="init_state")
        cell = tfstate.GRUCell(5)
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        rnn = tfstate.stateful_dynamic_rnn(cell, x, reset_value=start)
        oracle_outputs, _ = tf.compat.v1.nn.dynamic_rnn(cell, x, initial_state=start, scope="oracle")
        sess.run(tf.compat.v1.global_variables_initializer())
        stateful = tfstate.StatefulSession(sess, rnn)
        chunk = _stream(rng)[:, :4]
        outputs = stateful.run(rnn.outputs, {x: chunk, f: features}, step=0)
        expected = sess.run(oracle_outputs, {x: chunk, f: features})
        sess.run(rnn.reset, {f: features})
        reset_to = stateful.get_state()[0]
        expected_start = sess.run(start, {f: features})
    np.testing.assert_allclose(outputs, expected, atol=1e-6)
    np.testing.assert_allclose(reset_to, expected_start, atol=1e-6)


def test_two_stateful_rnns_in_one_graph_do_not_collide(rng):
    stream = _stream(rng)
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        encoder = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(3), x, scope="encoder")
        decoder = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(3), encoder.outputs, scope="decoder")
        names = [v.op.name for v in tf.compat.v1.get_collection(tfstate.STATE_VARIABLES)]
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        both = tfstate.StatefulSession(sess, encoder, decoder)
        both.run(decoder.outputs, {x: stream[:, :4]}, step=0)
        decoder_before = decoder.state.read(sess)
        sess.run(encoder.reset)  # a separate reset schedule
        encoder_after, decoder_after = both.get_state()
    assert names == [
        "rnn_state/state",
        "rnn_state/writes",
        "rnn_state/rows",
        "rnn_state_1/state",
        "rnn_state_1/writes",
        "rnn_state_1/rows",
    ]
    np.testing.assert_array_equal(encoder_after, 0)
    np.testing.assert_array_equal(decoder_after, decoder_before)
    assert np.abs(decoder_before).max() > 0


def test_running_state_ops_thousands_of_times_does_not_grow_the_graph(rng, tmp_path):
    chunk = _stream(rng)[:, :2]
    with graph_session() as sess:
        model = Model(sess, _make("gru"))
        graph = tf.compat.v1.get_default_graph()
        ops_before = len(graph.get_operations())
        graph.finalize()  # any op built from here on raises
        values = model.zeros()
        path = str(tmp_path / "s.npz")
        for i in range(1500):
            model.stateful.run(
                model.rnn.outputs,
                model.feed(chunk),
                step=0 if i % 100 == 0 else None,
                reset_rows=[i % 2 == 0, False, True],
            )
            sess.run([model.rnn.outputs, model.rnn.keep], model.feed(chunk))
            sess.run(model.rnn.reset)
            model.rnn.state.assign(sess, values)
            model.read()
            if i % 300 == 0:
                model.stateful.save_state(path)
                model.stateful.load_state(path)
        assert len(graph.get_operations()) == ops_before


def test_eager_mode_is_a_clear_error():
    assert tf.executing_eagerly()
    with pytest.raises(RuntimeError, match=r"stateful_dynamic_rnn builds a TF1 \(session\) graph"):
        tfstate.stateful_dynamic_rnn(tfstate.GRUCell(2), tf.zeros([1, 2, 2]))
    with pytest.raises(RuntimeError, match=r"RNNState builds a TF1 \(session\) graph"):
        tfstate.RNNState(tfstate.GRUCell(2), 1)


def test_state_is_resource_variables_and_keep_is_deterministic_under_disable_v2_behavior():
    script = textwrap.dedent("""
        import numpy as np, tensorflow as tf, tfstate
        tf.compat.v1.disable_v2_behavior()
        from tensorflow.python.ops import resource_variable_ops
        x = tf.compat.v1.placeholder(tf.float32, [2, 3, 2])
        rnn = tfstate.stateful_dynamic_rnn(tfstate.MultiRNNCell([tfstate.LSTMCell(8), tfstate.GRUCell(8)]), x)
        assert all(isinstance(v, resource_variable_ops.ResourceVariable)
                   for v in tf.nest.flatten(rnn.state.variables)), "state is not in resource variables"
        chunk = np.random.RandomState(0).randn(2, 3, 2).astype(np.float32)
        with tf.compat.v1.Session() as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            stateful = tfstate.StatefulSession(sess, rnn)
            runs = []
            for repeat in range(20):
                run = [stateful.run(rnn.outputs, {x: chunk}, step=0)]
                run += [sess.run([rnn.outputs, rnn.keep], {x: chunk})[0] for _ in range(9)]
                runs.append(run)
        for run in runs[1:]:
            for a, b in zip(run, runs[0]):
                np.testing.assert_array_equal(a, b)
        assert np.abs(runs[0][-1] - runs[0][0]).max() > 1e-3, "state was not carried"
        print("deterministic")
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "deterministic" in result.stdout


@pytest.mark.parametrize("grappler", [True, False], ids=["grappler", "no_grappler"])
def test_inputs_of_static_batch_carry_from_a_never_set_state_like_one_long_run(grappler, rng):
    # A static batch lets Grappler (and graph construction) treat the stored rows as constants:
    # the state must still start fresh on its first run and carry afterwards.
    stream = _stream(rng)
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = not grappler
    with tf.Graph().as_default(), tf.compat.v1.Session(config=config) as sess:
        start = tf.compat.v1.placeholder(tf.int32, [])
        chunk = tf.slice(tf.constant(stream), [0, start, 0], [BATCH, 4, DEPTH])  # static shape [3, 4, 4]
        cell = _make("multi_lstm")()
        rnn = tfstate.stateful_dynamic_rnn(cell, chunk)
        whole, _ = tf.compat.v1.nn.dynamic_rnn(cell, tf.constant(stream), dtype=tf.float32)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        tfstate.StatefulSession(sess, rnn)  # initializes the state
        chunks = [sess.run([rnn.outputs, rnn.keep], {start: t})[0] for t in (0, 4, 8)]
        assert_nested_close(np.concatenate(chunks, axis=1), sess.run(whole))


def _counting_rnn(x, **kwargs):
    return tfstate.stateful_dynamic_rnn(CountingCell(), x, **kwargs)


def _counting_model(steps):
    """A one-row counting RNN over chunks of `steps` steps: (rnn, its StatefulSession, a chunk's feed)."""
    x = tf.compat.v1.placeholder(tf.float32, [1, steps, 1])
    rnn = _counting_rnn(x, batch_size=1)
    return (
        rnn,
        tfstate.StatefulSession(tf.compat.v1.get_default_session(), rnn),
        {x: np.zeros([1, steps, 1], np.float32)},
    )


def test_threads_keeping_one_state_lose_no_update_and_reads_saves_and_resets_never_tear(tmp_path):
    steps, runs = 5, 200
    with graph_session() as sess:
        rnn, stateful, chunk = _counting_model(steps)
        torn = []

        def keeper(index):
            for _ in range(runs):
                outputs, _ = sess.run([rnn.outputs, rnn.keep], chunk)
                # each run started from a whole state: its outputs count on from one value
                np.testing.assert_array_equal(np.diff(outputs[0, :, 0]), 1)

        def watcher(index):
            for _ in range(runs):
                if index == 0:
                    state = rnn.state.read(sess)
                else:
                    path = str(tmp_path / f"state{index}.npz")
                    stateful.save_state(path)
                    with np.load(path) as saved:
                        state = tfstate.LSTMStateTuple(saved["rnn_state/c"], saved["rnn_state/h"])
                if not np.array_equal(state.c, state.h):
                    torn.append(state)

        in_threads(6, lambda index: keeper(index) if index < 4 else watcher(index - 4))
        final = rnn.state.read(sess)
        assert final.c[0, 0] == final.h[0, 0] == 4 * runs * steps
        assert not torn

        def resetter(index):
            for _ in range(runs):
                if index == 0:
                    sess.run(rnn.reset)
                else:
                    sess.run([rnn.outputs, rnn.keep], chunk)
                    state = rnn.state.read(sess)
                    if not np.array_equal(state.c, state.h):
                        torn.append(state)

        in_threads(3, resetter)
        assert not torn


def test_stateful_session_threads_on_one_state_count_exactly():
    steps, runs = 3, 50
    with graph_session() as sess:
        rnn, stateful, chunk = _counting_model(steps)
        in_threads(4, lambda index: [stateful.run(rnn.outputs, chunk) for _ in range(runs)])
        final = rnn.state.read(sess)
    assert final.c[0, 0] == final.h[0, 0] == 4 * runs * steps


def test_a_run_holding_one_state_blocks_runs_on_that_state_only():
    with graph_session() as sess:
        queue = tf.queue.FIFOQueue(1, tf.float32, shapes=[[1, 2, 1]])
        feed = tf.compat.v1.placeholder(tf.float32, [1, 2, 1])
        enqueue = queue.enqueue(feed)
        blocked = _counting_rnn(queue.dequeue(), batch_size=1, name="blocked")  # waits for the queue
        free = _counting_rnn(tf.zeros([1, 2, 1]), batch_size=1, name="free")
        locked = tf.queue.FIFOQueue(1, tf.int64, shapes=[[]])
        tell_locked = locked.enqueue(blocked.state.writes)  # read under the lock: the run holds it from here
        tfstate.StatefulSession(sess, blocked, free)
        finished = {}
        holder = threading.Thread(
            target=lambda: finished.update(holder=sess.run([blocked.outputs, blocked.keep, tell_locked]))
        )
        holder.start()
        sess.run(locked.dequeue())  # the holder has taken blocked's lock, and waits for its input
        waiter = threading.Thread(target=lambda: finished.update(waiter=sess.run(blocked.state.initial_state)))
        waiter.start()
        for _ in range(20):  # another state's runs go on meanwhile
            sess.run([free.outputs, free.keep])
        time.sleep(0.3)
        assert not finished, "a run on the locked state did not wait"
        sess.run(enqueue, {feed: np.zeros([1, 2, 1], np.float32)})
        holder.join(timeout=30)
        waiter.join(timeout=30)
        assert sorted(finished) == ["holder", "waiter"]
        assert free.state.read(sess).c[0, 0] == 40
        np.testing.assert_array_equal(tf.nest.flatten(finished["waiter"]), [[[2.0]], [[2.0]]])  # saw the kept state


@pytest.mark.parametrize("failure", ["check_numerics", "failing_fetch"])
def test_a_failed_stateful_session_run_leaves_the_state_as_it_was(failure, rng):
    stream = _stream(rng)
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(stream[:, :4]), step=0)
        before = model.read()
        scale = tf.compat.v1.placeholder_with_default(1.0, [])
        if failure == "check_numerics":
            fetch = tf.debugging.check_numerics(tf.reduce_sum(model.rnn.outputs) * scale, "loss")
            feed = {scale: np.nan}
        else:  # an op after the RNN that fails
            fetch = tf.debugging.assert_less(tf.reduce_max(model.rnn.outputs), -scale * 100)
            feed = {}
        with pytest.raises(tf.errors.InvalidArgumentError):
            model.stateful.run([model.rnn.outputs, fetch], {**model.feed(stream[:, 4:8]), **feed})
        assert_nested_close(model.read(), before, atol=0)
        expected, expected_final = model.oracle(stream[:, 4:8], before)
        assert_nested_close(model.stateful.run(model.rnn.outputs, model.feed(stream[:, 4:8])), expected)
        assert_nested_close(model.read(), expected_final)


def test_a_raw_keep_between_a_stateful_session_runs_two_steps_is_reported_not_lost(rng):
    class InterleavingSession:
        """Runs a raw keep right after StatefulSession's first run, as another thread could."""

        def __init__(self, sess, raw):
            self.sess, self.raw, self.armed = sess, raw, False

        def run(self, *args, **kwargs):
            result = self.sess.run(*args, **kwargs)
            if self.armed:
                self.armed = False
                self.sess.run(*self.raw)
            return result

    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [1, 2, 1])
        rnn = _counting_rnn(x, batch_size=1)
        chunk = {x: np.zeros([1, 2, 1], np.float32)}
        interleaving = InterleavingSession(sess, ([rnn.outputs, rnn.keep], chunk))
        stateful = tfstate.StatefulSession(interleaving, rnn)
        interleaving.armed = True
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"was written by another run"):
            stateful.run(rnn.outputs, chunk)
        assert rnn.state.read(sess).c[0, 0] == 2  # the raw run's update, not lost


def test_step_must_be_an_int_and_saving_into_a_missing_folder_names_the_file(rng, tmp_path):
    with graph_session() as sess:
        model = Model(sess)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=0)
        before = model.read()
        for step in (0.7, "0", True):
            with pytest.raises(
                ValueError,
                match=r"step must be an int \(0 starts from the reset value\) or None; "
                rf"got {step!r}",
            ):
                model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=step)
        assert_nested_close(model.read(), before, atol=0)
        model.stateful.run(model.rnn.outputs, model.feed(_stream(rng)[:, :4]), step=np.int64(0))
        with pytest.raises(FileNotFoundError, match=r"cannot write .*missing/state.npz: no such folder"):
            model.stateful.save_state(str(tmp_path / "missing" / "state.npz"))


def test_stateful_session_names_what_it_takes_when_given_a_keyed_rnn_a_bare_state_or_an_rnn_twice():
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        rnn = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(2), x, scope="plain")
        keyed = tfstate.keyed_dynamic_rnn(
            tfstate.GRUCell(2), x, tf.compat.v1.placeholder(tf.int64, [None]), capacity=2, scope="keyed"
        )
        with pytest.raises(TypeError, match=r"takes a StatefulRNN .*; got KeyedRNN\. A KeyedRNN keeps its streams"):
            tfstate.StatefulSession(sess, keyed)
        with pytest.raises(TypeError, match=r"takes a StatefulRNN .*; got list of \['StatefulRNN', 'RNNState'\]\.$"):
            tfstate.StatefulSession(sess, rnn, rnn.state)
        with pytest.raises(
            ValueError, match=r"got the same StatefulRNN twice \(state names \['rnn_state', 'rnn_state'\]\)"
        ):
            tfstate.StatefulSession(sess, rnn, rnn)
        assert not sess.run(rnn.state._is_initialized)  # nothing was initialized on the way to those errors
