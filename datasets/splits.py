"""The one train/validation/test split every loader uses, in memory or streamed.

Each row gets a key: a seeded 64-bit hash of its row number (splitmix64's finalizer, a bijection,
so two rows of one table never share a key). Rows ordered by key are a seeded permutation: the
first `n_test` are the test split, the next `n_validation` the validation split, the rest train.

- `split_rows(n, ...)` returns the three index arrays, for data held in memory.
- `RowSplit(n, ...)` decides the split of any row from its row number alone (`assign`), for data
  streamed from disk in chunks: it needs the row count, never the rows, and puts every row where
  `split_rows` puts it, so a table streamed and the same table loaded whole split identically.

Both share `split_sizes`: the same sizes and the same error for data too small to split.
"""

import numpy as np

from zoo.errors import ZooError

TRAIN, VALIDATION, TEST = 0, 1, 2
SPLITS = ("train", "validation", "test")
# splitmix64 (Steele, Lea and Flood 2014): the seed's offset and the finalizer's two multipliers.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def row_keys(rows, seed):
    """Seeded 64-bit keys of row numbers: distinct rows get distinct keys, in a seeded order.

    Args:
        rows: integer row numbers (0-based).
        seed: the split's seed.

    Returns:
        uint64 array, one key per row.
    """
    with np.errstate(over="ignore"):
        offset = np.uint64(seed % 2**64) * _GOLDEN + _GOLDEN
        z = np.asarray(rows, dtype="uint64") + offset
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        return z ^ (z >> np.uint64(31))


def split_sizes(n, validation_fraction, test_fraction, *, what="The table", unit="rows"):
    """(n_train, n_validation, n_test) for `n` rows: a held-out share of 0 gives 0 rows, else at least 1.

    Raises:
        ZooError: when fewer than 2 rows would be left to train on.
    """
    n_test = max(1, int(round(n * test_fraction))) if test_fraction > 0 else 0
    n_val = max(1, int(round(n * validation_fraction))) if validation_fraction > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 2:
        raise ZooError(
            f"{what} has {n} {unit}: too few to split into train, validation and test "
            f"({max(n_train, 0)}/{n_val}/{n_test}); add {unit}."
        )
    return n_train, n_val, n_test


def split_rows(n, seed, validation_fraction=0.1, test_fraction=0.2, *, what="The table", unit="rows"):
    """Split `n` rows held in memory: (train, validation, test) arrays of row indices.

    Args:
        n: number of rows.
        seed: seed of the split; the same seed gives the same split.
        validation_fraction: share of rows for validation (0 for none).
        test_fraction: share of rows for testing (0 for none).
        what, unit: how the error names the data, e.g. `what="digits", unit="images"`.

    Returns:
        Three int64 arrays of row indices, each in the seeded order.

    Raises:
        ZooError: for too few rows to split (see `split_sizes`).
    """
    _, n_val, n_test = split_sizes(n, validation_fraction, test_fraction, what=what, unit=unit)
    order = np.argsort(row_keys(np.arange(n), seed), kind="stable")
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def split_arrays(arrays, seed, validation_fraction=0.1, test_fraction=0.2, *, what="The data", unit="rows"):
    """Split arrays (or lists) of one length row-wise with `split_rows`; None entries stay None.

    Returns:
        (train, validation, test), each a tuple holding the rows of every array in `arrays`.

    Raises:
        ZooError: for too few rows to split.
    """
    parts = split_rows(len(arrays[0]), seed, validation_fraction, test_fraction, what=what, unit=unit)
    return tuple(tuple(_take(values, rows) for values in arrays) for rows in parts)


def _take(values, rows):
    if values is None:  # an absent array (e.g. no labels) stays absent in every split
        return None
    if isinstance(values, np.ndarray):
        return values[rows]
    return [values[i] for i in rows]


class RowSplit:
    """The split of a table too large to hold, decided row by row from the row number.

    Args:
        n: number of rows (rows a loader keeps, e.g. those with a target), counted beforehand.
        seed, validation_fraction, test_fraction, what, unit: as for `split_rows`.

    Example:
        >>> split = RowSplit(1000, seed=0)
        >>> codes = split.assign(np.arange(0, 500))  # TRAIN, VALIDATION or TEST per row
    """

    def __init__(self, n, seed, validation_fraction=0.1, test_fraction=0.2, *, what="The table", unit="rows"):
        self.n = n
        self.seed = seed
        self.sizes = split_sizes(n, validation_fraction, test_fraction, what=what, unit=unit)
        _, n_val, n_test = self.sizes
        # The keys that end the test and the validation split: np.partition needs the keys of all
        # rows once (8 bytes a row, never the rows), computed from the row numbers alone.
        keys = row_keys(np.arange(n), seed)
        cuts = [k for k in (n_test, n_test + n_val) if 0 < k < n]
        if cuts:
            keys = np.partition(keys, [k - 1 for k in cuts])
        self._test_end = keys[n_test - 1] if n_test else None
        self._val_end = keys[n_test + n_val - 1] if n_val else None

    def assign(self, rows):
        """TRAIN, VALIDATION or TEST (int8) for each row number in `rows`."""
        keys = row_keys(rows, self.seed)
        codes = np.full(len(keys), TRAIN, dtype="int8")
        if self._val_end is not None:
            codes[keys <= self._val_end] = VALIDATION
        if self._test_end is not None:
            codes[keys <= self._test_end] = TEST
        return codes
