"""Run in a subprocess with KERAS_BACKEND set: the checks tests/test_backends.py makes per backend.

    python tests/backend_worker.py INPUTS.npz OUTPUT_FOLDER [SHARD COUNT]

1. One training step of the GAN and of the RBM from the weights, batch and noise in INPUTS.npz;
   the updated weights go to OUTPUT_FOLDER/{gan,rbm_persistent,rbm_cd}.npz.
2. Every registered model: build, `fit` one epoch on tiny data, `evaluate`, `.keras` save and load,
   predictions compared. One JSON line per backend on stdout (the last line), per model.
3. `--precision` x `--jit`: one step of a functional model and of the RBM (and once of the GAN)
   built as a run builds them (`training.build_model`) for each combination the backend trains
   with; each one it refuses, through `zoo train` (exit status, the error line, no MLflow run).
4. A loss that turns NaN mid-epoch: where `faults.StopOnNaN` stops `fit`, the checkpoint kept.
5. `zoo train --resume` on JAX and PyTorch: an `mlp` run interrupted after its second epoch and
   resumed, and the same run uninterrupted; their final weights and test metrics.
6. `--init-from` with `--freeze all-but-head --freeze-epochs 1` on JAX and PyTorch: which layers'
   weights each epoch changed (TensorFlow's case is tests/test_finetune.py).

One process runs everything for its backend, so that each backend starts (and imports) once.
"""

import json
import os
import pathlib
import sys
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402

import zoo  # noqa: E402
from tests.conftest import sample_inputs  # noqa: E402
from zoo import registry  # noqa: E402

# The models of the step comparison: small, no dropout (its masks come from each backend's own
# random generator), SGD so that the update is the gradient itself, not Adam's sign of it.
GAN = {"num_classes": 10, "dropout": 0.0, "generator_filters": 8, "discriminator_filters": 8, "latent_dim": 8}
RBMS = {
    "rbm_persistent": {"persistent": True, "updates_per_batch": 2, "chains": 4},
    "rbm_cd": {"persistent": False, "updates_per_batch": 1},
}
# Smaller versions of the largest defaults: the same layers (augmentation, CTC, recurrence) on
# smaller images, so that the sweep stays cheap. Other models are built with their defaults.
SMALL = {
    "cnn": {"input_shape": (8, 8, 1), "filters": (8, 16), "dense_units": 16},
    "mlp_image": {"input_shape": (8, 8, 1), "hidden_units": 16},
    # One bidirectional LSTM layer, not the default two: the same layers, half the recurrent compile.
    "crnn": {"input_shape": (16, 32, 1), "filters": (8, 16), "dense_units": 16, "rnn_units": (16,)},
}
RBM = {"input_shape": (12,), "hidden_units": 5, "k": 2, "momentum": 0.5, "weight_decay": 0.01, "learning_rate": 0.1}


def build_gan():
    gan = zoo.get("gan", **GAN)
    gan.compile(
        generator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5),
        discriminator_optimizer=keras.optimizers.SGD(0.5, momentum=0.5),
        label_smoothing=0.1,
    )
    return gan


def build_rbm(name):
    return zoo.get("rbm", **RBM, **RBMS[name])


def one_step(inputs, folder):
    """One `fit` step of each model from the given weights; the weights after it, saved."""
    gan = build_gan()
    gan.set_weights([inputs[f"gan_{i}"] for i in range(len(gan.weights))])
    batch = {"images": inputs["images"], "labels": inputs["labels"], "latent": inputs["latent"]}
    gan.fit(batch, batch_size=len(inputs["images"]), epochs=1, shuffle=False, verbose=0)
    np.savez(folder / "gan.npz", *gan.get_weights())
    for name in RBMS:
        model = build_rbm(name)
        model.set_weights([inputs[f"{name}_{i}"] for i in range(len(model.weights))])
        model.fit(inputs["rows"], batch_size=8, epochs=1, shuffle=False, verbose=0)
        np.savez(folder / f"{name}.npz", *model.get_weights())


def training_data(model, rng):
    """Tiny (x, y) that `fit` and `evaluate` take for this model (y None for the unsupervised)."""
    from zoo.models.gan import GAN as GANClass
    from zoo.models.rbm import RBM as RBMClass

    if isinstance(model, GANClass):
        return rng.random((8,) + model.image_shape).astype("float32"), None
    if isinstance(model, RBMClass):
        return (rng.random((8,) + model.visible_shape) < 0.4).astype("float32"), None
    x = sample_inputs(model, count=8)
    prediction = keras.tree.flatten(model.predict(x, verbose=0))[0]
    loss = getattr(model.loss, "__name__", model.loss)
    if loss == "sparse_categorical_crossentropy":
        return x, np.argmax(prediction, axis=-1)
    if loss == "ctc_loss":
        # Labels 1..n left-aligned, padded with the blank 0 (zoo.models.crnn.ctc_loss).
        labels = rng.integers(1, prediction.shape[-1], size=(len(prediction), 4))
        labels[:, 3] = 0
        return x, labels
    return x, rng.random(prediction.shape).astype("float32")


def check_model(name, folder):
    started = time.perf_counter()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    model = registry.get(name, **SMALL.get(name, {}))
    x, y = training_data(model, rng)
    before = [np.array(w) for w in model.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    moved = max(float(np.abs(a - b).max()) for a, b in zip(before, model.get_weights()))
    evaluated = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
    # Eight rows like the training data: on JAX each new batch shape compiles predict again.
    inputs = sample_inputs(model, count=8)
    expected = model.predict(inputs, verbose=0)
    path = folder / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    actual = loaded.predict(inputs, verbose=0)
    difference = max(
        float(np.abs(np.asarray(a, "float64") - np.asarray(b, "float64")).max())
        for a, b in zip(keras.tree.flatten(expected), keras.tree.flatten(actual))
    )
    return {
        "history": {key: [float(v) for v in values] for key, values in history.history.items()},
        "evaluate": {key: float(value) for key, value in evaluated.items()},
        "moved": moved,
        "prediction_difference": difference,
        "seconds": time.perf_counter() - started,
    }


PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# Each combination trains a functional model's Keras step and the RBM's own step (both cheap); the
# GAN's step, whose compiling is the slowest, once: under mixed_float16, where its two optimizers
# are wrapped in loss scaling (the only precision-dependent code of a custom step).
COMPUTE_MODELS = {"mlp_image": SMALL["mlp_image"], "rbm": {**RBM, **RBMS["rbm_cd"]}}
GAN_COMBINATION = "mixed_float16 no-jit"


def compute_matrix(folder):
    """{"PRECISION jit|no-jit": {model: result} or {"refused": (status, stderr, runs)}} on this backend."""
    import contextlib
    import io

    from zoo import ZooError, cli, training

    rng = np.random.default_rng(0)
    found = {}
    for precision in PRECISIONS:
        for jit in (False, True):
            key = f"{precision} {'jit' if jit else 'no-jit'}"
            try:
                training.make_config(training.get_recipe("mlp"), {"precision": precision, "jit": jit})
            except ZooError:
                uri = f"sqlite:///{folder}/refused.db"
                err = io.StringIO()
                flags = ["--precision", precision, "--jit" if jit else "--no-jit", "--epochs", "1"]
                with contextlib.redirect_stderr(err):
                    status = cli.main(["train", "mlp", *flags, "--tracking-uri", uri])
                runs = []
                if os.path.exists(folder / "refused.db"):
                    import mlflow

                    client = mlflow.MlflowClient(uri)
                    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
                found[key] = {"refused": [status, err.getvalue(), len(runs)]}
                continue
            found[key] = {}
            models = {**COMPUTE_MODELS, **({"gan": GAN} if key == GAN_COMBINATION else {})}
            for name, hyperparameters in models.items():
                keras.utils.set_random_seed(0)
                model = training.build_model(name, hyperparameters, precision, jit)
                found[key][name] = {"policy": model.dtype_policy.name, "jit_compile": model.jit_compile}
                if jit and keras.backend.backend() == "jax":
                    # JAX compiles every step with XLA: this is the step trained without `jit`.
                    continue
                x, y = training_data(model, rng)
                if name == "gan":
                    y = rng.integers(0, 10, len(x))
                before = [np.array(w) for w in model.get_weights()]
                history = model.fit(x, y, batch_size=len(x), epochs=1, verbose=0)
                found[key][name]["moved"] = max(float(np.abs(a - b).max()) for a, b in zip(before, model.get_weights()))
                found[key][name]["losses"] = [float(v[-1]) for v in history.history.values()]
    return found


def divergence_check(folder):
    """Where `faults.StopOnNaN` stops a `fit` whose loss turns NaN at epoch 1, batch 2 (of 4), which
    checkpoints survive, and on which thread the check ran (off TensorFlow: Keras' thread pool)."""
    import threading

    from zoo import faults

    threads = set()

    class Guard(faults.StopOnNaN):
        def on_train_batch_end(self, batch, logs=None):
            threads.add(threading.current_thread() is threading.main_thread())
            super().on_train_batch_end(batch, logs)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    logged = []
    checkpoint = faults.EpochCheckpoint(str(folder / "diverged"), lambda epoch, _logs: logged.append(epoch))
    callbacks = [Guard(), checkpoint]
    clean, targets = np.ones((32, 2), "float32"), np.ones(32, "float32")
    poisoned = clean.copy()
    poisoned[19, 0] = np.nan  # batch 2 of 8 rows
    model.fit(clean, targets, batch_size=8, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
    try:
        model.fit(
            poisoned, targets, batch_size=8, initial_epoch=1, epochs=3, shuffle=False, verbose=0, callbacks=callbacks
        )
        message = None
    except faults.Diverged as error:
        message = str(error)
    checkpoint.wait()
    restored = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    restored.compile("sgd", "mse")
    return {
        "message": message,
        "logged": logged,
        "restored_epoch": faults.restore(restored, str(folder / "diverged")),
        "restored_finite": bool(all(np.isfinite(w).all() for w in restored.get_weights())),
        "on_training_thread": sorted(threads),
    }


def resume_check(folder, references):
    """The final weights and test metrics of an `mlp` run interrupted after epoch 2 and resumed,
    and of the same run uninterrupted (appended to `references`)."""
    import signal

    import mlflow

    from zoo import faults, training

    uri = f"sqlite:///{folder}/resume.db"
    options = {"dataset": "iris", "epochs": 4, "patience": 2, "seed": 3, "tracking_uri": uri}
    options["checkpoint_dir"] = str(folder / "checkpoints")

    class Interrupt(keras.callbacks.Callback):
        # Where a SIGTERM is raised: between epochs, after epoch 1's checkpoint (the run's last callback).
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise faults.Interrupted(signal.SIGTERM)

    try:
        training.train("mlp", {**options, "experiment": "interrupted"}, callbacks=[Interrupt()])
        raise AssertionError("the run was not interrupted")
    except faults.Interrupted:
        pass
    client = mlflow.MlflowClient(uri)
    (killed,) = client.search_runs([client.get_experiment_by_name("interrupted").experiment_id])
    resumed = training.resume(killed.info.run_id, tracking_uri=uri)
    reference = training.train("mlp", {**options, "experiment": "reference"})
    steps = [m.step for m in client.get_metric_history(killed.info.run_id, "loss")]
    references.append(reference)
    return {
        "killed_status": killed.info.status,
        "resumed_status": client.get_run(killed.info.run_id).info.status,
        "loss_steps": sorted(steps),
        "epochs": [resumed.metrics["epochs_trained"], reference.metrics["epochs_trained"]],
        "test_loss": [resumed.metrics["test_loss"], reference.metrics["test_loss"]],
        "weight_difference": max(
            float(np.abs(a - b).max()) for a, b in zip(resumed.model.get_weights(), reference.model.get_weights())
        ),
    }


def finetune_check(folder, source):
    """An `mlp` run started from `source`'s logged model (the resume check's reference run, in its
    store) with all but its head frozen for one of two epochs: whether each layer's weights moved
    in each epoch."""
    import mlflow

    from zoo import training
    from zoo.training import finetune

    uri = f"sqlite:///{folder}/resume.db"
    options = {"dataset": "iris", "patience": 0, "seed": 3, "tracking_uri": uri}
    options["checkpoint_dir"] = str(folder / "checkpoints")
    names = [layer.name for layer in finetune.weighted_layers(source.model)]
    seen = [{name: source.model.get_layer(name).get_weights() for name in names}]

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append({name: self.model.get_layer(name).get_weights() for name in names})

    tuned = {"epochs": 2, "init_from": source.run_id, "freeze": "all-but-head", "freeze_epochs": 1}
    result = training.train("mlp", {**options, **tuned, "experiment": "tuned"}, callbacks=[Watch()])
    moved = [
        {name: any(not np.array_equal(a, b) for a, b in zip(now[name], before[name])) for name in names}
        for before, now in zip(seen, seen[1:])
    ]
    return {
        "layers": names,
        "frozen": mlflow.MlflowClient(uri).get_run(result.run_id).data.tags.get("zoo.frozen", ""),
        "moved": moved,
        "learning_rate": float(keras.ops.convert_to_numpy(result.model.optimizer.learning_rate)),
        "compiled_learning_rate": float(keras.ops.convert_to_numpy(source.model.optimizer.learning_rate)),
        "loss": result.history["loss"],
    }


def tasks(folder, inputs_path):
    """[(name, function returning {result key: value})] in the order one process would run them."""

    def step():
        started = time.perf_counter()
        try:
            one_step(dict(np.load(inputs_path)), folder)
            error = None
        except Exception:
            error = traceback.format_exc(limit=-3)
        return {"step_error": error, "step_seconds": time.perf_counter() - started}

    def model(name):
        try:
            return {"models": {name: check_model(name, folder)}}
        except Exception as error:
            return {"models": {name: {"error": f"{type(error).__name__}: {error}"[:2000]}}}

    def check(name, function):
        started = time.perf_counter()
        try:
            result = function(folder)
        except Exception:
            result = {"error": traceback.format_exc(limit=-4)}
        return {name: result, f"{name}_seconds": time.perf_counter() - started}

    found = [("step", step)]
    found += [(name, lambda name=name: model(name)) for name in registry.names()]
    found.append(("compute", lambda: check("compute", compute_matrix)))
    found.append(("divergence", lambda: check("divergence", divergence_check)))
    if keras.backend.backend() != "tensorflow":
        # tests/test_faults.py resumes on TensorFlow, after a real signal.
        # One task: the fine-tuning starts from the resume check's reference run (one run fewer).
        references: list = []
        found.append(
            (
                "resume",
                lambda: {
                    **check("resume", lambda folder: resume_check(folder, references)),
                    **check("finetune", lambda folder: finetune_check(folder, references[-1])),
                },
            )
        )
    return found


def main():
    """python tests/backend_worker.py INPUTS.npz OUTPUT_FOLDER [SHARD COUNT]: run every COUNT-th task
    from the SHARD-th (all by default), so that a slow backend's work can be split over processes."""
    inputs_path, folder = sys.argv[1], pathlib.Path(sys.argv[2])
    shard, count = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else (0, 1)
    folder.mkdir(parents=True, exist_ok=True)
    results = {"backend": keras.backend.backend(), "models": {}}
    for _, task in tasks(folder, inputs_path)[shard::count]:
        for key, value in task().items():
            if key == "models":
                results["models"].update(value)
            else:
                results[key] = value
    print(json.dumps(results))


if __name__ == "__main__":
    assert os.environ.get("KERAS_BACKEND"), "run with KERAS_BACKEND set"
    main()
