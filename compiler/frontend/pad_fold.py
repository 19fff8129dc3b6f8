"""A zero Pad of the spatial axes read only by a Conv (Keras's ZeroPadding2D) goes into the
Conv's pads: both pad with real zeros, and the Conv's sliding window pads for free."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qfab.compiler.frontend.onnx_edit import GraphEdit, attr


def fold_pads(g: GraphEdit) -> None:
    for pad in [n for n in g.nodes if n.op_type == "Pad"]:
        pads = g.zero_pads(pad)
        readers = g.readers(pad.output[0])
        if pads is None or len(readers) != 1 or readers[0].op_type != "Conv" or \
                readers[0].input[0] != pad.output[0] or pads.size < 6 or \
                (attr(readers[0], "auto_pad") or "NOTSET") != "NOTSET":
            continue
        rank = pads.size // 2
        if pads[[0, 1, rank, rank + 1]].any() or (pads < 0).any():
            continue
        conv = readers[0]
        own = attr(conv, "pads") or [0] * (2 * (rank - 2))
        spatial = [int(v) for v in np.concatenate([pads[2:rank], pads[rank + 2:]])]
        total = [a + b for a, b in zip(own, spatial, strict=True)]
        for a in list(conv.attribute):
            if a.name == "pads":
                conv.attribute.remove(a)
        conv.attribute.append(helper.make_attribute("pads", total))
        conv.input[0] = pad.input[0]
        g.nodes.remove(pad)
        g.changed = True
