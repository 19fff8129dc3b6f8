"""Constant folding of the few ops that shape weights (a QONNX model's transposed and
gathered constants), in NumPy as onnx's ReferenceEvaluator computes them, without it: building
an evaluator loads every op schema (0.2 s of CPU, most of importing TFC_2W2A). Any other op,
or an input these do not take, goes to the evaluator (:meth:`Importer._evaluate`)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _transpose(node, inputs, attrs):
    perm = attrs.get("perm")
    return np.transpose(inputs[0], axes=tuple(perm) if perm else None)


def _unsqueeze(node, inputs, attrs):
    axes = attrs["axes"] if "axes" in attrs else inputs[1]  # an attribute before opset 13
    return np.expand_dims(inputs[0], axis=tuple(int(a) for a in np.ravel(axes)))


def _concat(node, inputs, attrs):
    axis = attrs["axis"]
    if any(np.ndim(x) == 0 or not -np.ndim(x) <= axis < np.ndim(x) for x in inputs):
        return None
    return np.concatenate(inputs, axis)


def _gather(node, inputs, attrs):
    return np.asarray(np.take(inputs[0], inputs[1], axis=attrs.get("axis", 0)))


def _pow(node, inputs, attrs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.power(inputs[0], inputs[1]).astype(inputs[0].dtype)


_FOLDS = {"Transpose": _transpose, "Unsqueeze": _unsqueeze, "Concat": _concat,
          "Gather": _gather, "Pow": _pow}


def fold(node: onnx.NodeProto, feeds: dict[str, np.ndarray]) -> list | None:
    """``node``'s outputs on constant ``feeds``, or None where the evaluator should run it."""
    rule = _FOLDS.get(node.op_type)
    if rule is None or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    inputs = [np.asarray(feeds[name]) for name in node.input if name]
    if any(x.dtype == object for x in inputs):
        return None
    try:
        out = rule(node, inputs, _attrs(node))
    except Exception:  # the evaluator words the error (or knows a case these do not)
        return None
    return None if out is None else [out]
