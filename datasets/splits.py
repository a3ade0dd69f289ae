"""The one train/validation/test split every loader uses, in memory or streamed.

Rows are ordered by a seeded permutation (`np.random.default_rng(seed).permutation(n)`): the first
`n_test` are the test split, the next `n_validation` the validation split, the rest train.

- `split_rows(n, ...)` returns the three index arrays, for data held in memory.
- `RowSplit(n, ...)` decides the split of any row from its row number alone (`assign`), for data
  streamed from disk in chunks: it needs the row count, never the rows, and keeps one byte per row
  (10 MB for 10 million rows; the permutation it is made from, 8 bytes a row, only while it is
  built). It puts every row where `split_rows` puts it, so a table streamed and the same table
  loaded whole split identically, and every figure measured on today's splits stays valid.

Both share `split_sizes`: the same sizes and the same error for data too small to split.
"""

import numpy as np

from zoo.errors import ZooError

TRAIN, VALIDATION, TEST = 0, 1, 2
# Fewer rows than this cannot train, stop early and test anything: every loader refuses them.
MIN_ROWS = 5
SPLITS = ("train", "validation", "test")


def split_sizes(n, validation_fraction, test_fraction, *, what="The table", unit="rows"):
    """(n_train, n_validation, n_test) for `n` rows: a held-out share of 0 gives 0 rows, else at least 1.

    Raises:
        ZooError: for fewer than MIN_ROWS rows, or fewer than 2 left to train on.
    """
    n_test = max(1, int(round(n * test_fraction))) if test_fraction > 0 else 0
    n_val = max(1, int(round(n * validation_fraction))) if validation_fraction > 0 else 0
    n_train = n - n_test - n_val
    if n_train < 2 or n < MIN_ROWS:
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
    order = np.random.default_rng(seed).permutation(n)
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
        self.sizes = split_sizes(n, validation_fraction, test_fraction, what=what, unit=unit)
        _, n_val, n_test = self.sizes
        order = np.random.default_rng(seed).permutation(n)
        self._codes = np.full(n, TRAIN, dtype="int8")
        self._codes[order[:n_test]] = TEST
        self._codes[order[n_test : n_test + n_val]] = VALIDATION

    def assign(self, rows):
        """TRAIN, VALIDATION or TEST (int8) for each row number in `rows` (0 <= row < n)."""
        return self._codes[np.asarray(rows, dtype="int64")]
