"""Adding a technique is one model file and one recipe file, with no other edit: proved here.

A throwaway model (`@register`) and recipe (`@register_recipe`) are written as two new modules and
then found the way every technique is found: `pkgutil.iter_modules` over `zoo.models.__path__` and
`zoo.recipes.__path__`, imported as `zoo.models.throwaway_net` and `zoo.recipes.throwaway`. The
tests may not write into the checkout (conftest fails the run on any file left there), so the two
files sit in a temporary folder that a fresh Python process appends to those two package paths
before anything else runs (`BOOT`): the only difference from dropping them into `zoo/models/` and
`recipes/` is the folder on disk, and no registry of this process (or of the other tests) sees
them. In that process, with no other edit:

- the registry-wide tests (`tests/test_registry.py`, `tests/test_cards.py`, `tests/test_tune.py`)
  are parametrized over the new model and pass for it, and `tests/test_devices.py` has a device
  case for the new recipe;
- `zoo list` lists it, `zoo info NAME` shows its card, and `zoo train NAME --epochs 1` trains it
  to a finished MLflow run that beats the majority class.

The registries discover modules inside those packages only (no entry points, no environment
variable): extending the package paths in a subprocess is the smallest mechanism that exercises
that discovery unchanged.
"""

import json
import os
import subprocess
import sys

from tests import baselines
from tests.conftest import REPO
from zoo import training
from zoo.datasets import images

MODEL = '''"""A throwaway model for tests/test_new_technique.py: a one-hidden-layer image classifier."""

import dataclasses

import keras

from zoo import compiling
from zoo.registry import check_range, register


@dataclasses.dataclass(frozen=True)
class ThrowawayTraining(compiling.Adam):
    """Adam on sparse categorical cross-entropy, accuracy reported."""

    learning_rate: float = 1e-2

    def compile(self, model, architecture):
        model.compile(
            optimizer=self.optimizer(),
            loss="sparse_categorical_crossentropy",
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )


@register(
    "throwaway_net",
    technique="throwaway",
    tasks=("multiclass", "image_classification"),
    summary="A one-hidden-layer classifier of small images (a test's throwaway).",
    when_to_use="Never: it proves that a new technique needs no edit elsewhere.",
    inputs="(batch, height, width, channels) raw pixels 0-255",
    outputs="(batch, num_classes) probabilities",
    recipe="throwaway",
    training=ThrowawayTraining,
    search_space={"learning_rate": "log:1e-3..1e-1", "units": "int:8..64"},
    exports="tf_saved_model",
)
def throwaway_net(*, input_shape: tuple[int, ...] = (8, 8, 1), num_classes: int = 10, units: int = 32):
    """Build throwaway_net (`zoo.get` compiles it with `ThrowawayTraining`).

    Args:
        input_shape: shape of one image.
        num_classes: number of classes.
        units: width of the hidden layer.

    Returns:
        A `keras.Model`, not compiled.
    """
    check_range("units", units, low=1)
    # === Layers ===
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(units, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    # === Functional Model ===
    return keras.Model(inputs, outputs, name="throwaway_net")
'''

RECIPE = '''"""A throwaway recipe for tests/test_new_technique.py: throwaway_net on the 8x8 digits."""

import dataclasses

from zoo import training
from zoo import training
from zoo.datasets import images


@dataclasses.dataclass
class ThrowawayConfig(training.RecipeConfig):
    """Options of the throwaway recipe.

    Args:
        units_hint: unused; shows that a recipe's own option reaches `zoo train --help`.
    """

    epochs: int = 5
    units_hint: int = 0


@training.register_recipe
class ThrowawayRecipe(training.Recipe):
    name = "throwaway"
    technique = "throwaway"
    summary = "A test's throwaway technique on the 8x8 digits."
    model = "throwaway_net"
    Config = ThrowawayConfig

    def load_data(self, config):
        digits = images.load("digits", seed=config.seed)
        return training.Data(
            train=images.to_dataset(digits.x_train, digits.y_train),
            validation=images.to_dataset(digits.x_val, digits.y_val),
            test=images.to_dataset(digits.x_test, digits.y_test),
            num_train=len(digits.x_train),
            example_inputs=(digits.x_test[:5] * images.PIXEL_MAX).astype("float32"),
            spec={**digits.spec(), "task": "multiclass"},
            loaded=digits,
        )

    def model_overrides(self, config, data):
        return {"input_shape": tuple(data.spec["shape"]), "num_classes": data.spec["num_classes"]}
'''

# Run before anything else in the fresh process: the two folders join the packages' search paths,
# then argv[3:] is run as `python -m pytest ...` or `zoo ...` would run it.
BOOT = """
import sys
import zoo.models, zoo.recipes
zoo.models.__path__.append(sys.argv[1])
zoo.recipes.__path__.append(sys.argv[2])
models, recipes, what, *args = sys.argv[1:]
if what == "pytest":
    import pytest
    sys.exit(pytest.main(args))
if what == "devices":
    from tests import test_devices
    print(json.dumps(sorted(test_devices.device_cases())))
    sys.exit(0)
# Each command as `zoo ARGS` runs it, in this one process (TensorFlow is imported once): a JSON
# line {command: [exit status, stdout, stderr]} at the end.
import contextlib, io
from zoo import cli
answers = {}
for command in [what, *args]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(command.split())
    answers[command] = [status, out.getvalue(), err.getvalue()]
print(json.dumps(answers))
""".replace("import sys", "import json, sys", 1)


def _run(tmp_path, *args, cwd):
    models, recipes = tmp_path / "models", tmp_path / "recipes"
    for folder, name, text in ((models, "throwaway_net.py", MODEL), (recipes, "throwaway.py", RECIPE)):
        folder.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", BOOT, str(models), str(recipes), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


def test_a_new_model_and_recipe_file_are_picked_up_by_the_registry_tests(tmp_path):
    tests = [str(REPO / "tests" / name) for name in ("test_registry.py", "test_cards.py", "test_tune.py")]
    # No cache folder in the checkout; -rA lists each test that ran, by id.
    result = _run(tmp_path, "pytest", *tests, "-q", "-rA", "-p", "no:cacheprovider", "-k", "throwaway_net", cwd=REPO)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    passed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("PASSED ")}
    registry_wide = {
        "tests/test_registry.py::test_card_is_complete_and_matches_the_builder[throwaway_net]",
        "tests/test_registry.py::test_get_returns_a_compiled_model[throwaway_net]",
        "tests/test_registry.py::test_config_round_trip[throwaway_net]",
        "tests/test_registry.py::test_keras_save_load_gives_identical_predictions[throwaway_net]",
        "tests/test_cards.py::test_builders_return_the_architecture_and_get_compiles_it_once[throwaway_net]",
        "tests/test_cards.py::test_training_overrides_reach_what_fit_uses[throwaway_net]",
        "tests/test_tune.py::test_every_model_declares_a_valid_default_space[throwaway_net]",
    }
    assert registry_wide <= passed, (sorted(registry_wide - passed), result.stdout[-3000:])

    result = _run(tmp_path, "devices", cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "throwaway" in json.loads(result.stdout.strip().splitlines()[-1])


def test_a_new_technique_is_listed_described_and_trained_by_the_cli(tmp_path):
    import mlflow

    work = tmp_path / "work"
    work.mkdir()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    train = f"train throwaway --epochs 1 --tracking-uri {uri}"
    result = _run(tmp_path, "list", "info throwaway_net", train, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    for command, (status, _, err) in answers.items():
        assert status == 0, (command, err[-3000:])
    assert "throwaway_net" in answers["list"][1]
    card = answers["info throwaway_net"][1]
    assert "A one-hidden-layer classifier" in card and "units" in card
    mlflow.set_tracking_uri(uri)
    (run,) = mlflow.search_runs(experiment_names=["zoo"], output_format="list")
    assert run.info.status == "FINISHED"
    assert run.data.tags["zoo.recipe"] == "throwaway" and run.data.tags["zoo.model"] == "throwaway_net"
    # Floor: the majority class of the digits' test split, plus half the test rows (one epoch
    # of this classifier gets about 80 % of them right, the majority class about 10 %).
    y_test = images.load("digits", seed=training.RecipeConfig().seed).y_test
    rows = len(y_test)
    correct = baselines.count(run.data.metrics["test_accuracy"], rows)
    baselines.assert_beats(correct, baselines.majority_count(y_test), rows // 2, rows, "throwaway 1 epoch")
