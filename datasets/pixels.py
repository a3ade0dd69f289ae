"""Image files to gray pixels, and resizing, with Pillow and NumPy: what `tf.io` and `tf.image` give, off TensorFlow.

JAX and PyTorch machines often have no TensorFlow, so the OCR lines (`zoo.datasets.text_lines`)
are read and resized here on every backend. The resize reproduces `tf.image.resize` as a pair of
interpolation matrices, one per axis (`resized = rows @ image @ columns.T`):

- `"bilinear"` (antialias off, TensorFlow 2's half-pixel centres): output pixel i samples the input at
  (i + 0.5) * in / out - 0.5, clamped to the edge pixels, interpolating its two neighbours;
- `"area"`: output pixel i averages the input cells it covers, [i * in / out, (i + 1) * in / out),
  each weighted by the share of it covered (the weights of `zoo.datasets.images.area_resize`).

Decoding: Pillow reads PNG, JPEG, BMP and GIF (the formats `tf.io.decode_image` takes; others are
refused the same way), the first frame of an animation; colour becomes gray with ITU-R 601
weights (a JPEG's own luma), alpha is dropped, 16-bit gray keeps its high byte.
`tests/test_ocr.py` states how far this is from TensorFlow's pixels.
"""

import functools

import numpy as np

from zoo.datasets import images
from zoo.errors import ZooError

# What `tf.io.decode_image` reads; Pillow opens more (TIFF, WebP), which TensorFlow refuses.
FORMATS = ("PNG", "JPEG", "BMP", "GIF")


def read_gray(path):
    """One image file as grayscale pixels.

    Args:
        path: a PNG, JPEG, BMP or GIF file.

    Returns:
        float32 array (height, width) with values 0-255.

    Raises:
        ZooError: for a file Pillow cannot decode, or another format.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format not in FORMATS:
                raise ZooError(
                    f"Cannot read image {path}: {image.format} is not read here. Use a PNG, JPEG, BMP or GIF."
                )
            if image.format == "JPEG" and image.mode != "L":
                # Decode straight to gray (the luma the file stores), as libjpeg does for TensorFlow.
                image.draft("L", image.size)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                # 16-bit gray: TensorFlow's uint8 decode keeps the high byte.
                return (np.asarray(image, dtype="int64") >> 8).clip(0, 255).astype("float32")
            return np.asarray(image.convert("L"), dtype="float32")
    except images._pil_errors() as error:
        reason = images._pil_reason(error, str(path))
        raise ZooError(f"Cannot read image {path}: {reason}. Use a PNG, JPEG, BMP or GIF file.") from None


def resize(image, size, method):
    """`tf.image.resize(image, size, method)` of one (height, width[, channels]) image, in NumPy.

    Args:
        image: float pixels.
        size: (height, width) of the result.
        method: "bilinear" or "area".

    Returns:
        float32 array of `size` (plus the image's channels).
    """
    image = np.asarray(image, dtype="float32")
    rows = _weights(image.shape[0], int(size[0]), method)
    columns = _weights(image.shape[1], int(size[1]), method)
    return np.einsum("ih,hw...,jw->ij...", rows, image, columns).astype("float32")


@functools.lru_cache(maxsize=64)
def _weights(size_in, size_out, method):
    """The (size_out, size_in) matrix of one axis of `tf.image.resize`."""
    if method == "area":
        # The image folders' reader (`zoo.datasets.images`) has them already.
        return images._area_weights(size_in, size_out)
    if method != "bilinear":
        raise ValueError(f"Unknown resize method {method!r}; use bilinear or area.")
    # TensorFlow computes the scale, and where each output pixel samples, in float32.
    scale = np.float32(size_in) / np.float32(size_out)
    weights = np.zeros((size_out, size_in), dtype="float64")
    for i in range(size_out):
        at = (np.float32(i) + np.float32(0.5)) * scale - np.float32(0.5)
        below = int(np.floor(at))
        lerp = float(at - below)
        weights[i, max(below, 0)] += 1.0 - lerp
        weights[i, min(int(np.ceil(at)), size_in - 1)] += lerp
    return weights
