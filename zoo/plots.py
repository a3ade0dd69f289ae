"""Figures the runs log to MLflow: image grids, confusion matrices and the learning curve (matplotlib, no display)."""

import math

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_grid(images, titles=None, columns=None, cmap="gray", size=1.2):
    """Return a figure that tiles `images` (N, H, W[, C], values in [0, 1]) with optional titles."""
    plt = _pyplot()
    images = np.asarray(images)
    count = len(images)
    columns = columns or int(math.ceil(math.sqrt(max(count, 1))))
    rows = int(math.ceil(count / columns)) if count else 1
    fig, axes = plt.subplots(
        rows, columns, figsize=(size * columns, size * rows * (1.25 if titles else 1)), squeeze=False
    )
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index >= count:
            continue
        image = images[index]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        axis.imshow(
            np.clip(image, 0, 1), cmap=cmap if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest"
        )
        if titles is not None:
            axis.set_title(str(titles[index]), fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrix(true, predicted, class_names):
    """Return a figure of the confusion matrix (rows: true class, columns: predicted class)."""
    plt = _pyplot()
    count = len(class_names)
    matrix = np.zeros((count, count), dtype=int)
    np.add.at(matrix, (np.asarray(true, dtype=int), np.asarray(predicted, dtype=int)), 1)
    fig, axis = plt.subplots(figsize=(0.45 * count + 2.5, 0.45 * count + 2))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(count), [str(c) for c in class_names], rotation=90, fontsize=7)
    axis.set_yticks(range(count), [str(c) for c in class_names], fontsize=7)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    for (row, column), value in np.ndenumerate(matrix):
        if value:
            axis.text(
                column,
                row,
                str(value),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if value > matrix.max() / 2 else "black",
            )
    fig.tight_layout()
    return fig


def tile_images(images, columns=None, padding=1, scale=1):
    """Tile `images` (N, H, W[, C], values in [0, 1]) into one uint8 array (rows*H', columns*W', C).

    Each image is enlarged `scale` times (nearest neighbour, so that 8x8 digits stay readable) and
    separated from its neighbours by `padding` pixels of mid grey. The result can go straight to
    `mlflow.log_image` or to a PNG file.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[..., np.newaxis]
    count, height, width, channels = images.shape
    columns = columns or int(math.ceil(math.sqrt(max(count, 1))))
    rows = int(math.ceil(count / columns)) if count else 1
    if scale > 1:
        images = images.repeat(scale, axis=1).repeat(scale, axis=2)
        height, width = height * scale, width * scale
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), 0.5, dtype="float32"
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = np.clip(image, 0.0, 1.0)
    return (grid * 255.0 + 0.5).astype("uint8")


def forecast(series, days, predicted, title=""):
    """Return a figure of a series with forecasts at `days` (indices into `series`) over it."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 3.5))
    axis.plot(np.arange(len(series)), series, label="actual", color="black", linewidth=1)
    axis.plot(days, predicted, label="forecast", linewidth=1)
    axis.set_xlabel("step")
    axis.set_title(title, fontsize=9)
    axis.legend()
    fig.tight_layout()
    return fig


def forecast_panels(times, series, test_start, target_times, forecasts, title=""):
    """Return a figure per horizon step: the series, the test span shaded, and each forecast.

    Args:
        times, series: the history and the test span (time labels and values).
        test_start: the time the test span begins at.
        target_times: {steps ahead: the times the forecasts are for}.
        forecasts: {steps ahead: {name: forecast values}}; "network" is drawn strongest.
    """
    plt = _pyplot()
    panels = sorted(forecasts)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), squeeze=False)
    for axis, ahead in zip(axes[:, 0], panels):
        axis.plot(times, series, label="history and truth", color="black", linewidth=1)
        axis.axvspan(test_start, times[-1], color="0.92", zorder=0)
        for name, values in forecasts[ahead].items():
            strong = name == "network"
            axis.plot(
                target_times[ahead], values, label=name, linewidth=1.6 if strong else 0.9, alpha=1 if strong else 0.8
            )
        axis.set_title(f"{title} ({ahead} step(s) ahead)", fontsize=9)
        axis.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def line_grid(images, titles, columns=2, width=5.0):
    """Return a figure of wide images (N, H, W[, 1], values in [0, 1]), e.g. text lines, one per cell.

    Unlike `image_grid`, cells take the images' aspect ratio, so a line 8 pixels high and 90 wide
    is not lost in a square cell.
    """
    plt = _pyplot()
    images = np.asarray(images)
    count = len(images)
    rows = max(1, int(math.ceil(count / columns)))
    height = width * images.shape[1] / images.shape[2] if count else 1.0
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, (height + 0.45) * rows), squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < count:
            image = images[index][..., 0] if images.ndim == 4 else images[index]
            axis.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axis.set_title(str(titles[index]), fontsize=8)
    fig.tight_layout()
    return fig


def learning_curve(history):
    """Return a matplotlib figure with one panel per metric: training and validation per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(4.5 * max(1, len(names)), 3.5), squeeze=False)
    for axis, name in zip(axes[0], names):
        epochs = range(len(history[name]))
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(range(len(history[f"val_{name}"])), history[f"val_{name}"], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.legend()
    fig.tight_layout()
    return fig
