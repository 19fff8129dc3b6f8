"""qfab: quantized ONNX to bit-exact FPGA dataflow accelerators.

    import qfab
    ref = qfab.reference("model.onnx", inputs)      # integer-exact golden model
"""

__version__ = "0.1.0"
__all__ = ["lower_model", "reference"]


def __getattr__(name: str):
    # The API pulls in onnx and numpy; `import qfab.numerics` should not pay for that.
    if name in __all__:
        from qfab import api

        return getattr(api, name)
    raise AttributeError(f"module 'qfab' has no attribute {name!r}")
