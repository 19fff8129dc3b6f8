"""The import boundary: a model is checked once, before any handler reads it.

onnx's checker (with the custom domains qfab reads made known to it) and qfab's own semantic
checks: the opset and every node's domain are known, every quantizer scale is finite,
positive and normal, zero points have the right type (the data's, inferred along the graph
for computed tensors) and lie in range, integer attributes are integral and in range, window
attributes fit the weights, graph inputs have positive, bounded shapes. So handlers may
assume well-formed attributes, finite positive scales and in-range zero points (DESIGN.md).
Every failure is a ``QfabError`` of one line naming the node and the attribute or input.

- ``model``: the model as a whole (text, versions, domains, onnx's checker, graph inputs);
- ``types``: element types along the graph, and each zero point's against its data;
- ``node``, ``windows``, ``quantizers``, ``ops``: one node's attributes and constants;
- ``inputs``: input arrays.
"""

from qfab.compiler.frontend.validate.inputs import check_input_array
from qfab.compiler.frontend.validate.model import check_structure, validate_model

__all__ = ["check_input_array", "check_structure", "validate_model"]
