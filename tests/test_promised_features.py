"""Features the README promises, run for real: ZOO_DEBUG, --precision mixed_bfloat16 on the CPU, --jit."""

import math

import keras
import mlflow
import pytest

from tests.conftest import running_runs
from zoo import training


@pytest.fixture()
def broken_recipe():
    """A recipe whose loader has a real bug (an IndexError), registered for one test only."""

    @training.register_recipe
    class Broken(training.Recipe):
        name = "broken_for_tests"
        technique = "mlp"
        summary = "A loader with a bug, for the internal-error path."
        model = "mlp"

        def load_data(self, config):
            return [][0]

    yield Broken.name
    training.unregister_recipe(Broken.name)


def test_an_internal_error_is_one_line_and_zoo_debug_shows_the_traceback(
    run_cli, tracking_uri, broken_recipe, monkeypatch
):
    monkeypatch.delenv("ZOO_DEBUG", raising=False)
    status, out, err = run_cli("train", broken_recipe, "--epochs", "1")
    assert status == 1
    assert err.strip().splitlines() == [
        "zoo: internal error: IndexError: list index out of range (set ZOO_DEBUG=1 for the traceback)"
    ]
    monkeypatch.setenv("ZOO_DEBUG", "1")
    with pytest.raises(IndexError, match="list index out of range"):
        run_cli("train", broken_recipe, "--epochs", "1")
    assert not running_runs(tracking_uri)


def test_mixed_bfloat16_trains_on_the_cpu_with_float32_outputs(tracking_uri):
    result = training.train("mlp", {"dataset": "iris", "epochs": 2, "precision": "mixed_bfloat16"})
    policies = {layer.dtype_policy.name for layer in result.model.layers if isinstance(layer, keras.layers.Dense)}
    assert "mixed_bfloat16" in policies
    assert keras.backend.standardize_dtype(result.model.outputs[0].dtype) == "float32"
    assert math.isfinite(result.metrics["test_loss"])
    assert mlflow.MlflowClient(tracking_uri).get_run(result.run_id).data.params["precision"] == "mixed_bfloat16"
    # The policy was the run's, not the process's.
    assert keras.mixed_precision.global_policy().name == "float32"


def test_jit_compiles_the_training_step_with_xla(tracking_uri):
    result = training.train("mlp", {"dataset": "iris", "epochs": 2, "jit": True})
    assert result.model.jit_compile is True
    assert math.isfinite(result.metrics["test_loss"])
    assert mlflow.MlflowClient(tracking_uri).get_run(result.run_id).data.params["jit"] == "True"
