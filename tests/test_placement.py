"""Where a state lives: beside its RNN's ops (the worker's under replica_device_setter), or where `device` says.

Graph-level checks of the device strings the graph asks for; tests/test_cluster.py checks where
a real loopback cluster ran them.
"""

import tensorflow as tf

import tfstate

CLUSTER = {"ps": ["ps0:2222", "ps1:2222"], "worker": ["worker0:2222", "worker1:2222"]}
WORKER = "/job:worker/task:1"


def _state_ops(graph, state):
    """The ops of a state (its name scope) and of its keep op, but the initial values TensorFlow colocates itself."""
    return [
        op
        for op in graph.get_operations()
        if op.name.startswith(f"{state.name}/") or op.name.startswith("keep")
        if not op.name.endswith("Initializer/initial_value")
    ]


def _build(**options):
    graph = tf.Graph()
    with (
        graph.as_default(),
        tf.compat.v1.device(tf.compat.v1.train.replica_device_setter(cluster=CLUSTER, worker_device=WORKER)),
    ):
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 3])
        cell = tfstate.LSTMCell(3)
        rnn = tfstate.stateful_dynamic_rnn(cell, x, **options)
        tfstate.generate(cell, tf.zeros([2, 3]), 2, lambda output: output, initial_state=rnn)  # initial_state_for
    return graph, rnn


def test_under_replica_device_setter_the_state_stays_on_the_worker_and_the_weights_go_to_the_ps():
    graph, rnn = _build()
    assert rnn.state.device == WORKER
    ops = _state_ops(graph, rnn.state)
    assert {op.type for op in ops} >= {"VarHandleOp", "MutexV2", "MutexLock", "AssignVariableOp", "ReadVariableOp"}
    assert {op.device for op in ops} == {WORKER}
    assert {variable.device.split("/task")[0] for variable in tf.nest.flatten(rnn.state.variables)} == {"/job:worker"}
    with graph.as_default():
        weights = tf.compat.v1.global_variables()
    assert weights and {variable.device.split("/task")[0] for variable in weights} == {"/job:ps"}


def test_state_device_puts_every_op_of_the_state_there():
    graph, rnn = _build(state_device="/job:ps/task:1")
    assert rnn.state.device == "/job:ps/task:1"
    assert {op.device for op in _state_ops(graph, rnn.state)} == {"/job:ps/task:1"}
    assert rnn.outputs.device == WORKER  # the RNN itself still runs on the worker


def test_without_a_device_scope_the_state_is_left_to_the_placer():
    with tf.Graph().as_default() as graph:
        rnn = tfstate.stateful_dynamic_rnn(tfstate.GRUCell(2), tf.zeros([1, 2, 3]))
    assert rnn.state.device == ""
    assert {op.device for op in _state_ops(graph, rnn.state)} == {""}


def _build_keyed(**options):
    graph = tf.Graph()
    with (
        graph.as_default(),
        tf.compat.v1.device(tf.compat.v1.train.replica_device_setter(cluster=CLUSTER, worker_device=WORKER)),
    ):
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 3])
        keys = tf.compat.v1.placeholder(tf.int64, [None])
        cell = tfstate.LSTMCell(3)
        krnn = tfstate.keyed_dynamic_rnn(cell, x, keys, capacity=8, **options)
        tfstate.generate(cell, tf.zeros([2, 3]), 2, lambda output: output, initial_state=krnn.lookup)
        krnn.state.end(keys)
        krnn.state.build_initializer(name="export_init")
        tf.compat.v1.train.Saver([krnn.state.saveable])  # its restore ops
    return graph, krnn


def _table_ops(graph, table):
    """The ops of a table (its scopes) but its clock's initial value, which TensorFlow builds outside any device
    scope (the placer puts it beside the table it reads)."""
    return [
        op
        for op in graph.get_operations()
        if op.name.startswith(f"{table.name}/") or "/keyed_state/" in op.name
        if "/clock/Initializer/" not in op.name
    ]


def test_under_replica_device_setter_a_keyed_table_and_every_op_on_it_stay_on_the_worker():
    graph, krnn = _build_keyed()
    table = krnn.state
    assert table.device == WORKER
    ops = _table_ops(graph, table)
    assert {op.type for op in ops} >= {
        "MutableHashTableOfTensorsV2",
        "MutableHashTableV2",
        "LookupTableFindV2",
        "LookupTableInsertV2",
        "LookupTableRemoveV2",
        "LookupTableImportV2",
        "MutexV2",
        "MutexLock",
        "VarHandleOp",
    }
    assert {op.device for op in ops} == {WORKER}, {(op.name, op.device) for op in ops if op.device != WORKER}
    assert krnn.outputs.device == WORKER


def test_state_device_puts_a_keyed_table_on_a_parameter_server_whole_to_share_it_between_workers():
    graph, krnn = _build_keyed(state_device="/job:ps/task:1")
    assert krnn.state.device == "/job:ps/task:1"
    assert {op.device for op in _table_ops(graph, krnn.state)} == {"/job:ps/task:1"}
    assert krnn.outputs.device == WORKER
