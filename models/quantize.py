"""Int8 ONNX files derived from the fp32 export: per-token (the scoring default) and per-tensor (reference).

**Per-token** (:func:`per_token`): every MatMul with a constant 2-D weight becomes an int8 matrix product
whose activations are quantized at run time with one scale per token (per row of the activation matrix),
symmetric, stored as uint8 around 128; the weights are symmetric int8 per output channel. The vocabulary's
embedding table is stored as int8 with one scale per token id, dequantized after the lookup. A token's
quantized values depend on that token alone, so a text's scores do not depend on what else is in its batch
or on padding (up to float rounding, as in fp32), and the runtime can batch.

**Per-tensor** (:func:`per_tensor`): ONNX Runtime's ``quantize_dynamic``, one activation scale per input
tensor. In a batch, one text's scale is set by its neighbours and by padding, so that file is only safe row
by row; the models benchmark keeps it as the reference the per-token file is measured against.

ONNX Runtime's ``MatMulNBits`` (8-bit weights, int8 activations per block of a row) would also be
batch-independent, but runs at under half the fp32 speed on AVX2 without VNNI (docs/decisions.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# Weights use 7 bits (-63..63): AVX2's u8 x s8 multiply (vpmaddubsw) adds pairs of products into a
# saturating int16, and 255 * 127 * 2 overflows it; 255 * 63 * 2 does not. Full 8-bit weights moved topic
# probabilities by up to 0.38 from fp32 on 600 validation texts, 7-bit ones by up to 0.12.
WEIGHT_MAX = 63
ACTIVATION_ZERO = 128  # uint8 activations, symmetric around this zero point
TABLE_ROWS = 1024  # a looked-up table with at least this many rows (the vocabulary's) is stored in int8
MS_DOMAIN = "com.microsoft"


def per_token(fp32: Path, out: Path) -> Path:
    """Write ``out``: ``fp32`` with every constant-weight MatMul in per-token int8 (see the module doc).
    Inputs shared by several MatMuls (the attention's query, key and value) are quantized once."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(fp32))
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    weights = {i.name: i for i in graph.initializer}
    added: list = []

    def constant(name: str, value: np.ndarray) -> str:
        added.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    one = constant("int8/one", np.array(1.0, np.float32))
    zero = constant("int8/zero_point", np.array(ACTIVATION_ZERO, np.uint8))
    inv = constant("int8/inv_127", np.array(1 / 127, np.float32))
    tiny = constant("int8/tiny", np.array(1e-12, np.float32))
    flat = constant("int8/flat", np.array([-1], np.int64))

    last_axis = constant("int8/last_axis", np.array([-1], np.int64)) if opset >= 18 else ""

    def reduce(op: str, x: str, y: str):
        if opset < 18:  # axes moved from an attribute to an input at opset 18
            return helper.make_node(op, [x], [y], axes=[-1], keepdims=1)
        return helper.make_node(op, [x, last_axis], [y], keepdims=1)
    quantized: dict[str, tuple[str, str]] = {}  # activation -> (its uint8 tensor, its per-token scale)
    nodes = []
    for node in graph.node:
        table = weights.get(node.input[0]) if node.op_type == "Gather" else None
        if table is not None and len(table.dims) == 2 and table.dims[0] >= TABLE_ROWS and \
                not any(a.name == "axis" and a.i != 0 for a in node.attribute):
            nodes += _int8_lookup(node, table, constant)
            continue
        weight = weights.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) == 2 else None
        if weight is None or len(weight.dims) != 2:
            nodes.append(node)
            continue
        x = node.input[0]
        if x not in quantized:
            p = f"int8/a{len(quantized)}/"
            rows = constant(p + "rows", np.array([-1, weight.dims[0]], np.int64))
            nodes += [
                reduce("ReduceMax", x, p + "hi"), reduce("ReduceMin", x, p + "lo"),
                helper.make_node("Neg", [p + "lo"], [p + "neg_lo"]),
                helper.make_node("Max", [p + "hi", p + "neg_lo"], [p + "abs_max"]),
                helper.make_node("Mul", [p + "abs_max", inv], [p + "scale0"]),
                helper.make_node("Max", [p + "scale0", tiny], [p + "scale"]),  # an all-zero token
                helper.make_node("Reshape", [p + "scale", flat], [p + "scale_1d"]),
                helper.make_node("Shape", [p + "scale_1d"], [p + "tokens"]),
                helper.make_node("ConstantOfShape", [p + "tokens"], [p + "zero_points"],
                                 value=numpy_helper.from_array(np.array([ACTIVATION_ZERO], np.uint8))),
                helper.make_node("Reshape", [x, rows], [p + "x_2d"]),
                helper.make_node("QuantizeLinear", [p + "x_2d", p + "scale_1d", p + "zero_points"], [p + "q_2d"],
                                 axis=0),
                helper.make_node("Shape", [x], [p + "shape"]),
                helper.make_node("Reshape", [p + "q_2d", p + "shape"], [p + "q"]),
            ]
            quantized[x] = (p + "q", p + "scale")
        q, scale = quantized[x]
        w = numpy_helper.to_array(weight).astype(np.float32)
        w_scale = (np.maximum(np.abs(w).max(0), 1e-12) / WEIGHT_MAX).astype(np.float32)
        w_q = np.clip(np.round(w / w_scale), -WEIGHT_MAX, WEIGHT_MAX).astype(np.int8)
        p = f"int8/{weight.name}/"
        nodes += [
            helper.make_node("MatMulIntegerToFloat", [q, constant(p + "w", w_q), one, constant(p + "scale", w_scale),
                                                      zero], [p + "y"], domain=MS_DOMAIN),
            helper.make_node("Mul", [p + "y", scale], [node.output[0]]),
        ]
    referenced = {name for n in nodes for name in n.input}
    kept = [i for i in graph.initializer if i.name in referenced]  # a table still read elsewhere stays
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    return out


def _int8_lookup(node, table, constant) -> list:
    """``node`` (a Gather on ``table``) as a lookup in an int8 copy of the table and in its per-row scales."""
    from onnx import TensorProto, helper, numpy_helper

    rows = numpy_helper.to_array(table).astype(np.float32)
    scale = (np.maximum(np.abs(rows).max(1, keepdims=True), 1e-12) / 127).astype(np.float32)
    p = f"int8/{table.name}/"
    ids = node.input[1]
    return [
        helper.make_node("Gather", [constant(p + "q", np.round(rows / scale).astype(np.int8)), ids], [p + "q_rows"]),
        helper.make_node("Cast", [p + "q_rows"], [p + "rows"], to=TensorProto.FLOAT),
        helper.make_node("Gather", [constant(p + "scale", scale), ids], [p + "scales"]),
        helper.make_node("Mul", [p + "rows", p + "scales"], [node.output[0]]),
    ]


def per_tensor(fp32: Path, out: Path) -> Path:
    """ONNX Runtime's dynamic quantization: int8 weights per output channel, one uint8 activation scale per
    input tensor chosen at run time."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    # it logs a suggestion to pre-process (shape inference, for static quantization) on the root logger
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True)
    finally:
        root.setLevel(level)
    return out
