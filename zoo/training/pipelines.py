"""Input pipelines: how a recipe's unbatched `tf.data.Dataset`s become the batches `fit`, `evaluate` and
`predict` read.

A new way of feeding data to every recipe (caching, sharding, prefetching) belongs here. Nothing
here knows the device strategy: the replica count comes in as an argument
(`zoo.training.devices.replicas(model)` gives a built model's).
"""

import math
import typing


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
    is only rebatched to `batch_size` and prefetched.

    With several replicas, a dataset smaller than `batch_size` is batched by the largest multiple
    of the replica count that fits: Keras cannot start `fit`, `evaluate` or `predict` on a first
    batch that splits unevenly (57 rows on 2 replicas).

    Args:
        dataset: an unbatched `tf.data.Dataset`.
        batch_size: the global batch size.
        replicas: the replica count of the model that reads the batches.
        shuffle_buffer: shuffle with a buffer this large (0: keep the order).
        seed: the shuffle's seed.
        streamed: the dataset is streamed from disk (see above).
    """
    import tensorflow as tf

    if streamed:
        return dataset.rebatch(batch_size).prefetch(tf.data.AUTOTUNE)
    size = int(dataset.cardinality())
    if replicas > 1 and 0 < size < batch_size:
        batch_size = max(replicas, size - size % replicas)
    dataset = dataset.cache()
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def training_batches(
    dataset: typing.Any, num_examples: int, batch_size: int, seed: int, initial_epoch: int = 0, streamed: bool = False
) -> tuple[typing.Any, int]:
    """Endless shuffled batches whose order depends only on (seed, epoch).

    A `streamed` dataset (read from disk on every pass) is not cached: it yields batches of rows
    it shuffled itself, within bounded memory, and is only rebatched to `batch_size` here
    (`zoo.datasets.streaming`).

    Returns:
        (dataset, steps_per_epoch). Resuming at `initial_epoch` skips exactly the batches the
        interrupted run had seen, so it sees the same batches an uninterrupted run would.
    """
    import tensorflow as tf

    steps = max(1, math.ceil(num_examples / batch_size))
    if streamed:
        dataset = dataset.rebatch(batch_size)
    else:
        dataset = dataset.cache().shuffle(max(1, num_examples), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(batch_size)
    dataset = dataset.repeat()
    if initial_epoch:
        dataset = dataset.skip(initial_epoch * steps)
    return dataset.prefetch(tf.data.AUTOTUNE), steps
