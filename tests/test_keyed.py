"""KeyedState / keyed_dynamic_rnn: interleaved streams against each stream run alone, and the table's rules."""

import threading
import time
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    CountingCell,
    NestedInputsCell,
    assert_nested_close,
    graph_session,
    in_threads,
    nested_inputs_recurrence,
    randomize_variables,
)

import tfstate
from tfstate.fused import FusedMultiRNNCell, LSTMBlockCell

DEPTH = 3

CELLS = {
    "multi_lstm": lambda: tfstate.MultiRNNCell([tfstate.LSTMCell(4), tfstate.LSTMCell(3)]),
    "multi_mixed_concat": lambda: tfstate.MultiRNNCell(
        [tfstate.LSTMCell(4, state_is_tuple=False), tfstate.GRUCell(3)], state_is_tuple=False
    ),
    "fused_lstm_whole_chunk": lambda: LSTMBlockCell(4, implementation="block"),
    "fused_stack_whole_chunk": lambda: FusedMultiRNNCell(
        [LSTMBlockCell(4, implementation="block"), LSTMBlockCell(3, implementation="block")]
    ),
}


class KeyedModel:
    """A keyed RNN and, sharing its cell's weights, plain `dynamic_rnn` from a fed state (the oracle)."""

    def __init__(self, sess, make_cell=CELLS["multi_lstm"], key_dtype=tf.int64, **kwargs):
        self.sess = sess
        self.x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        self.keys = tf.compat.v1.placeholder(key_dtype, [None])
        self.cell = make_cell()
        kwargs.setdefault("capacity", 64)
        self.krnn = tfstate.keyed_dynamic_rnn(self.cell, self.x, self.keys, **kwargs)
        self.table = self.krnn.state
        self.oracle_state = tf.nest.map_structure(
            lambda size: tf.compat.v1.placeholder(tf.float32, [None, size]), self.cell.state_size
        )
        self.oracle_outputs, self.oracle_final = tf.compat.v1.nn.dynamic_rnn(
            self.cell, self.x, initial_state=self.oracle_state, scope="rnn"
        )
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        self.table.initialize_if_needed(sess)

    def run(self, keys, chunk, keep=True, start=None):
        feed = {self.x: chunk, self.keys: keys}
        if start is not None:
            feed[self.krnn.start] = start
        fetches = [self.krnn.outputs, self.krnn.found] + ([self.krnn.keep] if keep else [])
        return self.sess.run(fetches, feed)[:2]

    def alone(self, chunk, state=None):
        """(outputs, final state) of plain dynamic_rnn over `chunk` from `state` (zeros by default)."""
        if state is None:
            state = tf.nest.map_structure(lambda size: np.zeros([len(chunk), size], np.float32), self.cell.state_size)
        feed = {self.x: chunk}
        feed.update(zip(tf.nest.flatten(self.oracle_state), tf.nest.flatten(state)))
        return self.sess.run((self.oracle_outputs, self.oracle_final), feed)

    def stored(self):
        return self.table.read(self.sess)


def _streams(rng, count, steps):
    return rng.uniform(-1, 1, (count, steps, DEPTH)).astype(np.float32)


@pytest.mark.parametrize("cell_name", CELLS)
def test_interleaved_streams_with_keep_equal_each_stream_run_alone(cell_name, rng):
    streams = _streams(rng, 5, 9)
    with graph_session() as sess:
        model = KeyedModel(sess, CELLS[cell_name])
        keys = np.array([101, 7, -3, 2**40, 55])
        position = np.zeros(len(keys), int)
        outputs = [[] for _ in keys]
        while (position < streams.shape[1]).any():  # a random subset of unfinished streams, a random chunk length
            length = rng.randint(1, 4)
            rows = [r for r in rng.permutation(len(keys)) if position[r] + length <= streams.shape[1]]
            rows = rows[: rng.randint(1, len(rows) + 1)] if rows else [int(np.argmin(position))]
            length = min(length, streams.shape[1] - position[rows].max())
            chunk = np.stack([streams[r, position[r] : position[r] + length] for r in rows])
            out, found = model.run(keys[rows], chunk)
            np.testing.assert_array_equal(found, position[rows] > 0)  # seen streams continue, new ones start
            for index, r in enumerate(rows):
                outputs[r].append(out[index])
                position[r] += length
        expected, expected_final = model.alone(streams)
        for r in range(len(keys)):
            np.testing.assert_allclose(np.concatenate(outputs[r]), expected[r], atol=1e-5, rtol=0)
        stored = model.stored()
        assert sorted(stored) == sorted(keys.tolist())
        for r, key in enumerate(keys):
            assert_nested_close(stored[int(key)], tf.nest.map_structure(lambda part: part[r], expected_final))


def test_a_peek_changes_nothing_not_even_which_stream_is_evicted(rng):
    streams = _streams(rng, 4, 4)
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=3)
        for key in (1, 2, 3):
            model.run([key], streams[key : key + 1, :2])
        before = model.stored()
        peeked, found = model.run([1, 9], streams[[1, 0], 2:], keep=False)
        again, _ = model.run([1, 9], streams[[1, 0], 2:], keep=False)
        np.testing.assert_array_equal(found, [True, False])
        np.testing.assert_array_equal(peeked, again)
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)
        assert sess.run(model.table.size) == 3
        model.run([4], streams[:1, :2])  # over capacity: drops the least recently kept, 1, the one peeked
        assert sorted(model.stored()) == [2, 3, 4]


def test_capacity_drops_the_least_recently_kept_streams_which_then_start_afresh(rng):
    streams = _streams(rng, 1, 2)
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=3)
        for keys in ([1], [2], [3], [1], [4, 5]):
            model.run(keys, np.repeat(streams[:, :1], len(keys), 0))
        assert sorted(model.stored()) == [1, 4, 5]  # 2, then 3, were kept least recently
        assert sess.run(model.table.size) == 3
        out, found = model.run([2, 1], np.repeat(streams[:, 1:], 2, 0))
        np.testing.assert_array_equal(found, [False, True])
        np.testing.assert_allclose(out[0], model.alone(streams[:, 1:])[0][0], atol=1e-6)


def test_a_stream_idle_for_more_than_max_idle_keeps_starts_afresh(rng):
    streams = _streams(rng, 1, 2)
    with graph_session() as sess:
        model = KeyedModel(sess, max_idle=2)
        model.run([1], streams[:, :1])
        model.run([2], streams[:, :1])
        model.run([3], streams[:, :1])
        assert model.run([1], streams[:, 1:], keep=False)[1].tolist() == [True]  # kept 2 keeps ago
        model.run([4], streams[:, :1])
        out, found = model.run([1, 3], np.repeat(streams[:, 1:], 2, 0), keep=False)
        np.testing.assert_array_equal(found, [False, True])
        np.testing.assert_allclose(out[0], model.alone(streams[:, 1:])[0][0], atol=1e-6)


def test_start_flags_and_end_restart_exactly_those_streams(rng):
    streams = _streams(rng, 3, 4)
    with graph_session() as sess:
        model = KeyedModel(sess, key_dtype=tf.string)
        keys = np.array([b"alice", b"bob", "çé".encode()])
        model.run(keys, streams[:, :2])
        out, found = model.run(keys, streams[:, 2:], start=[False, True, False])
        np.testing.assert_array_equal(found, [True, False, True])
        whole = model.alone(streams)[0]
        fresh = model.alone(streams[:, 2:])[0]
        np.testing.assert_allclose(out[[0, 2]], whole[[0, 2], 2:], atol=1e-5, rtol=0)
        np.testing.assert_allclose(out[1], fresh[1], atol=1e-5, rtol=0)
        ended = sess.run(
            model.krnn.end_keys.graph.get_tensor_by_name(model.table.ended.name),
            {model.krnn.end_keys: [b"bob", b"nobody"]},
        )
        np.testing.assert_array_equal(ended, [True, False])
        assert sorted(model.stored()) == [b"alice", "çé".encode()]
        out, found = model.run([b"bob"], streams[1:2, :2])
        assert not found[0]
        np.testing.assert_allclose(out[0], whole[1, :2], atol=1e-5, rtol=0)


def test_an_unseen_key_starts_from_a_reset_value_computed_from_the_runs_features(rng):
    streams = _streams(rng, 2, 3)
    features = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
    with graph_session() as sess:
        speaker = tf.compat.v1.placeholder(tf.float32, [None, 4])
        reset = tfstate.LSTMStateTuple(tf.tanh(speaker), 2 * speaker)
        model = KeyedModel(sess, lambda: tfstate.LSTMCell(4), reset_value=reset)
        out, _ = sess.run(
            [model.krnn.outputs, model.krnn.keep], {model.x: streams[:, :2], model.keys: [5, 6], speaker: features}
        )
        expected, _ = model.alone(streams, tfstate.LSTMStateTuple(np.tanh(features), 2 * features))
        np.testing.assert_allclose(out, expected[:, :2], atol=1e-5, rtol=0)
        out = sess.run(model.krnn.outputs, {model.x: streams[:, 2:], model.keys: [5, 6], speaker: 0 * features})
        np.testing.assert_allclose(out, expected[:, 2:], atol=1e-5, rtol=0)  # carried: the reset value unused


def test_generate_continues_streams_by_key_and_keeps_where_it_stopped(rng):
    streams = _streams(rng, 2, 3)
    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.LSTMCell(DEPTH))
        first = tf.compat.v1.placeholder(tf.float32, [None, DEPTH])
        generated, final = tfstate.generate(model.cell, first, 4, tf.tanh, initial_state=model.krnn)
        keep = model.krnn.lookup.keep(final)
        given = tf.nest.map_structure(
            lambda size: tf.compat.v1.placeholder(tf.float32, [None, size]), model.cell.state_size
        )
        oracle, oracle_final = tfstate.generate(model.cell, first, 4, tf.tanh, initial_state=given)
        model.run([8, 9], streams[:, :3])
        state = model.stored()
        carried = tf.nest.map_structure(lambda *rows: np.stack(rows), state[9], state[8])
        got, _ = sess.run([generated, keep], {first: streams[::-1, 0], model.keys: [9, 8]})  # no inputs fed
        feed = {first: streams[::-1, 0]}
        feed.update(zip(tf.nest.flatten(given), tf.nest.flatten(carried)))
        expected, expected_final = sess.run((oracle, oracle_final), feed)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        assert_nested_close(model.stored()[9], tf.nest.map_structure(lambda part: part[0], expected_final))


def test_dynamic_rnn_with_states_on_a_lookup_carries_every_timestep_across_chunks(rng):
    streams = _streams(rng, 2, 4)
    with graph_session() as sess:
        x = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        keys = tf.compat.v1.placeholder(tf.int64, [None])
        cell = tfstate.GRUCell(3)
        table = tfstate.KeyedState(cell, capacity=8)
        lookup = table.lookup(keys)
        outputs, states, final = tfstate.dynamic_rnn_with_states(cell, x, initial_state=lookup.initial_state)
        keep = lookup.keep(final)
        _, whole_states, _ = tfstate.dynamic_rnn_with_states(cell, x, dtype=tf.float32)
        sess.run(tf.compat.v1.global_variables_initializer())
        randomize_variables(sess)
        table.initialize_if_needed(sess)
        chunks = [sess.run([states, keep], {x: streams[:, t : t + 2], keys: [3, 4]})[0] for t in (0, 2)]
        np.testing.assert_allclose(np.concatenate(chunks, 1), sess.run(whole_states, {x: streams}), atol=1e-5)


def test_bad_keys_and_batches_are_clear_errors_that_leave_the_table_alone(rng):
    streams = _streams(rng, 3, 2)
    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3))
        model.run([1, 2], streams[:2])
        before = model.stored()
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"keys appear more than once.*\[2\]"):
            model.run([2, 5, 2], streams)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"got\] \[3\] \[keys but\] \[2\] \[rows of inputs"):
            model.run([1, 2, 3], streams[:2])
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"\[2\] \[start flags"):
            model.run([1, 2, 3], streams, start=[True, False])
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)
        with pytest.raises(ValueError, match=r"keys are int64 .integers.; got float64 keys"):
            model.table.check_keys(np.array([1.5, 2.0]))
        with pytest.raises(ValueError, match="key 3 appears more than once"):
            model.table.check_keys([3, 4, 3])
        np.testing.assert_array_equal(model.table.check_keys(np.array([4, 5], np.int32)), [4, 5])
        with pytest.raises(ValueError, match="has int64 keys; lookup got float32 keys"):
            model.table.lookup(tf.constant([1.0]))
        with pytest.raises(ValueError, match="got 2 keys for inputs of 3 rows"):
            tfstate.keyed_dynamic_rnn(
                model.cell, tf.zeros([3, 2, DEPTH]), tf.constant([1, 2], tf.int64), state=model.table
            )
        with pytest.raises(ValueError, match="needs capacity"):
            tfstate.keyed_dynamic_rnn(model.cell, model.x, model.keys)
        with pytest.raises(ValueError, match="key_dtype"):
            tfstate.KeyedState(model.cell, 4, key_dtype=tf.float32)
        with pytest.raises(ValueError, match=r"KeyedState 'wide' reset_value for 'state' must end in \[3\]; got shape"):
            tfstate.KeyedState(model.cell, 4, reset_value=tf.zeros([5]), name="wide")
        with pytest.raises(ValueError, match="needs capacity an int >= 1; got 0"):
            tfstate.KeyedState(model.cell, 0)
        with pytest.raises(ValueError, match="start flags must be bool; got int32"):
            model.table.lookup(model.keys, start=tf.zeros([2], tf.int32))


def test_check_keys_takes_an_empty_batch_and_object_arrays_by_their_elements(rng):
    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3))
        empty = model.table.check_keys([])  # np.asarray([]) is float64
        assert empty.dtype == np.int64 and empty.shape == (0,)
        out, found = model.run(empty, np.zeros([0, 2, DEPTH], np.float32))
        assert out.shape == (0, 2, 3) and found.shape == (0,)
        np.testing.assert_array_equal(model.table.check_keys(np.array([7, 2**40], object)), [7, 2**40])
        with pytest.raises(ValueError, match=r"keys are int64 \(integers\); got object keys \['12'\]"):
            model.table.check_keys(np.array(["12"], object))  # would be cast to the key 12
        strings = tfstate.KeyedState(model.cell, 4, key_dtype=tf.string, name="strings")
        assert strings.check_keys([]).shape == (0,)
        assert strings.check_keys(np.array([b"a", "b"], object)).tolist() == [b"a", "b"]
        with pytest.raises(ValueError, match=r"key b'\\xc3\\xa9' appears more than once"):
            strings.check_keys(np.array(["é".encode(), "é"], object))  # one key to TensorFlow


def test_keys_given_as_a_python_list_of_ints_are_int64_and_int32_keys_are_told_to_cast(rng):
    streams = _streams(rng, 2, 2)
    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3))
        listed = tfstate.keyed_dynamic_rnn(model.cell, model.x, [4, 5], state=model.table)
        lookup = model.table.lookup([4, 5])
        assert listed.keys.dtype == lookup.keys.dtype == tf.int64
        out, _ = sess.run([listed.outputs, listed.keep], {model.x: streams[:, :1]})
        expected, _ = model.alone(streams)
        np.testing.assert_allclose(out, expected[:, :1], atol=1e-5, rtol=0)
        np.testing.assert_array_equal(sess.run(lookup.found), [True, True])
        with pytest.raises(
            ValueError, match=r"got key_dtype int32\. Cast integer keys with tf\.cast\(keys, tf\.int64\)"
        ):
            tfstate.keyed_dynamic_rnn(model.cell, model.x, tf.compat.v1.placeholder(tf.int32, [None]), capacity=4)
        with pytest.raises(ValueError, match=r"has int64 keys; lookup got int32 keys \(.*\)\. Cast them\.$"):
            model.table.lookup(tf.constant([1, 2], tf.int32))  # not "build the table with key_dtype=int32"


def test_keys_of_unknown_rank_fed_in_another_shape_than_batch_are_an_error_that_leaves_the_table_alone(rng):
    streams = _streams(rng, 2, 1)
    with graph_session() as sess:
        keys = tf.compat.v1.placeholder(tf.int64)  # rank unknown when the graph is built
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3))
        krnn = tfstate.keyed_dynamic_rnn(model.cell, model.x, keys, state=model.table)
        sess.run(krnn.keep, {model.x: streams, keys: [1, 2]})
        before = model.stored()
        for fed in ([[1, 2]], [[1], [2]], 1):
            with pytest.raises(tf.errors.InvalidArgumentError, match=r"needs keys of shape \[batch\].*got shape"):
                sess.run(krnn.keep, {model.x: streams[: np.size(fed)], keys: fed})
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)


def test_nested_inputs_given_as_numpy_arrays_reach_the_cell_whole(rng):
    a, b = rng.randn(2, 4, 2).astype(np.float32), rng.randn(2, 4, 1).astype(np.float32)
    expected, _ = nested_inputs_recurrence(a, b, np.zeros([2, 2], np.float32))
    with graph_session() as sess:
        krnn = tfstate.keyed_dynamic_rnn(NestedInputsCell(), (a[:, :2], tf.constant(b[:, :2])), [1, 2], capacity=4)
        later = tfstate.keyed_dynamic_rnn(NestedInputsCell(), (a[:, 2:], b[:, 2:]), [1, 2], state=krnn.state)
        sess.run(krnn.state.initializer)
        chunks = [sess.run([rnn.outputs, rnn.keep])[0] for rnn in (krnn, later)]  # the second continues the first
        np.testing.assert_allclose(np.concatenate(chunks, 1), expected, atol=1e-5)


def test_save_and_load_round_trip_and_foreign_files_are_refused_without_change(tmp_path, rng):
    streams = _streams(rng, 3, 4)
    with graph_session() as sess:
        model = KeyedModel(sess, key_dtype=tf.string, capacity=3)
        keys = np.array([b"a", b"b\x00", b""])  # trailing NUL and empty keys survive the file
        model.run(keys, streams[:, :2])
        path = str(tmp_path / "table.npz")
        model.table.save(sess, path)
        continued, _ = model.run(keys, streams[:, 2:])
        model.run([b"c"], streams[:1, :2])
        model.table.load(sess, path)
        assert sorted(model.stored()) == sorted(keys.tolist())
        np.testing.assert_array_equal(model.run(keys, streams[:, 2:])[0], continued)

        other = tf.compat.v1.placeholder(tf.float32, [None, None, DEPTH])
        small = tfstate.keyed_dynamic_rnn(
            tfstate.GRUCell(2), other, tf.compat.v1.placeholder(tf.string, [None]), capacity=2, name="other_model"
        )
        ints = tfstate.KeyedState(model.cell, capacity=8, name=model.table.name.split("/")[-1] + "_ints")
        sess.run([small.state.initializer, ints.initializer])
        before = model.stored()
        with pytest.raises(ValueError, match="does not match the state it is loaded into"):
            small.state.load(sess, path)  # another model's table
        with pytest.raises(ValueError, match=r"is a 'tfstate-keyed-v1' file|does not match"):
            ints.load(sess, path)
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)
        assert sess.run(small.state.size) == sess.run(ints.size) == 0


def test_a_table_file_with_more_streams_than_capacity_or_damaged_offsets_is_refused(tmp_path, rng):
    streams = _streams(rng, 3, 1)
    with graph_session() as sess:
        model = KeyedModel(sess, key_dtype=tf.string, capacity=3)
        smaller = tfstate.KeyedState(model.cell, capacity=2, key_dtype=tf.string, name="smaller")
        sess.run(smaller.initializer)
        model.run([b"x", b"y", b"z"], streams)
        path = str(tmp_path / "table.npz")
        model.table.save(sess, path)
        renamed = {}
        with np.load(path) as saved:
            for name in saved.files:
                renamed[name.replace(model.table.name, "smaller")] = saved[name]
        np.savez(str(tmp_path / "renamed.npz"), **renamed)
        with pytest.raises(ValueError, match="holds 3 streams; KeyedState 'smaller' has capacity 2"):
            smaller.load(sess, str(tmp_path / "renamed.npz"))
        renamed["smaller/keys_offsets"] = renamed["smaller/keys_offsets"] + 1
        np.savez(str(tmp_path / "damaged.npz"), **renamed)
        with pytest.raises(ValueError, match=r"key offsets .* do not fit"):
            smaller.load(sess, str(tmp_path / "damaged.npz"))
        assert sess.run(smaller.size) == 0


def test_an_empty_tables_file_loads_and_empties_the_table(tmp_path, rng):
    streams = _streams(rng, 2, 1)
    for key_dtype, keys in ((tf.int64, [1, 2]), (tf.string, [b"a", b"b"])):
        with graph_session() as sess:
            model = KeyedModel(sess, key_dtype=key_dtype)
            path = str(tmp_path / f"empty_{key_dtype.name}.npz")
            model.table.save(sess, path)  # a table that holds no stream yet
            model.run(keys, streams)
            model.table.load(sess, path)
            assert model.stored() == {}
            assert sess.run(model.table.size) == 0


def test_a_table_file_with_keep_counts_outside_its_clock_is_refused_without_change(tmp_path, rng):
    streams = _streams(rng, 3, 1)
    with graph_session() as sess:
        model = KeyedModel(sess)
        model.run([1, 2, 3], streams)
        path = str(tmp_path / "table.npz")
        model.table.save(sess, path)
        with np.load(path) as saved:
            arrays = dict(saved)
        before = model.stored()
        kept_name = f"{model.table.name}/kept"
        for kept in ([-5, 1, 1], [100, 1, 1]):  # the clock is 1: every stream was kept by the first keep
            np.savez(str(tmp_path / "damaged.npz"), **{**arrays, kept_name: np.array(kept, np.int64)})
            with pytest.raises(ValueError, match=r"keep counts of table '.*' must lie in \[0, 1\] \(its clock\); got"):
                model.table.load(sess, str(tmp_path / "damaged.npz"))
            tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)
            assert sess.run(model.table.size) == 3


def test_a_table_file_with_a_corrupted_byte_is_a_state_file_error(tmp_path, rng):
    with graph_session() as sess:
        model = KeyedModel(sess)
        model.run([1, 2], _streams(rng, 2, 1))
        path = str(tmp_path / "table.npz")
        model.table.save(sess, path)
        data = bytearray(open(path, "rb").read())
        with zipfile.ZipFile(path) as archive:  # the last byte of each member flipped: its CRC no longer matches
            ends = [info.header_offset + 30 + len(info.filename) + info.compress_size for info in archive.infolist()]
        before = model.stored()
        for end in ends:
            damaged = bytearray(data)
            damaged[end - 1] ^= 0xFF
            (tmp_path / "damaged.npz").write_bytes(damaged)
            with pytest.raises(ValueError, match=r"damaged\.npz.*(damaged|cannot be read|CRC)"):
                model.table.load(sess, str(tmp_path / "damaged.npz"))
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)


def test_a_plain_saver_leaves_the_table_out_and_the_opt_in_saveable_restores_it(tmp_path, rng):
    streams = _streams(rng, 2, 4)
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=2)
        model.run([1, 2], streams[:, :2])
        continued, _ = model.run([1, 2], streams[:, 2:], keep=False)
        weights_only = tf.compat.v1.train.Saver()
        with_table = tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.keyed.saveables())
        assert tfstate.keyed.saveables() == [model.table.saveable] == tfstate.keyed.saveables(model.krnn)
        assert tfstate.saveable_state(model.krnn) == [model.table.saveable]  # the one opt-in for every kind of state
        assert tfstate.saveable_state()[-1] is model.table.saveable
        weights_only.save(sess, str(tmp_path / "weights"))
        with_table.save(sess, str(tmp_path / "both"))
        names = [name for name, _ in tf.train.list_variables(str(tmp_path / "weights"))]
        assert not any(name.startswith(model.table.name) for name in names)
        sess.run(model.table.initializer)
        weights_only.restore(sess, str(tmp_path / "weights"))
        assert sess.run(model.table.size) == 0
        with_table.restore(sess, str(tmp_path / "both"))
        sess.run(tf.compat.v1.local_variables_initializer())  # as MonitoredTrainingSession does after a restore
        np.testing.assert_array_equal(model.run([1, 2], streams[:, 2:], keep=False)[0], continued)
        model.run([3], streams[:1, :1])  # the keep count went on past the restored ones: 3 is the newest
        assert sorted(model.stored()) in ([1, 3], [2, 3])


def test_initialize_if_needed_after_a_restore_or_load_in_a_new_process_keeps_the_streams(tmp_path, rng):
    streams = _streams(rng, 2, 3)

    def restarted(restore):  # a new process: the graph built again, a new session restores, then readies the table
        with graph_session() as built:
            model = KeyedModel(built, lambda: tfstate.GRUCell(3))
            savers = (
                tf.compat.v1.train.Saver(),
                tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.keyed.saveables()),
            )
            with tf.compat.v1.Session() as sess:
                model.sess = sess
                restore(sess, model, *savers)
                model.table.initialize_if_needed(sess)
                return model.run([1, 2], streams[:, 2:]), model.alone(streams)[0]

    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3))
        model.run([1, 2], streams[:, :2])
        saver = tf.compat.v1.train.Saver(tf.compat.v1.global_variables() + tfstate.keyed.saveables())
        saver.save(sess, str(tmp_path / "ckpt"))
        model.table.save(sess, str(tmp_path / "table.npz"))

    def from_checkpoint(sess, model, weights_saver, saver):
        saver.restore(sess, str(tmp_path / "ckpt"))

    def from_file(sess, model, weights_saver, saver):
        weights_saver.restore(sess, str(tmp_path / "ckpt"))
        model.table.load(sess, str(tmp_path / "table.npz"))

    for restore in (from_checkpoint, from_file):
        (out, found), whole = restarted(restore)
        np.testing.assert_array_equal(found, [True, True])
        np.testing.assert_allclose(out, whole[:, 2:], atol=1e-5, rtol=0)


def test_a_checkpoint_with_more_streams_than_capacity_is_refused_without_change(tmp_path, rng):
    streams = _streams(rng, 3, 1)
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=8)
        model.run([1, 2, 3], streams)
        tf.compat.v1.train.Saver(tfstate.keyed.saveables()).save(sess, str(tmp_path / "three"))
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=2)
        model.run([7], streams[:1])
        before = model.stored()
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"checkpoint holds\] \[3\] \[streams; the table has"):
            tf.compat.v1.train.Saver(tfstate.keyed.saveables()).restore(sess, str(tmp_path / "three"))
        tf.nest.map_structure(np.testing.assert_array_equal, model.stored(), before)


def test_a_keep_of_another_number_of_rows_than_keys_fails_without_counting_as_a_keep(rng):
    streams = _streams(rng, 2, 1)
    with graph_session() as sess:
        model = KeyedModel(sess, lambda: tfstate.GRUCell(3), max_idle=1)
        wrong = model.krnn.lookup.keep(tf.zeros([3, 3]))
        model.run([1, 2], streams)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"keep got\] \[3\] \[state rows for\] \[2\] \[keys"):
            sess.run(wrong, {model.keys: [3, 4]})
        assert sorted(model.stored()) == [1, 2]
        model.run([5], streams[:1])  # one keep since 1 was kept: not idle for more than max_idle=1
        _, found = model.run([1], streams[:1], keep=False)
        np.testing.assert_array_equal(found, [True])


def test_runs_on_a_table_never_grow_the_graph(tmp_path, rng):
    streams = _streams(rng, 2, 2)
    with graph_session() as sess:
        model = KeyedModel(sess, capacity=2)
        path = str(tmp_path / "table.npz")
        model.run([1, 2], streams)
        model.table.save(sess, path)
        sess.graph.finalize()
        for key in range(30):
            model.run([key, key + 100], streams, keep=key % 3 != 0)
            sess.run(model.krnn.end, {model.krnn.end_keys: [key]})
        model.table.save(sess, path)
        model.table.load(sess, path)
        model.table.read(sess)


def test_eager_mode_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"tfstate.KeyedState builds a TF1 .session. graph"):
        tfstate.KeyedState(tfstate.LSTMCell(2), capacity=4)


def _counting_table(sess, steps, capacity=64):
    x = tf.compat.v1.placeholder(tf.float32, [None, steps, 1])
    keys = tf.compat.v1.placeholder(tf.int64, [None])
    krnn = tfstate.keyed_dynamic_rnn(CountingCell(), x, keys, capacity=capacity)
    krnn.state.initialize_if_needed(sess)
    return x, keys, krnn


def test_eight_threads_on_interleaved_keys_count_every_step_exactly_and_reads_never_see_a_torn_row():
    steps, runs, threads, batch = 3, 50, 8, 3
    with graph_session() as sess:
        x, keys, krnn = _counting_table(sess, steps)
        chunk = np.zeros([batch, steps, 1], np.float32)
        used = [np.zeros(12, int) for _ in range(threads)]
        torn = []

        def worker(index):
            rng = np.random.RandomState(index)
            for _ in range(runs):
                rows = rng.choice(12, batch, replace=False)  # keys shared with every other thread
                initial, _ = sess.run([krnn.initial_state, krnn.keep], {x: chunk, keys: rows})
                if not np.array_equal(initial.c, initial.h):
                    torn.append(initial)
                used[index][rows] += 1
                peeked = sess.run(krnn.initial_state, {x: chunk, keys: rng.choice(12, batch, replace=False)})
                if not np.array_equal(peeked.c, peeked.h):
                    torn.append(peeked)
                if rng.rand() < 0.1:  # a whole-table read waits for the runs in flight, and stops new ones
                    torn.extend(row for row in krnn.state.read(sess).values() if row.c[0] != row.h[0])

        in_threads(threads, worker)
        expected = steps * sum(used)
        stored = krnn.state.read(sess)
        assert not torn
        np.testing.assert_array_equal([stored[key].c[0] for key in range(12)], expected)
        np.testing.assert_array_equal([stored[key].h[0] for key in range(12)], expected)


def test_a_run_holding_keys_blocks_runs_on_those_keys_only():
    with graph_session() as sess:
        keys = tf.compat.v1.placeholder(tf.int64, [None])
        table = tfstate.KeyedState(CountingCell(), capacity=16)
        gate = tf.queue.FIFOQueue(1, tf.float32, shapes=[[]])
        told = tf.queue.FIFOQueue(1, tf.int32, shapes=[[]])
        slow = table.lookup(keys)
        with tf.control_dependencies([told.enqueue(tf.size(slow.found))]):  # the keys are claimed from here
            opened = gate.dequeue()
        slow_keep = slow.keep(tf.nest.map_structure(lambda part: part + opened, slow.initial_state))
        fast = table.lookup(keys)
        fast_keep = fast.keep(tf.nest.map_structure(lambda part: part + 1, fast.initial_state))
        table.initialize_if_needed(sess)
        finished = []
        holder = threading.Thread(target=lambda: finished.append(sess.run(slow_keep, {keys: [1, 2]})))
        holder.start()
        sess.run(told.dequeue())  # the holder claimed 1 and 2 and waits for the gate
        waiter = threading.Thread(target=lambda: finished.append(sess.run(fast_keep, {keys: [2, 3]})))
        waiter.start()
        for _ in range(10):  # other keys go on meanwhile
            sess.run(fast_keep, {keys: [4, 5]})
        time.sleep(0.3)
        assert not finished, "a run on a claimed key did not wait"
        sess.run(gate.enqueue(10.0))
        holder.join(timeout=30)
        waiter.join(timeout=30)
        assert len(finished) == 2
        stored = table.read(sess)
        assert (stored[1].c[0], stored[2].c[0], stored[3].c[0], stored[4].c[0]) == (10, 11, 1, 10)


def test_resets_inside_a_chunk_start_a_keys_new_stream_there_and_keep_its_last(rng):
    streams = _streams(rng, 2, 6)
    resets = np.zeros([2, 4], bool)
    resets[0, 2] = True  # key 1's row starts a new stream at the chunk's third step
    with graph_session() as sess:
        mask = tf.compat.v1.placeholder(tf.bool, [None, None])
        model = KeyedModel(sess, resets=mask)
        sess.run(model.krnn.keep, {model.x: streams[:, :2], model.keys: [1, 2], mask: np.zeros([2, 2], bool)})
        before = model.stored()
        outputs = sess.run(
            [model.krnn.outputs, model.krnn.keep], {model.x: streams[:, 2:], model.keys: [1, 2], mask: resets}
        )[0]
        kept = model.stored()
        row = lambda nest, index: tf.nest.map_structure(lambda part: part[None], nest[index])
        carried, _ = model.alone(streams[:1, 2:4], row(before, 1))  # key 1 before its reset
        fresh, fresh_final = model.alone(streams[:1, 4:6])  # its new stream, from zeros
        other, other_final = model.alone(streams[1:, 2:], row(before, 2))
    np.testing.assert_allclose(outputs[0], np.concatenate([carried[0], fresh[0]]), atol=1e-5)
    np.testing.assert_allclose(outputs[1], other[0], atol=1e-5)
    assert_nested_close(row(kept, 1), fresh_final)
    assert_nested_close(row(kept, 2), other_final)
