"""Keras 3 model -> ONNX through tf2onnx, with the class metadata in `metadata_props`.

The model is traced as a `tf.function` with a uint8 (None, H, W, 3) signature, its variables and
captured constants frozen (`convert_variables_to_constants_v2`; tf2onnx's own `from_function`
leaves Keras 3 Normalization constants as extra graph inputs), then converted from the GraphDef.
Exact GELU is `0.5 x erfc(-x / sqrt 2)` in TensorFlow and tf2onnx has no Erfc handler, so one is
supplied here: erfc(x) = 1 - erf(x).
"""

from __future__ import annotations

import numpy as np

from cifarlab.errors import CifarlabError
from cifarlab.inference.base import traced_call
from cifarlab.inference.onnx_runtime import METADATA_PROP
from cifarlab.models.metadata import ModelMetadata

OPSET = 17


def _erfc_handler(ctx, node, name, args):
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    node.type = "Erf"
    node.domain = ""
    one = ctx.make_const(utils.make_name(f"{name}_one"), np.array(1, dtype=dtype))
    erf_out = node.output[0]
    sub = ctx.insert_new_node_on_output("Sub", erf_out, name=utils.make_name(f"{name}_erfc"))
    ctx.replace_inputs(sub, [one.output[0], erf_out])
    ctx.copy_shape(erf_out, sub.output[0])
    ctx.set_dtype(sub.output[0], ctx.get_dtype(erf_out))


def keras_to_onnx(model, input_size: tuple[int, int], metadata: ModelMetadata | None = None) -> bytes:
    """Serialized ONNX model (uint8 NHWC input `image:0`, probabilities output)."""
    import logging

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = traced_call(model, input_size)
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
    graph_def = frozen.graph.as_graph_def()
    inputs = [t.name for t in frozen.inputs]
    outputs = [t.name for t in frozen.outputs]
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # tf2onnx triggers TF1 deprecation warnings
    try:
        import tf2onnx

        logging.getLogger("tf2onnx").setLevel(logging.ERROR)
        proto, _ = tf2onnx.convert.from_graph_def(
            graph_def, input_names=inputs, output_names=outputs, opset=OPSET,
            custom_op_handlers={"Erfc": (_erfc_handler, [])})
    except Exception as exc:  # tf2onnx raises plain exceptions for unsupported graphs
        raise CifarlabError(f"ONNX conversion failed ({exc.__class__.__name__}: {str(exc)[:300]})") from None
    finally:
        tf_logger.setLevel(level)
    if metadata is not None:
        from onnx import helper

        helper.set_model_props(proto, {METADATA_PROP: metadata.to_json()})
    return proto.SerializeToString()
