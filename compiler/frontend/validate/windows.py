"""Conv and pool window attributes: against each other and against the weights."""

from __future__ import annotations

from qfab.compiler.frontend.validate.node import CheckedNode

_AUTO_PAD = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


def check_window(n: CheckedNode) -> None:
    """Conv and pool attributes: positive strides, dilations and kernel, pads >= 0 and each
    smaller than the kernel's extent (else a whole output row or column is padding), kernel
    and group consistent with the weights."""
    op = n.node.op_type
    if op not in WINDOW_OPS:
        return
    n.string_attr("auto_pad", _AUTO_PAD)
    for name in ("ceil_mode", "count_include_pad", "storage_order"):
        n.flag(name, 0)
    weight = WINDOW_OPS[op]
    kernel = n.ints_attr("kernel_shape", 1)
    w = n.source_shape(weight) if weight is not None else None
    if w is not None:
        if len(w) < 3 or min(w) < 1:
            raise n.fail(f"weight {n.node.input[weight]!r} of shape {w} needs output and "
                         "input channels and a non-empty kernel")
        if kernel is not None and w[2:] != kernel:
            raise n.fail(f"attribute kernel_shape = {kernel} contradicts the weight's {w[2:]}")
        kernel = w[2:]
        group = n.int_attr("group", 1, 1)
        if w[0] % group:
            raise n.fail(f"attribute group = {group} does not divide the {w[0]} output channels")
    elif weight is None and "Global" not in op and kernel is None:
        raise n.fail("attribute kernel_shape is required")
    else:
        n.int_attr("group", 1, 1)
    rank = None if kernel is None else len(kernel)
    n.ints_attr("strides", 1, rank)
    dilations = n.ints_attr("dilations", 1, rank) or [1] * (rank or 0)
    pads = n.ints_attr("pads", 0, None if rank is None else 2 * rank)
    if kernel is None or pads is None:
        return
    for i, k in enumerate(kernel):
        extent = dilations[i] * (k - 1) + 1
        if max(pads[i], pads[i + rank]) >= extent:
            raise n.fail(f"attribute pads = {pads}: a pad of {max(pads[i], pads[i + rank])} "
                         f"on axis {i} is not smaller than the kernel's extent {extent}, so "
                         "whole outputs would be padding")


# op -> the input index of its weight (None for pools).
WINDOW_OPS: dict[str, int | None] = {
    "Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "MaxPool": None, "AveragePool": None,
    "QLinearAveragePool": None, "LpPool": None}
