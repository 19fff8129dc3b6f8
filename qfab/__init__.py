"""qfab: quantized ONNX to bit-exact FPGA dataflow accelerators.

    import qfab
    ref = qfab.reference("model.onnx", inputs)      # integer-exact golden model
"""

__version__ = "0.1.0"
__all__ = ["lower_model", "reference", "compile", "simulate", "estimate"]
_FLOW = ("compile", "simulate")


def __getattr__(name: str):
    # The API pulls in onnx and amaranth; `import qfab.numerics` should not pay for that.
    if name in __all__:
        from qfab import api, flow

        return getattr(flow if name in _FLOW else api, name)
    raise AttributeError(f"module 'qfab' has no attribute {name!r}")
