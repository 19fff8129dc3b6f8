"""Writes the corpus models that Brevitas itself exports (tests/corpus/brevitas/*.onnx).

Brevitas needs torch, so this runs in its own environment, never the project's:

    python3 -m venv /work/wt/brevitas-venv
    /work/wt/brevitas-venv/bin/pip install torch==2.13.0 'brevitas==0.13.*' onnx onnxscript
    /work/wt/brevitas-venv/bin/python tests/corpus/make_brevitas_corpus.py

The networks are Brevitas's own bnn_pynq models (``brevitas_examples.bnn_pynq``: FINN's TFC
and CNV), untrained: weights from a fixed seed, BatchNorm statistics set so about a third of
the channels have a negative scale, as trained binary networks have. CNV is built at an
eighth of its width (8..32 channels, FC 64) by setting the module's channel table, so the
corpus co-simulates quickly; its layer structure is FINN's. Exports: QONNX (``export_qonnx``:
Quant, BipolarQuant) and QCDQ (``export_onnx_qcdq``: QuantizeLinear, Clip, DequantizeLinear,
int32 bias quantizers).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from brevitas.export import export_onnx_qcdq, export_qonnx

OUT = Path(__file__).parent / "brevitas"


def _trained_looking(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random BatchNorm statistics, a third of the scales negative; eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
            n = m.num_features
            sign = torch.where(torch.rand(n, generator=g) < 0.35, -1.0, 1.0)
            fan_in = m.running_var.new_tensor(1.0)
            m.weight.data = (0.5 + torch.rand(n, generator=g)) * sign
            m.bias.data = 0.3 * torch.randn(n, generator=g)
            m.running_mean.data = 0.3 * torch.randn(n, generator=g) * fan_in
            m.running_var.data = 0.5 + torch.rand(n, generator=g)
    return model.eval()


def _fan_in_stats(model: torch.nn.Module, shape: tuple[int, ...], seed: int) -> torch.nn.Module:
    """BatchNorm statistics of the layer sums on random inputs, so activations vary."""
    model = _trained_looking(model, seed)
    stats = {}

    def hook(name):
        def record(_module, inputs, _output):
            x = inputs[0].detach().float()
            dims = [0] + list(range(2, x.dim()))
            stats[name] = (x.mean(dim=dims), x.var(dim=dims) + 1e-3)
        return record

    bns = {n: m for n, m in model.named_modules()
           if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d)}
    handles = [m.register_forward_hook(hook(n)) for n, m in bns.items()]
    with torch.no_grad():
        for n in bns:  # one layer at a time, so each sees its input's new statistics
            model(torch.rand((16,) + shape[1:], generator=torch.Generator().manual_seed(seed)))
            mean, var = stats[n]
            bns[n].running_mean.data = mean
            bns[n].running_var.data = var
    for h in handles:
        h.remove()
    return model


def tfc(weight_bits: int, act_bits: int, seed: int) -> torch.nn.Module:
    from brevitas_examples.bnn_pynq.models.FC import FC

    torch.manual_seed(seed)
    model = FC(num_classes=10, weight_bit_width=weight_bits, act_bit_width=act_bits,
               in_bit_width=act_bits, in_channels=1, out_features=[64, 64, 64])
    return _fan_in_stats(model, (1, 1, 28, 28), seed)


def cnv(weight_bits: int, act_bits: int, seed: int) -> torch.nn.Module:
    from brevitas_examples.bnn_pynq.models import CNV

    CNV.CNV_OUT_CH_POOL = [(8, False), (8, True), (16, False), (16, True), (32, False),
                           (32, False)]
    CNV.INTERMEDIATE_FC_FEATURES = [(32, 64), (64, 64)]
    CNV.LAST_FC_IN_FEATURES = 64
    torch.manual_seed(seed)
    model = CNV.CNV(num_classes=10, weight_bit_width=weight_bits, act_bit_width=act_bits,
                    in_bit_width=8, in_ch=3)
    return _fan_in_stats(model, (1, 3, 32, 32), seed)


def small_cnn(seed: int) -> torch.nn.Module:
    """A 4-bit CNN with int32 biases: the QCDQ export's bias quantizers."""
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Int8ActPerTensorFloat, Int32Bias

    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True),
        QuantConv2d(3, 8, 3, weight_bit_width=4, bias=True, bias_quant=Int32Bias,
                    return_quant_tensor=True),
        QuantReLU(bit_width=4, return_quant_tensor=True),
        torch.nn.MaxPool2d(2),
        QuantConv2d(8, 8, 3, weight_bit_width=4, bias=True, bias_quant=Int32Bias,
                    return_quant_tensor=True),
        QuantReLU(bit_width=4, return_quant_tensor=True),
        torch.nn.Flatten(),
        QuantLinear(8 * 2 * 2, 10, weight_bit_width=4, bias=True, bias_quant=Int32Bias),
    )
    model.eval()
    with torch.no_grad():  # calibrate the activation scales on a few inputs
        model.train()
        for _ in range(4):
            model(torch.rand(8, 3, 10, 10))
        model.eval()
    return model


def mobilenet(seed: int) -> torch.nn.Module:
    """Brevitas's MobileNet-v1 (FINN's w4a4 example) at a small width and a 32x32 input:
    depthwise separable blocks, per-channel activation scales before each depthwise conv (set
    apart per channel as trained ones are), and a truncating average pool (Trunc v2)."""
    from brevitas_examples.imagenet_classification.models.mobilenetv1 import MobileNet

    torch.manual_seed(seed)
    model = MobileNet(channels=[[8], [16], [32, 32]], first_stage_stride=False,
                      act_bit_width=4, weight_bit_width=4, round_average_pool=False,
                      avg_pool_kernel_size=8, num_classes=10)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("scaling_impl.value"):
                p.mul_(0.5 + torch.rand(p.shape, generator=g))
    return _fan_in_stats(model, (1, 3, 32, 32), seed)


MODELS = {
    # name: (model, input shape, exporter)
    "tfc_w1a1_qonnx": (lambda: tfc(1, 1, 0), (1, 1, 28, 28), export_qonnx),
    "tfc_w2a2_qcdq": (lambda: tfc(2, 2, 1), (1, 1, 28, 28), export_onnx_qcdq),
    "cnv_w1a1_qonnx": (lambda: cnv(1, 1, 2), (1, 3, 32, 32), export_qonnx),
    "cnv_w2a2_qonnx": (lambda: cnv(2, 2, 3), (1, 3, 32, 32), export_qonnx),
    "cnn_w4a4_int32bias_qcdq": (lambda: small_cnn(4), (1, 3, 10, 10), export_onnx_qcdq),
    "cnn_w4a4_int32bias_qonnx": (lambda: small_cnn(4), (1, 3, 10, 10), export_qonnx),
    "mobilenet_w4a4_qonnx": (lambda: mobilenet(5), (1, 3, 32, 32), export_qonnx),
}


def main(names: list[str]) -> None:
    OUT.mkdir(exist_ok=True)
    for name, (make, shape, export) in MODELS.items():
        if names and name not in names:
            continue
        model = make()
        path = OUT / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # The TorchScript exporter: Brevitas's dynamo QCDQ export refuses int32 biases.
            export(model, torch.rand(shape), export_path=str(path), dynamo=False)
        # One self-contained file (the exporter may put the weights beside it).
        onnx.save(onnx.load(str(path)), str(path), save_as_external_data=False)
        Path(f"{path}.data").unlink(missing_ok=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])  # the models named, or all
