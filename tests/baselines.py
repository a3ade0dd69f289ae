"""Trivial baselines that a smoke test's trained model must beat, counted in test rows.

A training smoke test that checks `0 <= accuracy <= 1` passes for a model that never learned. Each
recipe's smoke test instead asserts "trivial baseline + a margin": the majority class, a
persistence forecast, an untrained model. Accuracies are turned back into counts of rows so that
the comparison is between integers (0.7250000238 >= 0.675 + 0.05 once passed by float rounding).
"""

import collections

import numpy as np


def majority_count(labels):
    """Rows of `labels` that always answering the most frequent label gets right."""
    values = [tuple(np.ravel(v)) if np.ndim(v) else v for v in labels]
    return max(collections.Counter(values).values())


def count(rate, rows):
    """The number of rows behind an accuracy-like `rate` measured on `rows` rows."""
    correct = round(rate * rows)
    assert abs(correct - rate * rows) < 1e-3, f"{rate} is not a share of {rows} rows"
    return correct


def assert_beats(correct, baseline, margin, rows, what):
    """`correct` rows (of `rows`) beat the trivial `baseline` count by at least `margin` rows."""
    # Shown with `pytest -rP`: how far above its floor each smoke test ran.
    print(f"{what}: {correct} of {rows} right; trivial baseline {baseline}, floor {baseline + margin}")
    assert correct >= baseline + margin, (
        f"{what}: {correct} of {rows} test rows right, the trivial baseline gets {baseline}; "
        f"the floor is {baseline + margin} (baseline + {margin})"
    )
