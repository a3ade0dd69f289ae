"""Serving latency and export sizes, per technique: `/invocations` against calling Keras directly.

For each technique's logged model (default sizes, untrained: latency does not depend on the
weights) the script starts `zoo serve` on 127.0.0.1, then times, for one row and for a batch of
256 rows:
- `keras`: the Keras model called directly on prepared tensors (`model(x, training=False)`);
- `pyfunc`: `mlflow.pyfunc.load_model(uri).predict(raw request)` in-process (adapter included);
- `http`: POST /invocations with the JSON body a client sends (parsing, schema check, JSON answer).
It prints the median and the 99th percentile of each, and the size of the `.keras` file and of
each export (`zoo export`), or why a format does not take the model.

MLflow issue #5259 reports the Keras pyfunc about 10x slower than the model; the target here:
in-process pyfunc on a batch of 256 at most 2x the Keras call for every technique.

    python benchmarks/serving.py                   # about 5 minutes on 2 cores
    python benchmarks/serving.py --quick           # fewer repeats, two techniques
"""

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import gate

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TARGET_RATIO = 2.0
FORMATS = ("tf_saved_model", "onnx", "litert")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _table_csv(path, rows=400, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "gre": rng.integers(300, 800, rows).astype(float),
            "gpa": rng.uniform(2, 4, rows),
            "rank": rng.integers(1, 5, rows),
            "city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"], rows),
        }
    )
    frame["admit"] = ((frame.gpa - 3 + (frame.city == "Oslo")) > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


def _log(recipe_name, options):
    """The recipe's real data and default model, logged through the recipe's own `log_model`."""
    import mlflow

    from zoo import registry, training

    recipe = training.get_recipe(recipe_name)
    config, _ = training.make_config(recipe, options)
    data = recipe.load_data(config)
    model = registry.get(recipe.model_name(config), **recipe.model_overrides(config, data))
    mlflow.set_experiment("serving")
    with mlflow.start_run():
        info = recipe.log_model(model, data)
    return model, data, info.model_uri


def _requests(name, model, data, rows):
    """(raw request for pyfunc, JSON body for HTTP, prepared Keras inputs) with `rows` rows."""
    from zoo import serving

    if name == "mlp":
        frame = serving.Table.example_frame(data.example_inputs)
        frame = frame.iloc[np.arange(rows) % len(frame)].reset_index(drop=True)
        keras_inputs = serving.Table(features=data.loaded.features).inputs(model, frame)
        return frame, {"dataframe_split": frame.to_dict(orient="split", index=False)}, keras_inputs
    if name == "gan":
        adapter = serving.Generator(latent_dim=model.latent_dim, num_classes=model.num_classes)
        frame = adapter.example(rows)
        return frame, {"dataframe_split": frame.to_dict(orient="split", index=False)}, adapter.inputs(model, frame)
    example = np.asarray(data.example_inputs, dtype="float32")
    batch = example[np.arange(rows) % len(example)]
    return batch, {"inputs": batch.tolist()}, batch


def _times(calls, repeats):
    """{name: (median ms, p99 ms)}; the calls take turns, so that a busy machine slows all alike."""
    for call in calls.values():
        for _ in range(3):  # warm-up: first-call tracing is not latency
            call()
    seconds = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            seconds[name].append(time.perf_counter() - started)
    return {
        name: (float(np.median(values) * 1000), float(np.percentile(values, 99) * 1000))
        for name, values in seconds.items()
    }


def _post(url, body):
    payload = json.dumps(body).encode()

    def call():
        request = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()

    return call


@contextlib.contextmanager
def _server(uri, folder):
    from zoo.commands import serve

    port = _free_port()
    log_path = os.path.join(folder, f"serve-{port}.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", uri, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            serve.wait_healthy(url, process, 300, log_path)
            yield f"{url}/invocations"
        finally:
            serve.stop(process)


def _export_sizes(model, folder):
    from zoo.commands import export
    from zoo.errors import ZooError

    sizes = {}
    keras_path = os.path.join(folder, "model.keras")
    model.save(keras_path)
    sizes["keras"] = f"{os.path.getsize(keras_path) / 1e3:.0f} kB"
    for format in FORMATS:
        out = os.path.join(folder, {"tf_saved_model": "saved", "onnx": "m.onnx", "litert": "m.tflite"}[format])
        try:
            export.export(model, out, format)
            sizes[format] = f"{export.folder_size(out) / 1e3:.0f} kB"
        except ZooError as error:
            sizes[format] = "no: " + _reason(str(error))
    return sizes


def _reason(message):
    for marker, short in (
        ("LookupTableFindV2", "lookup tables"),
        ("HashTable", "lookup tables"),
        ("Bitcast", "argmax's Bitcast"),
        ("BitwiseAnd", "argmax's BitwiseAnd"),
        ("input", "inputs"),
    ):
        if marker in message:
            return short
    return message[:40]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100, help="timed requests per size (default: 100)")
    parser.add_argument("--quick", action="store_true", help="20 repeats, the MLP and the CNN only")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    repeats = 20 if args.quick else args.repeats

    import keras
    import mlflow

    started_load = os.getloadavg()[0]
    folder = tempfile.mkdtemp(prefix="zoo-serving-")
    os.chdir(folder)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    techniques = {
        "mlp": ("mlp", {"data": _table_csv(os.path.join(folder, "table.csv")), "target": "admit"}),
        "cnn": ("cnn", {}),
        "lstm": ("lstm", {}),
        "gan": ("gan", {}),
        "rbm": ("rbm", {}),
    }
    if args.quick:
        techniques = {k: v for k, v in techniques.items() if k in ("mlp", "cnn")}

    results = {}
    for name, (recipe, options) in techniques.items():
        print(f"{name}: logging, exporting, serving ...", flush=True)
        model, data, uri = _log(recipe, options)
        served = mlflow.pyfunc.load_model(uri)
        row = {"sizes": _export_sizes(model, tempfile.mkdtemp(dir=folder))}
        with _server(uri, folder) as url:
            for rows in (1, 256):
                raw, body, prepared = _requests(name, model, data, rows)
                row[rows] = _times(
                    {
                        "keras": lambda p=prepared, m=model: keras.ops.convert_to_numpy(m(p, training=False)),
                        "pyfunc": lambda r=raw, s=served: s.predict(r),
                        "http": _post(url, body),
                    },
                    repeats,
                )
        results[name] = row

    print()
    load = os.getloadavg()[0]
    print(f"Latency in ms, median / p99 over {repeats} calls each, taking turns (3 warm-up calls not counted);")
    print(f"{os.cpu_count()} CPUs, load average {started_load:.1f} at the start and {load:.1f} at the end:")
    print()
    print("| technique | rows | Keras call | pyfunc in-process | HTTP /invocations | pyfunc / Keras |")
    print("| --- | --- | --- | --- | --- | --- |")
    misses = []
    for name, row in results.items():
        for rows in (1, 256):
            cells = row[rows]
            ratio = cells["pyfunc"][0] / cells["keras"][0]
            if rows == 256 and ratio > TARGET_RATIO:
                misses.append(f"{name} {ratio:.2f}x")
            shown = " | ".join(f"{cells[k][0]:.2f} / {cells[k][1]:.2f}" for k in ("keras", "pyfunc", "http"))
            print(f"| {name} | {rows} | {shown} | {ratio:.2f}x |")
    print()
    print("Sizes of the .keras file and of each `zoo export` (no: what the format cannot take):")
    print()
    print("| technique | .keras | " + " | ".join(FORMATS) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in FORMATS) + " |")
    for name, row in results.items():
        sizes = row["sizes"]
        print(f"| {name} | {sizes['keras']} | " + " | ".join(sizes[f] for f in FORMATS) + " |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({k: {str(r): v for r, v in row.items()} for k, row in results.items()}, handle, indent=2)
    print()
    if misses:
        print(f"over {TARGET_RATIO}x: {', '.join(misses)}")
    worst = max(row[256]["pyfunc"][0] / row[256]["keras"][0] for row in results.values())
    return gate.exit_status(gate.check("pyfunc / Keras on 256 rows, worst technique", worst, TARGET_RATIO, above=False))


if __name__ == "__main__":
    sys.exit(main())
