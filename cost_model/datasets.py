"""Data for sweeps and searches: calibration inputs that set the quantizer scales, test inputs
that score each design, and the metric that scores it.

``load_data(source)`` reads, by what ``source`` is:

- ``digits``: scikit-learn's 8x8 digits as the examples use them (1437 training images for
  calibration, 360 test images with labels);
- ``digits-shifted``: the same, each test image also moved by one pixel in each of the eight
  directions (zero-filled, as the examples' training moves its images): 3240 test images,
  so that one image is 0.03 points, not 0.28;
- ``FILE.npy``: inputs only (``x``);
- ``FILE.npz`` or a folder holding ``x.npy`` (and the other keys as ``KEY.npy``):
  ``x`` the model inputs (first axis the sample), ``y`` optional targets, ``x_calibration``
  optional calibration inputs. Without ``x_calibration`` the first ``calibration`` samples
  of ``x`` calibrate and the rest test;
- a folder of class folders of images (``cat/001.png``, ``dog/002.png``, ...): labels are the
  class folders in sorted order, pixels scaled to [0, 1], NCHW, split as above.

Integer labels of shape [N] make the metric top-1 accuracy. Float targets ``y`` shaped as the
output make it the signal-to-noise ratio of the output against them, in dB; without ``y``, the
SNR is taken against the float model's own output (a regression or autoencoder). Higher is
better for both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qfab.errors import QfabError

DIGITS_TRAIN = 1437  # examples/digits/make_models.py: the first 1437 images train
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm")
KEYS = ("x", "y", "x_calibration")


@dataclass(frozen=True)
class Dataset:
    """Calibration and test inputs, the test targets (or None) and the metric's name."""

    name: str
    x_calibration: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray | None

    @property
    def metric(self) -> str:
        """``top1`` for integer labels, ``snr_db`` otherwise."""
        return "top1" if self.y_test is not None and _is_labels(self.y_test) else "snr_db"


def _is_labels(y: np.ndarray) -> bool:
    return y.ndim == 1 and (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_))


def digits() -> Dataset:
    """scikit-learn digits: float32 NCHW in [0, 1], the examples' fixed split."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    return Dataset("digits", x[:DIGITS_TRAIN], x[DIGITS_TRAIN:], y[DIGITS_TRAIN:])


def shifted(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Images ``x`` (NCHW) moved by (dy, dx) pixels, zero-filled."""
    out = np.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = x[
        ..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def digits_shifted() -> Dataset:
    """``digits`` with each test image at the nine moves by -1, 0 or +1 pixel in each
    direction (the unmoved images first)."""
    d = digits()
    moves = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    x = np.concatenate([shifted(d.x_test, dy, dx) for dy, dx in moves])
    return Dataset("digits-shifted", d.x_calibration, x, np.tile(d.y_test, len(moves)))


BUILT_IN = {"digits": digits, "digits-shifted": digits_shifted}


def digest(source: str) -> str:
    """Hash of a data source's content (a file, or every file of a folder), for cache keys."""
    if source in BUILT_IN:
        return source
    p = Path(source)
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
        if f.is_file():
            h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def load_data(source: str, calibration: int = 256, test: int | None = None) -> Dataset:
    """The data set ``source`` names (see the module docstring); ``calibration`` samples set
    the scales (at most), ``test`` keeps the first N test samples. Problems raise a one-line
    QfabError naming the file and key."""
    if source in BUILT_IN:
        d = BUILT_IN[source]()
        arrays = {"x": d.x_test, "y": d.y_test, "x_calibration": d.x_calibration}
    else:
        arrays = _read(Path(source))
    x = arrays["x"]
    y = arrays.get("y")
    if y is not None and len(y) != len(x):
        raise QfabError(f"data {source}: y has {len(y)} samples, x has {len(x)}")
    if "x_calibration" in arrays:
        cal = arrays["x_calibration"]
    else:
        if len(x) < 2:
            raise QfabError(f"data {source}: x has {len(x)} samples; at least two are needed "
                            "(calibration and test), or give x_calibration")
        n = min(calibration, len(x) // 2)
        cal, x = x[:n], x[n:]
        y = None if y is None else y[n:]
    if test:
        x, y = x[:test], None if y is None else y[:test]
    return Dataset(str(source), cal[:calibration].astype(np.float32), x.astype(np.float32), y)


def _read(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir() and not (path / "x.npy").is_file():
        return _image_folder(path)
    try:
        if path.is_dir():
            arrays = {k: np.load(path / f"{k}.npy") for k in KEYS if (path / f"{k}.npy").is_file()}
        elif path.suffix == ".npy" and path.is_file():
            arrays = {"x": np.load(path)}
        elif path.suffix == ".npz":
            with np.load(path) as npz:
                arrays = {k: npz[k] for k in npz.files}
        elif path.exists():
            raise QfabError(f"data {path}: expected digits, an .npz or .npy, or a folder of "
                            ".npy files or of class folders of images")
        else:
            raise QfabError(f"data {path}: no such file or folder")
    except (OSError, ValueError) as e:
        raise QfabError(f"data {path}: not readable as NumPy arrays ({e})") from None
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise QfabError(f"data {path}: unknown key {unknown[0]!r} (known: {', '.join(KEYS)})")
    if "x" not in arrays:
        raise QfabError(f"data {path}: no key 'x' (the model inputs)")
    for k, v in arrays.items():
        if k != "y" and not np.issubdtype(v.dtype, np.number):
            raise QfabError(f"data {path}: key {k!r} is {v.dtype}, not numbers")
    return arrays


def _image_folder(path: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    files = [(i, f) for i, c in enumerate(classes) for f in sorted(c.iterdir())
             if f.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise QfabError(f"data {path}: a folder needs x.npy or class folders of images")
    images = []
    for _, f in files:
        a = np.asarray(Image.open(f), dtype=np.float32) / 255.0
        images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    if len({a.shape for a in images}) != 1:
        raise QfabError(f"data {path}: the images differ in size")
    x = np.stack(images)
    y = np.array([i for i, _ in files], np.int64)
    rank = np.zeros(len(files), np.int64)
    for c in range(len(classes)):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))
    # Interleave the classes (the k-th image of every class, then the next), so that a
    # calibration prefix sees every class.
    order = np.lexsort((y, rank))
    return {"x": x[order], "y": y[order]}


def check_fits(dataset: Dataset, model) -> None:
    """A one-line QfabError when the samples' shape is not the model input's (its fixed
    dimensions after the batch)."""
    from qfab.cost_model.quantize import data_inputs

    value = data_inputs(model.graph)[0]
    dims = [d.dim_value or None for d in value.type.tensor_type.shape.dim][1:]
    for name, x in (("x_calibration", dataset.x_calibration), ("x", dataset.x_test)):
        shape = list(x.shape[1:])
        if len(shape) != len(dims) or any(d is not None and d != s
                                          for d, s in zip(dims, shape, strict=True)):
            want = "x".join("?" if d is None else str(d) for d in dims)
            raise QfabError(f"data {dataset.name}: {name} samples are "
                            f"{'x'.join(map(str, shape))}, the model's input "
                            f"{value.name!r} takes N x {want}")


def score(dataset: Dataset, output: np.ndarray, float_output: np.ndarray | None) -> float:
    """The metric of ``output`` on the test set: top-1 accuracy, or the SNR in dB against
    the targets (or the float model's output when there are none)."""
    output = np.asarray(output, np.float64)
    if dataset.metric == "top1":
        return float((output.reshape(len(output), -1).argmax(-1) == dataset.y_test).mean())
    target = dataset.y_test if dataset.y_test is not None else float_output
    return snr_db(np.asarray(target, np.float64).reshape(output.shape), output)


def snr_db(signal: np.ndarray, approx: np.ndarray) -> float:
    """10 log10(signal power / error power); 200 dB stands for an exact match."""
    noise = float(np.mean((signal - approx) ** 2))
    power = float(np.mean(signal ** 2))
    if noise == 0:
        return 200.0
    return 10 * float(np.log10(max(power, 1e-30) / noise))
