"""Whether a traced function may run as one XLA cluster here and compute what TensorFlow's own ops compute.

    problem(function) -> None, or why not:
      1. a stateful random op with a seed: XLA ignores seeds (its draws differ run to run and session
         to session), where TensorFlow repeats seeded draws;
      2. lowering the function to XLA (to HLO, before any machine code) fails on this machine's
         platforms: an op without an XLA kernel, an argument XLA needs as a compile-time constant, ...

Both are decided at graph-build time. The lowering runs eagerly on stand-ins: zeros for the
arguments (1 for an unknown dimension) and zero-filled variables for the resources it captures,
created and destroyed around the check; nothing is added to the graph.
"""

import tensorflow as tf
from tensorflow.python.eager import context
from tensorflow.python.framework import op_def_registry
from tensorflow.python.ops import handle_data_util


def problem(function):
    """`None` when the concrete `tf.function(jit_compile=True)` `function` compiles here and computes what its
    ops compute, else why not."""
    library = list(function.graph.as_graph_def().library.function)  # the loop bodies, conditions, ... it calls
    seeded = _seeded_random_ops([function.function_def, *library])
    if seeded:
        return f"random ops draw with a seed ({', '.join(seeded)}), which XLA would ignore"
    try:
        return _lowering_problem(function, library)
    except Exception as error:  # whatever stops the check means: do not compile
        return f"checking whether XLA compiles it failed ({type(error).__name__}: {_first_line(error)})"


def _seeded_random_ops(function_defs):
    """`'<type>' op '<name>'` for each stateful random op given a graph or op seed, in these FunctionDefs."""
    found = []
    for function_def in function_defs:
        for node in function_def.node_def:
            op_def = op_def_registry.get(node.op)
            if (
                op_def is not None
                and op_def.is_stateful
                and "seed" in node.attr
                and "seed2" in node.attr
                and (node.attr["seed"].i or node.attr["seed2"].i)
            ):
                found.append(f"'{node.op}' op '{node.name}'")
    return found


def _lowering_problem(function, library):
    """Lowers `function` to HLO for each platform present (CPU, and GPU where one is visible); why it fails, or None."""
    platforms = ["CPU"] + (["GPU"] if tf.config.list_physical_devices("GPU") else [])
    with context.eager_mode():
        ctx = context.context()
        ctx.ensure_initialized()
        added = [f for f in [*library, function.function_def] if not ctx.has_function(f.signature.name)]
        variables = []
        try:
            for function_def in added:
                ctx.add_function_def(function_def)
            arguments = [_stand_in(placeholder, variables) for placeholder in function.graph.inputs]
            captured = len(function.captured_inputs)
            for platform in platforms:
                try:
                    ctx.get_compiler_ir(
                        device_name=None,
                        platform_name=platform,
                        function_name=function.name,
                        flat_args=arguments[: len(arguments) - captured],
                        captured_inputs=arguments[len(arguments) - captured :],
                        stage="hlo",
                    )
                except (ValueError, tf.errors.OpError) as error:
                    return f"XLA cannot compile it for {platform}: {_first_line(error)}"
        finally:
            for handle in variables:
                tf.raw_ops.DestroyResourceOp(resource=handle, ignore_lookup_error=True)
            for function_def in reversed(added):
                ctx.remove_function(function_def.signature.name)
    return None


def _stand_in(placeholder, variables):
    """An eager zero value for a function input; for a resource, a new zero-filled variable (added to `variables`)."""
    if placeholder.dtype != tf.resource:
        return tf.zeros([1 if size is None else size for size in placeholder.shape.as_list()], placeholder.dtype)
    shape_and_type = handle_data_util.get_resource_handle_data(placeholder).shape_and_type[0]
    dtype = tf.dtypes.as_dtype(shape_and_type.dtype)
    shape = [1 if dim.size < 0 else dim.size for dim in shape_and_type.shape.dim]
    handle = tf.raw_ops.VarHandleOp(dtype=dtype, shape=shape, shared_name=context.anonymous_name())
    variables.append(handle)
    tf.raw_ops.AssignVariableOp(resource=handle, value=tf.zeros(shape, dtype))
    return handle


def _first_line(error):
    """The first line of TensorFlow's message (the rest is a traceback of where the op was made)."""
    message = getattr(error, "message", None) or str(error)
    return message.removeprefix("Failed getting HLO text: ").strip("'").splitlines()[0][:300]
