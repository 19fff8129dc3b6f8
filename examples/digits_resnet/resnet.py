"""A tiny NumPy residual CNN for the 8x8 digits: forward, backward and Adam, nothing else.

The same approach as ``examples/digits/cnn.py`` (im2col convolutions in float64 NumPy, no
PyTorch), with a MobileNet-style residual block: a depthwise 3x3 convolution and a pointwise
1x1 convolution whose sum with the block's input (an identity shortcut) goes through a Relu.
Activations are kept channels-last (NHWC) inside; parameters are in ONNX layouts.

Architecture (NCHW, batch N)::

    input [N,1,8,8]
    conv1  Conv 1->8,  3x3, pad 1 + Relu                         -> h1 [N,8,8,8]
    dw     Conv 8->8,  3x3, pad 1, group 8 (depthwise) + Relu     -> [N,8,8,8]
    pw     Conv 8->8,  1x1                                       -> [N,8,8,8]
    add    pw + h1 (identity shortcut) + Relu                    -> [N,8,8,8]
    conv2  Conv 8->16, 3x3, pad 1, stride 2 + Relu               -> [N,16,4,4]
    pool   MaxPool 2x2, stride 2                                 -> [N,16,2,2]
    flat   Flatten                                               -> [N,64]
    fc     Gemm 64->10 (B transposed)                            -> logits [N,10]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

CHANNELS = 8  # conv1's outputs, and the residual block's width
CONV2_OUT = 16
FC_IN, FC_OUT = CONV2_OUT * 2 * 2, 10
# name -> ONNX weight shape
SHAPES = {
    "conv1.w": (CHANNELS, 1, 3, 3),
    "dw.w": (CHANNELS, 1, 3, 3),
    "pw.w": (CHANNELS, CHANNELS, 1, 1),
    "conv2.w": (CONV2_OUT, CHANNELS, 3, 3),
    "fc.w": (FC_OUT, FC_IN),
}
# Names of the Relu outputs (the tensors onnxruntime calibrates), in network order.
ACTIVATIONS = ("conv1", "dw", "add", "conv2")


def init_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """He-normal weights, zero biases. The pointwise conv starts at half the He scale, so the
    block starts close to its shortcut."""
    params: dict[str, np.ndarray] = {}
    for key, shape in SHAPES.items():
        fan_in = int(np.prod(shape[1:]))
        gain = 1.0 if key == "fc.w" else 2.0
        std = np.sqrt(gain / fan_in) * (0.5 if key == "pw.w" else 1.0)
        params[key] = rng.normal(0.0, std, shape)
        params[key[:-2] + ".b"] = np.zeros(shape[0])
    return params


def _im2col(x: np.ndarray, stride: int) -> np.ndarray:
    """NHWC [N,H,W,C] -> [N,Ho,Wo,C,9] patches of a 3x3 window with padding 1."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = sliding_window_view(xp, (3, 3), axis=(1, 2))[:, ::stride, ::stride]
    n, ho, wo, c = win.shape[:4]
    return win.reshape(n, ho, wo, c, 9)


def _col2im(dcols: np.ndarray, x_shape: tuple[int, ...], stride: int) -> np.ndarray:
    """Adjoint of :func:`_im2col`: scatter-add patch gradients back onto the NHWC input."""
    n, h, w, c = x_shape
    _, ho, wo, _, _ = dcols.shape
    d6 = dcols.reshape(n, ho, wo, c, 3, 3)
    dxp = np.zeros((n, h + 2, w + 2, c))
    for kh in range(3):
        for kw in range(3):
            dxp[:, kh : kh + stride * ho : stride, kw : kw + stride * wo : stride] += d6[
                ..., kh, kw
            ]
    return dxp[:, 1:-1, 1:-1]


def _depthwise(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Depthwise 3x3 conv, pad 1, stride 1, of NHWC ``x`` with ONNX weights [C,1,3,3]: a sum
    of nine shifted copies of ``x``, each scaled per channel."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w_ = x.shape[1:3]
    out = np.zeros_like(x)
    for kh in range(3):
        for kw in range(3):
            out += xp[:, kh : kh + h, kw : kw + w_] * w[:, 0, kh, kw]
    return out


def _depthwise_backward(
    x: np.ndarray, w: np.ndarray, dout: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of :func:`_depthwise` for its weights and its input, given d(out)."""
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w_ = x.shape[1:3]
    dw = np.zeros_like(w)
    dxp = np.zeros_like(xp)
    for kh in range(3):
        for kw in range(3):
            dw[:, 0, kh, kw] = np.einsum("nhwc,nhwc->c", dout, xp[:, kh : kh + h, kw : kw + w_])
            dxp[:, kh : kh + h, kw : kw + w_] += dout * w[:, 0, kh, kw]
    return dw, dxp[:, 1:-1, 1:-1]


def _conv3x3(params, name, h, stride):
    """Full 3x3 conv, pad 1: returns the pre-activation [N,Ho,Wo,Cout] and the patches."""
    cols = _im2col(h, stride)
    n, ho, wo, c, _ = cols.shape
    w = params[f"{name}.w"].reshape(len(params[f"{name}.b"]), -1)  # [Cout, Cin*9]
    return cols.reshape(n, ho, wo, c * 9) @ w.T + params[f"{name}.b"], cols


def forward(params: dict[str, np.ndarray], x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logits for ``x`` [N,1,8,8] and the cache :func:`backward` needs."""
    cache: dict = {}
    h0 = x.transpose(0, 2, 3, 1)
    pre1, cols1 = _conv3x3(params, "conv1", h0, 1)
    h1 = np.maximum(pre1, 0.0)
    pre_dw = _depthwise(h1, params["dw.w"]) + params["dw.b"]
    r_dw = np.maximum(pre_dw, 0.0)
    pw = r_dw @ params["pw.w"].reshape(CHANNELS, CHANNELS).T + params["pw.b"]
    s = pw + h1
    a = np.maximum(s, 0.0)
    pre2, cols2 = _conv3x3(params, "conv2", a, 2)
    h2 = np.maximum(pre2, 0.0).transpose(0, 3, 1, 2)  # NCHW [N,16,4,4]
    n, c, hh, ww = h2.shape
    win = h2.reshape(n, c, hh // 2, 2, ww // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    win = win.reshape(n, c, hh // 2, ww // 2, 4)
    arg = win.argmax(axis=-1)
    flat = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0].reshape(n, -1)
    cache.update(conv1=(cols1, pre1), dw=(h1, pre_dw), pw=r_dw, add=s,
                 conv2=(cols2, pre2, a.shape), pool=(arg, h2.shape), fc=flat)
    return flat @ params["fc.w"].T + params["fc.b"], cache


def activation_ranges(params: dict[str, np.ndarray], x: np.ndarray) -> dict[str, float]:
    """Largest value of each Relu output over ``x`` (all are >= 0)."""
    _, cache = forward(params, x.astype(np.float64))
    pre = {"conv1": cache["conv1"][1], "dw": cache["dw"][1], "add": cache["add"],
           "conv2": cache["conv2"][1]}
    return {name: float(np.maximum(pre[name], 0).max()) for name in ACTIVATIONS}


def backward(
    params: dict[str, np.ndarray], cache: dict, dlogits: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of the loss for every parameter, given d(loss)/d(logits)."""
    g: dict[str, np.ndarray] = {}
    flat = cache["fc"]
    g["fc.w"] = dlogits.T @ flat
    g["fc.b"] = dlogits.sum(axis=0)
    dflat = dlogits @ params["fc.w"]
    arg, h_shape = cache["pool"]
    n, c, hh, ww = h_shape
    dwin = np.zeros((n, c, hh // 2, ww // 2, 4))
    np.put_along_axis(dwin, arg[..., None], dflat.reshape(n, c, hh // 2, ww // 2, 1), axis=-1)
    dh2 = dwin.reshape(n, c, hh // 2, ww // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
    dh2 = dh2.reshape(h_shape).transpose(0, 2, 3, 1)  # NHWC

    cols2, pre2, a_shape = cache["conv2"]
    dpre2 = dh2 * (pre2 > 0)
    d2 = dpre2.reshape(-1, CONV2_OUT)
    g["conv2.w"] = (d2.T @ cols2.reshape(d2.shape[0], -1)).reshape(SHAPES["conv2.w"])
    g["conv2.b"] = d2.sum(axis=0)
    dcols2 = (dpre2 @ params["conv2.w"].reshape(CONV2_OUT, -1)).reshape(cols2.shape)
    da = _col2im(dcols2, a_shape, 2)

    ds = da * (cache["add"] > 0)  # flows into the pointwise conv and the shortcut alike
    r_dw = cache["pw"]
    dsf = ds.reshape(-1, CHANNELS)
    g["pw.w"] = (dsf.T @ r_dw.reshape(-1, CHANNELS)).reshape(SHAPES["pw.w"])
    g["pw.b"] = dsf.sum(axis=0)
    dpre_dw = (ds @ params["pw.w"].reshape(CHANNELS, CHANNELS)) * (r_dw > 0)

    h1, _ = cache["dw"]
    dw_w, dh_dw = _depthwise_backward(h1, params["dw.w"], dpre_dw)
    g["dw.w"] = dw_w
    g["dw.b"] = dpre_dw.sum(axis=(0, 1, 2))
    dh1 = ds + dh_dw

    cols1, pre1 = cache["conv1"]
    d1 = (dh1 * (pre1 > 0)).reshape(-1, CHANNELS)
    g["conv1.w"] = (d1.T @ cols1.reshape(d1.shape[0], -1)).reshape(SHAPES["conv1.w"])
    g["conv1.b"] = d1.sum(axis=0)
    return g


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
    """Adam with decoupled weight decay (AdamW) on the weights; state keyed like the
    parameters."""

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
        for key in sorted(grads):
            grad = grads[key]
            m = self.m.setdefault(key, np.zeros_like(grad))
            v = self.v.setdefault(key, np.zeros_like(grad))
            m *= self.beta1
            m += (1 - self.beta1) * grad
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            mhat = m / (1 - self.beta1**t)
            vhat = v / (1 - self.beta2**t)
            if key.endswith(".w"):
                params[key] *= 1 - self.lr * self.weight_decay
            params[key] -= self.lr * mhat / (np.sqrt(vhat) + self.eps)


def train(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    epochs: int = 30,
    batch: int = 64,
    lr: float = 1e-2,
    weight_decay: float = 1e-3,
) -> dict[str, np.ndarray]:
    """Train with Adam, cosine learning-rate decay and a seeded shuffle; same inputs, same
    weights."""
    rng = np.random.default_rng(seed)
    params = init_params(rng)
    opt = Adam(lr=lr, weight_decay=weight_decay)
    x_all = images.astype(np.float64)
    for epoch in range(epochs):
        opt.lr = lr * 0.5 * (1 + np.cos(np.pi * epoch / epochs))  # cosine decay, per epoch
        order = rng.permutation(len(labels))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits, cache = forward(params, x_all[idx])
            _, dlogits = softmax_xent(logits, labels[idx])
            opt.step(params, backward(params, cache, dlogits))
    return params


def predict(params: dict[str, np.ndarray], images: np.ndarray) -> np.ndarray:
    """Predicted class of each image."""
    logits, _ = forward(params, images.astype(np.float64))
    return logits.argmax(axis=1)
