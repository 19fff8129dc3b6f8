"""ONNX -> integer IR: one handler per ONNX op (qdq.py, qonnx.py, float_ops.py, layout_ops.py),
driven by importer.Importer, which walks the graph abstractly (values.py) and emits only
integer work.

Use ``qfab.compiler.frontend.importer.import_onnx(model)``; the handlers register themselves
when it imports them.
"""
