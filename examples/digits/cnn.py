"""A tiny NumPy CNN for the 8x8 digits: forward, backward and Adam, nothing else.

PyTorch is not a dependency of qfab, and the network is small enough that im2col convolutions
in float64 NumPy train in seconds. float64 keeps the run reproducible and far from the float32
rounding that the exported model then sees.

Architecture (NCHW, batch N)::

    input [N,1,8,8]
    conv1  Conv 1->8,  3x3, pad 1, stride 1 + Relu   -> [N,8,8,8]
    conv2  Conv 8->16, 3x3, pad 1, stride 2 + Relu   -> [N,16,4,4]
    pool   MaxPool 2x2, stride 2                     -> [N,16,2,2]
    flat   Flatten                                   -> [N,64]
    fc     Gemm 64->10 (B transposed)                -> logits [N,10]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CONV_SPECS = {"conv1": (1, 8, 1), "conv2": (8, 16, 2)}  # name -> (in_ch, out_ch, stride)
FC_IN, FC_OUT = 64, 10


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal weights, zero biases, in ONNX layouts (Conv OIHW, Gemm B as [out, in])."""
    params: dict[str, np.ndarray] = {}
    for name, (cin, cout, _) in CONV_SPECS.items():
        params[f"{name}.w"] = rng.normal(0.0, np.sqrt(2.0 / (cin * 9)), (cout, cin, 3, 3))
        params[f"{name}.b"] = np.zeros(cout)
    params["fc.w"] = rng.normal(0.0, np.sqrt(1.0 / FC_IN), (FC_OUT, FC_IN))
    params["fc.b"] = np.zeros(FC_OUT)
    return params


def _im2col(x: np.ndarray, stride: int) -> np.ndarray:
    """[N,C,H,W] -> [N,Ho,Wo,C*9] patches of a 3x3 window with padding 1."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = sliding_window_view(xp, (3, 3), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * 9)


def _col2im(dcols: np.ndarray, x_shape: tuple[int, ...], stride: int) -> np.ndarray:
    """Adjoint of :func:`_im2col`: scatter-add patch gradients back onto the input."""
    n, c, h, w = x_shape
    _, ho, wo, _ = dcols.shape
    d6 = dcols.reshape(n, ho, wo, c, 3, 3).transpose(0, 3, 1, 2, 4, 5)
    dxp = np.zeros((n, c, h + 2, w + 2))
    for kh in range(3):
        for kw in range(3):
            dxp[:, :, kh : kh + stride * ho : stride, kw : kw + stride * wo : stride] += d6[
                ..., kh, kw
            ]
    return dxp[:, :, 1:-1, 1:-1]


def fake_quant_act(x: np.ndarray, scale: float, bits: int) -> np.ndarray:
    """Unsigned ``bits``-bit per-tensor quantization with zero point 0, back to real values."""
    return np.clip(np.round(x / scale), 0, 2**bits - 1) * scale


def activation_ranges(params: dict[str, np.ndarray], x: np.ndarray) -> dict[str, float]:
    """Largest value of the input and of each Relu output over ``x`` (all are >= 0)."""
    _, cache = forward(params, x.astype(np.float64))
    ranges = {"input": float(x.max())}
    for name in CONV_SPECS:
        ranges[name] = float(cache[name][2].max())
    return ranges


def forward(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    act_scales: dict[str, float] | None = None,
    act_bits: int = 4,
) -> tuple[np.ndarray, dict]:
    """Logits for ``x`` [N,1,8,8] and the cache :func:`backward` needs.

    With ``act_scales`` (keys as in :func:`activation_ranges`), the input and each Relu output
    are fake-quantized to ``act_bits`` unsigned bits, as the QDQ model will quantize them.
    """
    cache: dict = {}
    h = fake_quant_act(x, act_scales["input"], act_bits) if act_scales else x
    for name, (_, cout, stride) in CONV_SPECS.items():
        in_shape = h.shape
        cols = _im2col(h, stride)
        w = params[f"{name}.w"].reshape(cout, -1)
        pre = cols @ w.T + params[f"{name}.b"]  # [N,Ho,Wo,Cout]
        # Straight-through: the gradient passes where the quantizer does not clip.
        live = pre > 0
        h = np.maximum(pre, 0.0)
        if act_scales:
            live &= pre < (2**act_bits - 0.5) * act_scales[name]
            h = fake_quant_act(h, act_scales[name], act_bits)
        cache[name] = (cols, in_shape, pre, live)
        h = h.transpose(0, 3, 1, 2)
    n, c, hh, ww = h.shape
    win = h.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(n, c, hh // 2, ww // 2, 4)
    arg = win.argmax(axis=-1)
    pooled = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    cache["pool"] = (arg, h.shape)
    flat = pooled.reshape(n, -1)
    cache["fc"] = flat
    return flat @ params["fc.w"].T + params["fc.b"], cache


def backward(
    params: dict[str, np.ndarray], cache: dict, dlogits: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of the loss for every parameter, given d(loss)/d(logits)."""
    grads: dict[str, np.ndarray] = {}
    flat = cache["fc"]
    grads["fc.w"] = dlogits.T @ flat
    grads["fc.b"] = dlogits.sum(axis=0)
    dflat = dlogits @ params["fc.w"]
    arg, h_shape = cache["pool"]
    n, c, hh, ww = h_shape
    dwin = np.zeros((n, c, hh // 2, ww // 2, 4))
    np.put_along_axis(dwin, arg[..., None], dflat.reshape(n, c, hh // 2, ww // 2, 1), axis=-1)
    dh = dwin.reshape(n, c, hh // 2, ww // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    dh = dh.reshape(h_shape)
    for name in reversed(CONV_SPECS):
        _, cout, stride = CONV_SPECS[name]
        cols, x_shape, _, live = cache[name]
        dpre = dh.transpose(0, 2, 3, 1) * live
        dflat_pre = dpre.reshape(-1, cout)
        grads[f"{name}.w"] = (dflat_pre.T @ cols.reshape(-1, cols.shape[-1])).reshape(
            params[f"{name}.w"].shape
        )
        grads[f"{name}.b"] = dflat_pre.sum(axis=0)
        if name != next(iter(CONV_SPECS)):
            dcols = dpre @ params[f"{name}.w"].reshape(cout, -1)
            dh = _col2im(dcols, x_shape, stride)
    return grads


def softmax_xent(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = float(-np.log(p[np.arange(n), labels]).mean())
    p[np.arange(n), labels] -= 1.0
    return loss, p / n


@dataclass
class Adam:
    """Adam with decoupled weight decay (AdamW); state keyed like the parameters."""

    lr: float = 3e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    step_count: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.step_count += 1
        t = self.step_count
        for key, g in grads.items():
            m = self.m.setdefault(key, np.zeros_like(g))
            v = self.v.setdefault(key, np.zeros_like(g))
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            mhat = m / (1 - self.beta1**t)
            vhat = v / (1 - self.beta2**t)
            if key.endswith(".w"):
                params[key] *= 1 - self.lr * self.weight_decay
            params[key] -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def fake_quant_weights(params: dict[str, np.ndarray], bits: int) -> dict[str, np.ndarray]:
    """Weights rounded to a per-tensor symmetric ``bits``-bit grid, biases unchanged.

    The grid is onnxruntime's for symmetric int4: scale ``2 * max|w| / (2**bits - 1)``, codes
    clipped to ``[-2**(bits-1), 2**(bits-1) - 1]``, so the weights the 4-bit model will hold
    are the ones training saw.
    """
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    out = dict(params)
    for key, w in params.items():
        if key.endswith(".w"):
            scale = 2.0 * np.abs(w).max() / (qmax - qmin)
            out[key] = np.clip(np.round(w / scale), qmin, qmax) * scale
    return out


def train(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    params: dict[str, np.ndarray] | None = None,
    epochs: int = 30,
    batch: int = 32,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    qat_bits: int | None = None,
    act_scales: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Train with Adam, cosine learning-rate decay and a seeded shuffle; same inputs, same
    weights.

    Starts from ``params`` (copied) if given, else from a seeded initialization. With
    ``qat_bits``, forward and backward run through weights fake-quantized by
    :func:`fake_quant_weights` and the gradients update the float weights (straight-through
    estimator), so the weights settle where ``qat_bits``-bit quantization keeps them. With
    ``act_scales`` as well, activations are fake-quantized too (see :func:`forward`).
    """
    rng = np.random.default_rng(seed)
    params = {k: v.copy() for k, v in params.items()} if params else init_params(rng)
    opt = Adam(lr=lr, weight_decay=weight_decay)
    x_all = images.astype(np.float64)
    for epoch in range(epochs):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay, per epoch
        order = rng.permutation(len(labels))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            used = fake_quant_weights(params, qat_bits) if qat_bits else params
            logits, cache = forward(used, x_all[idx], act_scales, qat_bits or 8)
            _, dlogits = softmax_xent(logits, labels[idx])
            opt.step(params, backward(used, cache, dlogits))
    return params


def predict(
    params: dict[str, np.ndarray],
    images: np.ndarray,
    act_scales: dict[str, float] | None = None,
    qat_bits: int | None = None,
) -> np.ndarray:
    """Predicted class of each image, through fake quantization if ``qat_bits`` is given."""
    if qat_bits:
        params = fake_quant_weights(params, qat_bits)
    logits, _ = forward(params, images.astype(np.float64), act_scales, qat_bits or 8)
    return logits.argmax(axis=1)
