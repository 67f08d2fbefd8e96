"""A keyed stateful RNN as a SavedModel: `step(keys, inputs, start)` keeps each stream's state inside the model.

    export_saved_model(sess, "model/1", krnn, inputs={"inputs": x}, outputs={"outputs": y})

writes a SavedModel (core TensorFlow ops only, so TF Serving loads it) whose signatures are

    step / serving_default   (keys, start, inputs...) -> outputs...   runs and keeps each key's state
    peek                     (keys, start, inputs...) -> outputs...   the same run, state unchanged
    end                      (keys) -> ended                          drops streams (True where one was held)

The table starts empty when the model is loaded (its init op empties it); the weights are the
session's variables at export time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import tensorflow as tf
from tensorflow.core.protobuf.meta_graph_pb2 import SignatureDef

from tfstate import _tf1
from tfstate._checks import require_graph_mode
from tfstate.keyed_rnn import KeyedRNN

STEP, PEEK, END = "step", "peek", "end"


def _signature(inputs, outputs, method=tf.compat.v1.saved_model.signature_constants.PREDICT_METHOD_NAME):
    build = _tf1.build_tensor_info
    return tf.compat.v1.saved_model.signature_def_utils.build_signature_def(
        inputs={name: build(tensor) for name, tensor in inputs.items()},
        outputs={name: build(tensor) for name, tensor in outputs.items()},
        method_name=method,
    )


def serving_signatures(
    krnn: KeyedRNN, inputs: Mapping[str, tf.Tensor], outputs: Mapping[str, tf.Tensor]
) -> dict[str, SignatureDef]:
    """`{name: SignatureDef}` for `step` (also `serving_default`), `peek` and `end` of a `KeyedRNN`.

    Builds the `step` outputs (each an identity that runs after the keep): call it once.

    Args:
      krnn: the `KeyedRNN` (from `keyed_dynamic_rnn`) whose keys and start flags the client feeds.
      inputs: `{name: tensor}` the client feeds besides `keys` and `start` (e.g. the inputs placeholder).
      outputs: `{name: tensor}` computed from the RNN's outputs (e.g. a dense head over `krnn.outputs`).
    """
    require_graph_mode("tfstate.serving.serving_signatures")
    for name in ("keys", "start"):
        if name in inputs:
            raise ValueError(
                f"serving_signatures adds the inputs 'keys' and 'start' itself; rename your input '{name}'."
            )
    if not outputs:
        raise ValueError("serving_signatures needs at least one output tensor, e.g. {'outputs': krnn.outputs}.")
    fed = {**inputs, "keys": krnn.keys, "start": krnn.start}
    with tf.compat.v1.name_scope("serving/step/"), tf.control_dependencies([krnn.keep]):
        kept = {name: tf.identity(tensor, name=name) for name, tensor in outputs.items()}
    step = _signature(fed, kept)
    table = krnn.state
    return {
        STEP: step,
        tf.compat.v1.saved_model.signature_constants.DEFAULT_SERVING_SIGNATURE_DEF_KEY: step,
        PEEK: _signature(fed, outputs),
        END: _signature({"keys": table.end_keys}, {"ended": table.ended}),
    }


def export_saved_model(
    sess: tf.compat.v1.Session,
    export_dir: str | os.PathLike,
    krnn: KeyedRNN,
    inputs: Mapping[str, tf.Tensor],
    outputs: Mapping[str, tf.Tensor],
    tags: Sequence[str] = (tf.compat.v1.saved_model.tag_constants.SERVING,),
) -> str | os.PathLike:
    """Writes the graph of `sess`, its global variables and the signatures of `serving_signatures` to `export_dir`.

    The SavedModel's init op initializes the local variables and empties the keyed table, so a
    server starts with no streams. `export_dir` must not exist yet (as with TF1's builder).
    Returns `export_dir`.
    """
    require_graph_mode("tfstate.serving.export_saved_model")
    signatures = serving_signatures(krnn, inputs, outputs)
    with tf.compat.v1.name_scope("serving/"):
        empty_table = krnn.state.build_initializer(name="empty_table")
        init = tf.group(tf.compat.v1.local_variables_initializer(), empty_table, name="init")
    builder = tf.compat.v1.saved_model.Builder(export_dir)
    builder.add_meta_graph_and_variables(
        sess, list(tags), signature_def_map=signatures, main_op=init, strip_default_attrs=True
    )
    builder.save()
    return export_dir
