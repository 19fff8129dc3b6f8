"""Resize/Upsample nearest by whole factors (compiler/frontend/spatial.py) against qonnx's
execution (onnxruntime's Resize), and the one-line errors for the resizes qfab does not do."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx_graphs import Builder, qonnx_run

import qfab
from qfab.errors import QfabError

pytest.importorskip("qonnx")


def _resized(shape, scales, **attrs):
    b = Builder()
    h = b.quant("x", 2.0 ** -4, 6, signed=1)
    h = b.node("Resize", [h, "", b.const(scales, "scales")], mode="nearest", **attrs)
    return b.model(shape, b.quant(h, 2.0 ** -3, 6, signed=1))


@pytest.mark.parametrize("shape, scales, attrs", [
    ((1, 2, 3, 4), [1, 1, 2, 3], {}),  # ONNX's defaults: half_pixel, round_prefer_floor
    ((1, 2, 3, 4), [1, 1, 3, 1], dict(coordinate_transformation_mode="asymmetric",
                                      nearest_mode="floor")),
    ((1, 3, 5), [1, 1, 2], dict(coordinate_transformation_mode="asymmetric",
                                nearest_mode="floor")),  # UpSampling1D
])
def test_nearest_whole_factors_equal_qonnx(shape, scales, attrs):
    model = _resized(shape, scales, **attrs)
    x = np.random.default_rng(0).uniform(-2, 2, (3,) + shape[1:]).astype(np.float32)
    want = qonnx_run(model, x)
    (got,) = qfab.reference(model, x).values()
    assert got.shape == want.shape and np.array_equal(got, want)


@pytest.mark.parametrize("scales, attrs, message", [
    ([1, 1, 2, 2], dict(nearest_mode="ceil"), "does not repeat"),
    ([1, 1, 1.5, 2], {}, "by whole factors"),
    ([1, 2, 1, 1], {}, "by whole factors"),
])
def test_other_resizes_name_the_node(scales, attrs, message):
    model = _resized((1, 2, 4, 4), scales, **attrs)
    with pytest.raises(QfabError, match=f"Resize node 'resize\\d+': .*{message}"):
        qfab.reference(model, np.zeros((1, 2, 4, 4), np.float32))


def test_linear_mode_names_the_node():
    model = _resized((1, 2, 4, 4), [1, 1, 2, 2])
    model.graph.node[-2].attribute[0].s = b"linear"
    with pytest.raises(QfabError, match="Resize node 'resize\\d+': mode 'linear'"):
        qfab.reference(model, np.zeros((1, 2, 4, 4), np.float32))
