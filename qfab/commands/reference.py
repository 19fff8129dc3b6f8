"""`qfab reference`: run the integer-only golden model on inputs from a file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from qfab.commands.compile import MODEL_HELP, add_input_format
from qfab.errors import QfabError
from qfab.output_files import output_file

HELP = "run the integer reference model on IN and write the outputs to OUT.npz"

EPILOG = """\
IN is a .npy (one input), a .npz keyed by input name, or a folder of ONNX TensorProto files
input_0.pb, input_1.pb, ... in graph-input order (for float8/int4 inputs). OUT.npz is keyed
by output name: float outputs as float32 (or the model's float type), integer outputs in
their ONNX type, and types NumPy lacks as codes (float8/float4 as uint8 bit patterns,
int4/int2 as int8 values, uint4/uint2 as uint8).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input", required=True, metavar="IN", help=".npy, .npz or folder")
    parser.add_argument("--output", required=True, metavar="OUT.npz", help="outputs file")
    parser.add_argument("--requant", choices=("dyadic", "onnx"), default="dyadic",
                        help="dyadic: integer multiply and shift, as the hardware does "
                             "(default); onnx: float scale with round half to even, as "
                             "onnxruntime does")
    add_input_format(parser)


def run(args: argparse.Namespace) -> int:
    from qfab.api import load_inputs, lower_model, reference, savable_outputs
    from qfab.compiler.frontend.importer import load_model

    out = Path(args.output)
    if out.suffix != ".npz":
        raise QfabError(f"--output {out}: the outputs file must end in .npz")
    model = load_model(args.model)
    graph = lower_model(model, input_format=args.input_format)
    inputs = load_inputs(args.input, graph)
    outputs = reference(graph, inputs, requant=args.requant)
    saved = savable_outputs(graph, model, outputs)
    with output_file(out) as f:
        np.savez(f, **saved)
    written = ", ".join(f"{name} {a.dtype}{list(a.shape)}" for name, a in saved.items())
    print(f"outputs ({args.requant} requantization): {written}", file=sys.stderr)
    print(out)
    return 0
