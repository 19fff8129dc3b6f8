"""Register slices on a plan's stream edges (``Pipelining.edge_slices``).

A slice (:class:`qfab.hw.slice.RegisterSlice`) after a block ends every path that crossed
the edge at flip-flops: the block's output handshake and payload on one side, the next
block's ``ready`` on the other. It is a plan block like any other (kind ``"slice"``), so the
accelerator instantiates it, the cycle model steps it (an output register with a spare, no
stages) and the cost model counts it: cycles stay exact.
"""

from __future__ import annotations

from amaranth.hdl import Shape, unsigned
from qfab.compiler.backend.plan import SUM_KINDS, BlockSpec, Stage, sum_out_shape

# blocks whose output element is their parameter ``elem_shape`` (codes passed on or picked)
_PASS_KINDS = ("window", "widthconv", "maxpool", "upsample", "fifo", "slice")


def out_elem_shape(spec: BlockSpec) -> Shape | None:
    """The element shape of ``spec``'s output stream; None for a fused unrolled pipeline
    (its output shape is worked out when it is built)."""
    p = spec.params
    if spec.kind == "minifloat_requant":
        return unsigned(p["fmt"].bits)
    if spec.kind in SUM_KINDS:
        return sum_out_shape(spec)
    if spec.kind in _PASS_KINDS:
        return Shape.cast(p["elem_shape"])
    if spec.kind == "depthwise":
        from qfab.hw.depthwise import depthwise_acc_shape

        return depthwise_acc_shape(p["weights"], p["in_shape"])
    if spec.kind == "unrolled":
        return None
    return Shape.cast(p.get("out_shape") or p["acc_shape"])


def slice_after(spec: BlockSpec) -> BlockSpec | None:
    """A register slice for ``spec``'s output stream (None where its shape is not known)."""
    shape = out_elem_shape(spec)
    if shape is None:
        return None
    return BlockSpec("slice", dict(elem_shape=shape, n=spec.out_elems),
                     spec.out_elems, spec.out_elems)


def with_slices(stages: list[Stage], in_shape: Shape, in_elems: int) -> None:
    """Put a register slice on every stream edge of the chain, in place: after every block
    of every stage (the last one's carries the accelerator's output) and, when the first
    stage alone reads the accelerator's input (``in_elems`` of ``in_shape`` a beat), before
    its first block. A skip path's blocks are left as they are: the FIFO before a join
    registers its output already."""
    alone = not any(s.source == -1 or (s.skip and s.skip_from == -1) for s in stages[1:])
    for k, stage in enumerate(stages):
        blocks = []
        if k == 0 and alone:
            blocks.append(BlockSpec("slice", dict(elem_shape=in_shape, n=in_elems),
                                    in_elems, in_elems))
        for b in stage.blocks:
            blocks.append(b)
            s = slice_after(b)
            if s is not None:
                blocks.append(s)
        stage.blocks = blocks
