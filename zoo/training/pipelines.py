"""Input pipelines: how a recipe's unbatched datasets become the batches `fit`, `evaluate` and
`predict` read.

Three kinds of unbatched dataset come in: a `tf.data.Dataset` (tfds, streamed files, and every
in-memory split on the TensorFlow backend); `Arrays`, in-memory NumPy arrays that `from_arrays`
returns on JAX and PyTorch; and `Stream`, rows read from disk on every pass (a CSV larger than
memory) off TensorFlow. The last two are batched here by a `keras.utils.PyDataset`, so that those
backends train without importing TensorFlow (a JAX-only or PyTorch-only machine runs the in-memory
recipes and streams tables and image folders). All paths give the same guarantees: a training order that depends
only on (seed, epoch), and a resume that sees the batches an uninterrupted run would.

A new way of feeding data to every recipe (caching, sharding, prefetching) belongs here. The
replica count comes in as an argument (`zoo.training.devices.replicas(model)` gives a built
model's); what JAX's several devices or processes need of a batch, `devices.even_batches` does on
`tf.data` and `devices.even_rows` on `Arrays`.
"""

import math
import os
import typing

import numpy as np

from zoo.training import devices


class Arrays:
    """An unbatched in-memory dataset: rows of NumPy inputs (an array or a dict of arrays) and targets.

    What `from_arrays` returns off the TensorFlow backend; `batch` and `training_batches` batch it
    without TensorFlow. `take` and `len` stand in for the `tf.data.Dataset` methods the run uses.

    Args:
        elements: an array, a dict of arrays, or a tuple of those (inputs, targets), all with the
            same number of rows.
    """

    def __init__(self, elements: typing.Any):
        self.elements = elements
        self.rows = len(_leaves(elements)[0])

    def __len__(self) -> int:
        return self.rows

    def take(self, count: int) -> "Arrays":
        """The first `count` rows."""
        return Arrays(_select(self.elements, slice(0, count)))

    def select(self, index: typing.Any) -> typing.Any:
        """The rows at `index` (a slice or an array of row numbers), in the structure of the elements."""
        return _select(self.elements, index)


def _leaves(elements: typing.Any) -> list[typing.Any]:
    if isinstance(elements, dict):
        return [leaf for value in elements.values() for leaf in _leaves(value)]
    if isinstance(elements, tuple | list):
        return [leaf for value in elements for leaf in _leaves(value)]
    return [elements]


def _select(elements: typing.Any, index: typing.Any) -> typing.Any:
    if isinstance(elements, dict):
        return {key: _select(value, index) for key, value in elements.items()}
    if isinstance(elements, tuple | list):
        return tuple(_select(value, index) for value in elements)
    return elements[index]


class Stream:
    """Training rows read from disk on every pass, off TensorFlow: the twin of a streamed `tf.data` dataset.

    `passes(epoch)` yields the rows of one pass (an epoch) in slices of any size, each an element
    of the structure `Arrays` holds (inputs, or (inputs, targets)), already shuffled by the reader
    from (seed, epoch) alone; `training_batches` rebatches them to the batch size and never holds
    more than a slice and a batch. A resume at epoch e asks for pass e directly.

    Args:
        passes: epoch -> iterator of slices (e.g. `zoo.datasets.streaming.StreamedTable.batches`
            with its seed bound).
        rows: the rows of one pass.
    """

    def __init__(self, passes: typing.Callable[[int], typing.Iterable[typing.Any]], rows: int):
        self.passes, self.rows = passes, rows

    def __len__(self) -> int:
        return self.rows

    def take(self, count: int) -> "Stream":
        """The first `count` rows of each pass (what `tf.data.Dataset.take` gives)."""
        return Stream(lambda epoch: _head(self.passes(epoch), count), min(count, self.rows))


def _head(slices: typing.Iterable[typing.Any], count: int) -> typing.Iterator[typing.Any]:
    for part in slices:
        if count <= 0:
            return
        rows = len(_leaves(part)[0])
        yield part if rows <= count else _select(part, slice(0, count))
        count -= rows


def rebatch(slices: typing.Iterable[typing.Any], batch_size: int) -> typing.Iterator[typing.Any]:
    """Batches of `batch_size` rows (the last one smaller) from slices of rows of any size.

    Args:
        slices: elements of one structure (an array, a dict or a tuple of those), each a few rows.
        batch_size: rows per batch.
    """
    pending: list[typing.Any] = []
    held = 0
    for part in slices:
        pending.append(part)
        held += len(_leaves(part)[0])
        if held < batch_size:
            continue
        joined = _concatenate(pending)
        whole = held - held % batch_size
        for start in range(0, whole, batch_size):
            yield _select(joined, slice(start, start + batch_size))
        pending, held = ([_select(joined, slice(whole, held))], held - whole) if held > whole else ([], 0)
    if held:
        yield _concatenate(pending)


def _concatenate(parts: list[typing.Any]) -> typing.Any:
    first = parts[0]
    if len(parts) == 1:
        return first
    if isinstance(first, dict):
        return {key: _concatenate([part[key] for part in parts]) for key in first}
    if isinstance(first, tuple | list):
        return tuple(_concatenate([part[i] for part in parts]) for i in range(len(first)))
    return np.concatenate(parts)


def tensorflow_input() -> bool:
    """Whether the run's input pipelines are `tf.data` (the TensorFlow backend) or NumPy (JAX, PyTorch)."""
    # zoo/__init__.py sets KERAS_BACKEND before Keras is imported, so it names the backend in use.
    return os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"


def from_arrays(*elements: typing.Any) -> typing.Any:
    """An unbatched dataset of in-memory rows: `tf.data` on TensorFlow, `Arrays` on other backends.

    Args:
        *elements: the inputs (an array or a dict of arrays), then the targets if there are any.

    Example:
        >>> train = from_arrays(x_train, y_train)  # then training_batches(train, len(x_train), 32, seed)
    """
    structure = elements[0] if len(elements) == 1 else tuple(elements)
    if tensorflow_input():
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(structure)
    return Arrays(structure)


def _batch_class() -> type:
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        """Batches of `Arrays` rows in a fixed order, or in an order drawn from (seed, epoch)."""

        def __init__(self, arrays: Arrays, batch_size: int, seed: int | None = None, first_epoch: int = 0) -> None:
            super().__init__()
            self.arrays, self.batch_size, self.seed, self.epoch = arrays, batch_size, seed, first_epoch
            # Made inside `devices.run_scope`: on JAX over several devices an epoch's last batch
            # is padded to split evenly, as `devices.even_batches` does on tf.data.
            self.steps = devices.steps_per_epoch(len(arrays), batch_size)
            self.order = self._order()

        def _order(self) -> np.ndarray:
            if self.seed is None:
                return np.arange(len(self.arrays))
            return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.arrays))

        def __len__(self) -> int:
            return self.steps

        def __getitem__(self, index: int) -> typing.Any:
            if index >= self.steps:
                raise IndexError(index)
            rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            picks, weights = devices.even_rows(len(rows))
            # (inputs, targets) gain the padding's sample weights, as on tf.data.
            return devices.weighted(self.arrays.select(rows[picks]), weights)

        def on_epoch_end(self) -> None:
            if self.seed is not None:
                self.epoch += 1
                self.order = self._order()

    return ArrayBatches


def _stream_class() -> type:
    import keras

    class StreamBatches(keras.utils.PyDataset):
        """Batches of a `Stream`, read in order: pass e is the stream's pass for epoch e."""

        def __init__(self, stream: Stream, batch_size: int, first_epoch: int = 0) -> None:
            super().__init__()
            self.stream, self.batch_size, self.epoch = stream, batch_size, first_epoch
            # As `ArrayBatches`: made inside `devices.run_scope`, so JAX's even-batch rule (pad the
            # batch that does not split) applies.
            self.steps = devices.steps_per_epoch(len(stream), batch_size)
            self._open(0)

        def _open(self, index: int) -> None:
            # Keras reads batches in order; a read out of order (a peek at the first batch) opens
            # the pass again and reads up to `index`.
            self.batches = rebatch(self.stream.passes(self.epoch), self.batch_size)
            self.next = 0
            for _ in range(index):
                next(self.batches)
                self.next += 1

        def __len__(self) -> int:
            return self.steps

        def __getitem__(self, index: int) -> typing.Any:
            if index >= self.steps:
                raise IndexError(index)
            if index != self.next:
                self._open(index)
            rows = next(self.batches)
            self.next += 1
            picks, weights = devices.even_rows(len(_leaves(rows)[0]))
            # As `ArrayBatches`: (inputs, targets) gain the padding's sample weights on JAX's devices.
            return devices.weighted(_select(rows, picks), weights)

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._open(0)

    return StreamBatches


def batch(
    dataset: typing.Any,
    batch_size: int,
    replicas: int = 1,
    shuffle_buffer: int = 0,
    seed: int | None = None,
    *,
    streamed: bool = False,
) -> typing.Any:
    """Cache, optionally shuffle, batch and prefetch an unbatched dataset.

    A `streamed` dataset (`Data.streamed`) comes in batches already and is too large to cache: it
    is only rebatched to `batch_size` and prefetched. Off TensorFlow, the held-out splits of
    streamed data are `Arrays` (they sit in memory) and are batched like any other.

    With several replicas, a dataset smaller than `batch_size` is batched by the largest multiple
    of the replica count that fits: Keras cannot start `fit`, `evaluate` or `predict` on a first
    batch that splits unevenly (57 rows on 2 replicas).

    Args:
        dataset: an unbatched `tf.data.Dataset`, `Arrays`, or a `Stream` (read in order).
        batch_size: the global batch size.
        replicas: the replica count of the model that reads the batches.
        shuffle_buffer: shuffle with a buffer this large (0: keep the order).
        seed: the shuffle's seed.
        streamed: the dataset is streamed from disk (see above).
    """
    if isinstance(dataset, Stream):
        # Held-out rows streamed off TensorFlow (an image folder's): read in order on every pass.
        if replicas > 1 and 0 < len(dataset) < batch_size:
            batch_size = max(replicas, len(dataset) - len(dataset) % replicas)
        return _stream_class()(dataset, batch_size)
    if streamed and not isinstance(dataset, Arrays):
        import tensorflow as tf

        rows, batches = -1, dataset.rebatch(batch_size)
        if int(dataset.cardinality()) >= 0:
            # Held-out splits of streamed data sit in memory: count their rows, since `rebatch`
            # forgets the batch count and Keras then warns "Your input ran out of data" at their end.
            rows = int(
                dataset.reduce(np.int64(0), lambda n, *xy: n + tf.cast(tf.shape(tf.nest.flatten(xy)[-1])[0], tf.int64))
            )
            batches = batches.apply(tf.data.experimental.assert_cardinality(math.ceil(rows / batch_size)))
        return devices.even_batches(batches, rows, batch_size).prefetch(tf.data.AUTOTUNE)
    size = len(dataset) if isinstance(dataset, Arrays) else int(dataset.cardinality())
    if replicas > 1 and 0 < size < batch_size:
        batch_size = max(replicas, size - size % replicas)
    if isinstance(dataset, Arrays):
        return _batch_class()(dataset, batch_size, seed=seed if shuffle_buffer else None)
    import tensorflow as tf

    dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return devices.even_batches(dataset.batch(batch_size), size, batch_size).prefetch(tf.data.AUTOTUNE)


def training_batches(
    dataset: typing.Any, num_examples: int, batch_size: int, seed: int, initial_epoch: int = 0, streamed: bool = False
) -> tuple[typing.Any, int]:
    """Endless shuffled batches whose order depends only on (seed, epoch).

    A `streamed` dataset (read from disk on every pass) is not cached: it yields batches of rows
    it shuffled itself, within bounded memory, and is only rebatched to `batch_size` here
    (`zoo.datasets.streaming`): a `tf.data.Dataset` on TensorFlow, a `Stream` elsewhere.

    Returns:
        (dataset, steps_per_epoch). Resuming at `initial_epoch` skips exactly the batches the
        interrupted run had seen, so it sees the same batches an uninterrupted run would.
    """
    steps = devices.steps_per_epoch(num_examples, batch_size)
    if isinstance(dataset, Stream):
        # Each pass is drawn from (seed, epoch) by the reader, so a resume opens initial_epoch's pass.
        return _stream_class()(dataset, batch_size, first_epoch=initial_epoch), steps
    if isinstance(dataset, Arrays):
        # The order of epoch e is drawn from (seed, e) alone, so a resume starts at initial_epoch's order.
        return _batch_class()(dataset, batch_size, seed=seed, first_epoch=initial_epoch), steps
    import tensorflow as tf

    if streamed:
        dataset = dataset.rebatch(batch_size)
    else:
        dataset = dataset.cache().shuffle(max(1, num_examples), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    dataset = devices.even_batches(dataset, num_examples, batch_size).repeat()
    if initial_epoch:
        dataset = dataset.skip(initial_epoch * steps)
    return dataset.prefetch(tf.data.AUTOTUNE), steps
