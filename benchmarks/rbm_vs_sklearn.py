"""Benchmark: the zoo's RBM against scikit-learn's `BernoulliRBM`, same data, same settings, one run.

Both learn scikit-learn's 1,797 digits, binarized (pixel > 8 of 16), with persistent contrastive
divergence: 64 hidden units (--hidden 100 for the example's size), learning rate 0.06, updates of 10
rows taken in order (no shuffling, as scikit-learn does), 20 passes. The pseudo-likelihood is
scikit-learn's estimator (`score_samples`) on the training rows, averaged over 20 draws of the
flipped units, the same draws for both models.

Rows printed:
- scikit-learn, with its default BLAS threads and with one (the faster is the baseline).
- zoo PCD, plain: one Keras `train_step` per batch of 10 (the straightforward port).
- zoo PCD, compiled: one `train_step` per pass over the data, making its 180 updates of 10 rows
  one after another in a compiled loop (`updates_per_batch=180`), all passes in one compiled call
  (`steps_per_execution`), with XLA and without. "cold" includes tracing and compilation (once per
  model and batch shape); "warm" is the same training again from a fresh initial state, compiled.
- zoo CD-1, compiled: the same with contrastive divergence from the data (`persistent=False`).

Pseudo-likelihoods are means over --seeds seeds (initial weights and sampling) for scikit-learn and
for the zoo's XLA rows; the other rows show seed 0. Wall times are the best of --repeats runs, taken
in alternation (the machine may be shared). Targets, for zoo PCD with XLA (warm), the algorithm
scikit-learn runs: pseudo-likelihood at least scikit-learn's (within 2 standard errors of the two
means), wall time at most 1.0x scikit-learn's. Exit status 0 when both are met, 1 otherwise.

    python benchmarks/rbm_vs_sklearn.py
    python benchmarks/rbm_vs_sklearn.py --hidden 100 --repeats 5
    python benchmarks/rbm_vs_sklearn.py --json figures.json      # also write the figures as JSON
"""

import argparse
import json
import os
import sys
import time

import numpy as np

DRAWS = 20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=64, help="hidden units (64 or 100)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the data")
    parser.add_argument("--learning-rate", type=float, default=0.06)
    parser.add_argument("--batch", type=int, default=10, help="rows per update")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per row; the best counts")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per model; pseudo-likelihoods are averaged")
    parser.add_argument("--skip-plain", action="store_true", help="leave out the slow plain Keras row")
    parser.add_argument("--json", metavar="PATH", help="also write the rows and the verdict to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from sklearn.datasets import load_digits

    x = (load_digits().data / 16.0 > 0.5).astype("float32")
    flips = [np.random.RandomState(draw).randint(0, x.shape[1], len(x)) for draw in range(DRAWS)]
    rows = []
    # === scikit-learn ===
    from threadpoolctl import threadpool_limits

    seeds = range(args.seeds)
    sklearn_likelihoods = [_sklearn_pseudo_likelihood(_sklearn(x, args, seed), x) for seed in seeds]

    # === zoo ===
    import keras

    import zoo

    def build(updates, steps_per_execution, jit, seed=0, persistent=True):
        keras.utils.set_random_seed(seed)
        model = zoo.get(
            "rbm",
            input_shape=(x.shape[1],),
            hidden_units=args.hidden,
            learning_rate=args.learning_rate,
            chains=args.batch,
            updates_per_batch=updates,
            steps_per_execution=steps_per_execution,
            persistent=persistent,
            seed=seed,
        )
        model.jit_compile = jit
        return model

    if not args.skip_plain:
        model = build(1, 1, False)
        seconds = _timed(lambda: model.fit(x, batch_size=args.batch, epochs=args.epochs, shuffle=False, verbose=0))
        rows.append(("zoo PCD, plain (one step per batch of 10)", seconds, [_zoo_pseudo_likelihood(model, x, flips)]))

    # One batch per pass (180 updates of 10 rows), every pass in one compiled call.
    updates = -(-len(x) // args.batch)
    passes = _passes(x, args.epochs)
    variants = {}
    for name, persistent, jit in (("PCD", True, True), ("PCD", True, False), ("CD-1", False, True)):
        model = build(updates, args.epochs, jit, persistent=persistent)
        cold = _timed(lambda model=model: model.fit(passes, epochs=1, steps_per_epoch=args.epochs, verbose=0))
        cold_likelihood = _zoo_pseudo_likelihood(model, x, flips)

        def train(values, model=model):
            # A fresh model's initial state for a seed, trained by the compiled model (no new compile).
            for variable, value in zip(model.variables, values):
                variable.assign(value)
            model.fit(passes, epochs=1, steps_per_epoch=args.epochs, verbose=0)
            return model

        def initial(seed, jit=jit, persistent=persistent):
            return [np.asarray(v) for v in build(updates, args.epochs, jit, seed, persistent).variables]

        likelihoods = []
        if jit:
            for seed in seeds:
                train(initial(seed))
                likelihoods.append(_zoo_pseudo_likelihood(model, x, flips))
        label = f"zoo {name}, compiled ({updates} updates per step, {'XLA' if jit else 'no XLA'})"
        variants[label] = {
            "cold": cold,
            "cold_likelihood": cold_likelihood,
            "train": train,
            "start": initial(0),
            "likelihoods": likelihoods or [cold_likelihood],
            "times": [],
        }

    # Timed in alternation, so that a change in the machine's load hits every row alike.
    timed = {"sklearn": [], "sklearn1": []}
    for _ in range(max(1, args.repeats)):
        timed["sklearn"].append(_timed(lambda: _sklearn(x, args, 0)))
        with threadpool_limits(limits=1):
            timed["sklearn1"].append(_timed(lambda: _sklearn(x, args, 0)))
        for variant in variants.values():
            variant["times"].append(_timed(lambda variant=variant: variant["train"](variant["start"])))
    rows = [
        ("scikit-learn BernoulliRBM", min(timed["sklearn"]), sklearn_likelihoods),
        ("scikit-learn BernoulliRBM, 1 BLAS thread", min(timed["sklearn1"]), sklearn_likelihoods),
    ] + rows
    baseline = min(rows[:2], key=lambda row: row[1])
    for label, variant in variants.items():
        rows.append((label + ", cold", variant["cold"], [variant["cold_likelihood"]]))
        rows.append((label + ", warm", min(variant["times"]), variant["likelihoods"]))
    headline = variants[next(iter(variants))]
    warm, cold, likelihoods = min(headline["times"]), headline["cold"], headline["likelihoods"]

    # === Report ===
    import tensorflow as tf

    print(
        f"binarized digits {x.shape}, {args.hidden} hidden, learning rate {args.learning_rate}, "
        f"{args.batch} rows per update, {args.epochs} passes; TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}, {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':<60} {'seconds':>8} {'x sklearn':>9}  pseudo-likelihood (mean +- sd over seeds)")
    for label, seconds, values in rows:
        spread = f" +- {np.std(values, ddof=1):.2f} ({len(values)} seeds)" if len(values) > 1 else " (seed 0)"
        print(f"{label:<60} {seconds:>8.3f} {seconds / baseline[1]:>9.2f}  {np.mean(values):.2f}{spread}")
    ours, theirs = np.mean(likelihoods), np.mean(baseline[2])
    # "At least as good": not worse than scikit-learn's mean by more than the noise of the means.
    margin = (
        2 * np.sqrt(np.var(likelihoods, ddof=1) / len(likelihoods) + np.var(baseline[2], ddof=1) / len(baseline[2]))
        if len(likelihoods) > 1
        else 0.0
    )
    quality = ours >= theirs - margin
    speed = warm <= baseline[1]
    print(
        f"target (zoo PCD, XLA, warm: the same algorithm): pseudo-likelihood >= scikit-learn's {theirs:.2f} "
        f"(within 2 standard errors, {margin:.2f}): "
        f"{'met' if quality else 'missed'} ({ours:.2f}); wall time <= {baseline[1]:.3f} s: "
        f"{'met' if speed else 'missed'} (warm {warm / baseline[1]:.2f}x; cold, with compilation, "
        f"{cold / baseline[1]:.2f}x)"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "hidden": args.hidden,
                    "epochs": args.epochs,
                    "learning_rate": args.learning_rate,
                    "batch": args.batch,
                    "baseline": baseline[0],
                    "rows": [
                        {
                            "label": label,
                            "seconds": seconds,
                            "x_sklearn": seconds / baseline[1],
                            "pseudo_likelihood": float(np.mean(values)),
                            "seeds": len(values),
                            "pseudo_likelihood_sd": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                        }
                        for label, seconds, values in rows
                    ],
                    "headline": {
                        "label": next(iter(variants)) + ", warm",
                        "seconds": warm,
                        "x_sklearn": warm / baseline[1],
                        "pseudo_likelihood": float(ours),
                        "sklearn_pseudo_likelihood": float(theirs),
                    },
                    "quality_met": bool(quality),
                    "speed_met": bool(speed),
                    "margin": float(margin),
                },
                handle,
                indent=2,
            )
    return 0 if quality and speed else 1


def _sklearn(x, args, seed):
    from sklearn.neural_network import BernoulliRBM

    return BernoulliRBM(
        n_components=args.hidden,
        learning_rate=args.learning_rate,
        batch_size=args.batch,
        n_iter=args.epochs,
        random_state=seed,
    ).fit(x.astype("float64"))


def _sklearn_pseudo_likelihood(fitted, x):
    values = []
    for draw in range(DRAWS):
        fitted.random_state = draw  # score_samples flips RandomState(draw).randint(0, 64, n)
        values.append(fitted.score_samples(x.astype("float64")).mean())
    return float(np.mean(values))


def _zoo_pseudo_likelihood(model, x, flips):
    return float(np.mean([model.pseudo_likelihood(x, flip=flip).mean() for flip in flips]))


def _passes(x, epochs):
    """`epochs` batches, each the whole data in order (one pass = one batch = one training step)."""
    import tensorflow as tf

    return tf.data.Dataset.from_tensors(x).repeat(epochs)


def _timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
