"""The pass/fail verdict every benchmark script ends with: print each target, exit 1 on a miss.

A benchmark that prints figures but always exits 0 lets a regression through unnoticed; each
script states its targets here and `python benchmarks/run_all.py` exits 1 when one is missed.
"""


def check(name, value, target, *, above=True):
    """Print whether `value` meets `target` (at least, or with `above=False` at most); return it.

    Example:
        >>> check("test accuracy", 0.99, 0.98)
        target test accuracy >= 0.98: met (0.99)
        True
    """
    met = value >= target if above else value <= target
    print(f"target {name} {'>=' if above else '<='} {target:g}: {'met' if met else 'MISSED'} ({value:.4g})")
    return bool(met)


def exit_status(*verdicts):
    """0 when every verdict is met, else 1 (the benchmark scripts' exit status)."""
    return 0 if all(verdicts) else 1
