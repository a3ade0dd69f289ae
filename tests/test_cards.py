"""Model cards keep the architecture apart from the training defaults, and errors name parameters.

A builder takes architecture hyperparameters and returns its model uncompiled; the family's
training defaults (a `zoo.compiling.Training` dataclass) compile it inside `zoo.get`. Parametrized
over the registry, so a new model is checked without editing this file.
"""

import dataclasses
import json

import keras
import pytest

import zoo
from tests.conftest import running_runs
from zoo import compiling, registry

NAMES = registry.names()


@pytest.mark.parametrize("name", NAMES)
def test_builders_return_the_architecture_and_get_compiles_it_once(name):
    entry = registry._REGISTRY[name]
    assert entry.training is not None and issubclass(entry.training, compiling.Training)
    card = entry.card
    bare = entry.builder(**{key: hp.default for key, hp in card.architecture.items()})
    # Compiling lives in the family's training class only: a builder that compiled would be caught here.
    assert not bare.compiled, f"{name}: the builder compiles; leave it to its training class"
    assert zoo.get(name).compiled
    assert not set(card.architecture) & set(card.training)
    assert card.hyperparameters == {**card.architecture, **card.training}
    assert set(card.training) == {field.name for field in dataclasses.fields(entry.training)}
    assert set(card.search_space) <= set(card.hyperparameters)


def _learning_rates(model):
    """The learning rates `model` trains with: of its optimizers, or the RBM's own update rule."""
    optimizers = [getattr(model, key, None) for key in ("optimizer", "generator_optimizer", "discriminator_optimizer")]
    rates = [float(keras.ops.convert_to_numpy(opt.learning_rate)) for opt in optimizers if opt is not None]
    return rates or [model.learning_rate]


@pytest.mark.parametrize("name", NAMES)
def test_training_overrides_reach_what_fit_uses(name):
    card = zoo.info(name)
    rates = [key for key in card.training if key.endswith("learning_rate")]
    assert rates, f"{name}: no learning rate among its training defaults {list(card.training)}"
    defaults = sorted(card.training[key].default for key in rates)
    assert sorted(_learning_rates(zoo.get(name))) == pytest.approx(defaults)
    halved = {key: card.training[key].default / 2 for key in rates}
    assert sorted(_learning_rates(zoo.get(name, **halved))) == pytest.approx(sorted(halved.values()))


def test_training_settings_are_checked_and_tunable_like_architecture():
    with pytest.raises(zoo.ZooError, match=r"'clipnorm' must be in \[0.0"):
        zoo.get("lstm", clipnorm=-1.0)
    with pytest.raises(zoo.ZooError, match=r"'momentum' must be in \[0.0, 1.0\)"):
        zoo.get("rbm", momentum=1.0)
    model = zoo.get("rbm", k=3, persistent=False, momentum=0.5, steps_per_execution=4)
    assert (model.k, model.persistent, model.momentum, model.steps_per_execution) == (3, False, 0.5, 4)
    # The RBM's update settings travel with its config (and so with a saved model).
    assert model.get_config()["momentum"] == 0.5
    assert registry.resolve("lstm", {"clipnorm": "0.5", "units": "32"})["clipnorm"] == 0.5
    # A search space may mix both kinds of keys.
    assert {"learning_rate", "dropout"} <= set(zoo.info("cnn").search_space)


def test_cards_list_architecture_and_training_apart():
    lstm = zoo.info("lstm")
    assert "units" in lstm.architecture and "dropout" in lstm.architecture
    assert set(lstm.training) == {"learning_rate", "clipnorm"}
    gan = zoo.info("gan")
    assert set(gan.training) == {"generator_learning_rate", "discriminator_learning_rate", "beta_1", "label_smoothing"}
    assert "generator_filters" in gan.architecture and "ema_momentum" in gan.architecture
    rbm = zoo.info("rbm")
    assert {"learning_rate", "momentum", "steps_per_execution", "k"} <= set(rbm.training)
    assert "hidden_units" in rbm.architecture and "learning_rate" not in rbm.architecture
    assert "optimizer" in rbm.compiled_as.lower()  # "No optimizer: fit applies contrastive-divergence updates"


def test_generator_card_says_it_is_trained_inside_the_gan():
    card = zoo.info("generator")
    assert card.part_of == "gan" and card.recipe == "gan"
    assert "mean squared error" in card.compiled_as
    assert "as part of the `gan` model; no recipe trains it alone" in card.format()
    assert zoo.get("generator").loss == "mse"
    assert zoo.info("discriminator").part_of == "gan" and zoo.info("gan").part_of == ""
    with pytest.raises(TypeError, match="both architecture and training keys"):

        @dataclasses.dataclass(frozen=True)
        class Clash(compiling.Adam):
            """Adam."""

        registry.register(
            "zoo_test_clash", technique="t", tasks=(), summary="s", when_to_use="w", inputs="i", outputs="o",
            recipe="mlp", training=Clash,
        )(lambda *, learning_rate=1.0: None)  # fmt: skip
    assert "zoo_test_clash" not in registry._REGISTRY


def test_zoo_info_prints_both_sections_in_each_format(run_cli):
    status, out, _ = run_cli("info", "lstm")
    assert status == 0
    architecture, training = out.split("Training defaults", 1)
    assert "units: tuple[int, ...] = (128,)" in architecture and "clipnorm" not in architecture
    assert "clipnorm: float = 1.0" in training and "compiled as: Adam with gradient clipping" in training
    status, out, _ = run_cli("info", "rbm", "--format", "json")
    card = json.loads(out)
    assert status == 0 and card["training"]["learning_rate"]["default"] == 0.06
    assert "learning_rate" not in card["architecture"] and card["architecture"]["hidden_units"]["type"] == "int"
    status, out, _ = run_cli("info", "gan", "--format", "markdown")
    assert status == 0 and "### Architecture" in out and "### Training defaults" in out
    assert "| `beta_1` | float | `0.5` |" in out.split("### Training defaults")[1]


# === Errors name Python parameters; the command line names its flags ===


def test_a_python_error_names_the_parameter_and_the_cli_names_the_flag(run_cli, tracking_uri, tmp_path):
    with pytest.raises(zoo.ZooError) as caught:
        zoo.train("cnn", dataset="digits", image_size=(28, 28), epochs=1)
    assert "drop `image_size`" in str(caught.value) and "--" not in str(caught.value)
    status, _, err = run_cli("train", "cnn", "--dataset", "digits", "--image-size", "28,28", "--epochs", "1")
    assert status == 2 and "drop --image-size (received" in err and "--dataset mnist" in err
    assert "`" not in err and not running_runs(tracking_uri)


def test_as_flags_spells_options_booleans_and_hyperparameters():
    from zoo import cli

    flags = cli.option_flags(cli.build_parser())
    assert cli.as_flags("pass `image_size=H,W` or `skip_corrupt=True`", flags) == (
        "pass --image-size H,W or --skip-corrupt"
    )
    assert (
        cli.as_flags("`download=False` forbids it; see `data_dir`", flags) == "--no-download forbids it; see --data-dir"
    )
    assert (
        cli.as_flags("`metric=x` (tune) and `time_downsample=1`", flags)
        == "--metric x (tune) and --set time_downsample=1"
    )
    # Backticked text that is no parameter stays as it is.
    assert cli.as_flags("see `zoo info mlp` and `nonsense`", flags) == "see `zoo info mlp` and `nonsense`"
