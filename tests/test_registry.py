"""Every registered model: builds compiled, round-trips its config, saves and loads identically.

Parametrized over the registry, so a new model is tested without editing this file.
"""

import inspect
import typing

import keras
import numpy as np
import pytest

import zoo
from tests.conftest import sample_inputs
from zoo import registry

NAMES = registry.names()
CARD_FIELDS = ("name", "technique", "tasks", "summary", "when_to_use", "inputs", "outputs", "recipe", "exports")


def test_registry_is_not_empty():
    assert "mlp" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_card_is_complete_and_matches_the_builder(name):
    card = zoo.info(name)
    for field in CARD_FIELDS:
        assert getattr(card, field), f"{name}: card field {field} is empty"
    builder = registry._REGISTRY[name].builder
    signature = inspect.signature(builder)
    # The builder takes the architecture; the training defaults are the fields of its training class.
    assert set(card.architecture) == set(signature.parameters)
    for hp in card.architecture.values():
        assert hp.default == signature.parameters[hp.name].default
        assert hp.doc, f"{name}: hyperparameter {hp.name} has no description in Args:"
    assert card.training and card.compiled_as, f"{name}: declare training= in its @register"
    for hp in card.training.values():
        assert hp.doc, f"{name}: training setting {hp.name} has no description in its class's Args:"
    from zoo import training

    assert card.recipe in training.recipe_names(), f"{name}: default recipe {card.recipe} does not exist"


@pytest.mark.parametrize("name", NAMES)
def test_get_returns_a_compiled_model(name):
    model = zoo.get(name)
    assert isinstance(model, keras.Model)
    assert model.compiled
    assert model.built


def _from_config(model):
    if (
        model.__class__ is keras.Model
        or isinstance(model, keras.Sequential)
        or model.__class__.__name__ == "Functional"
    ):
        return keras.Model.from_config(model.get_config())
    return model.__class__.from_config(model.get_config())


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(name):
    model = zoo.get(name)
    clone = _from_config(model)
    assert clone.get_config() == model.get_config()


@pytest.mark.parametrize("name", NAMES)
def test_keras_save_load_gives_identical_predictions(name, tmp_path):
    keras.utils.set_random_seed(1)
    model = zoo.get(name)
    inputs = sample_inputs(model)
    expected = model.predict(inputs, verbose=0)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    actual = loaded.predict(inputs, verbose=0)
    for want, got in zip(keras.tree.flatten(expected), keras.tree.flatten(actual)):
        np.testing.assert_array_equal(np.asarray(want), np.asarray(got))


def test_unknown_name_lists_models_and_closest_match():
    with pytest.raises(zoo.ZooError) as error:
        zoo.get("mpl")
    message = str(error.value)
    assert "Did you mean 'mlp'" in message
    for name in NAMES:
        assert name in message


def test_unknown_override_names_valid_keys():
    with pytest.raises(zoo.ZooError, match="Did you mean 'hidden_units'.*Valid keys: .*dropout"):
        zoo.get("mlp", hiden_units=(8,))


@pytest.mark.parametrize(
    "override, pattern",
    [
        ({"dropout": 1.5}, r"'dropout' must be in \[0.0, 1.0\)"),
        ({"hidden_units": "a,b"}, r"expected tuple\[int, \.\.\.\]"),
        ({"task": "clustering"}, r"expected 'binary' \| 'multiclass' \| 'regression'"),
        ({"learning_rate": -1.0}, r"'learning_rate' must be in \(0.0"),
        ({"hidden_units": (0,)}, r"'hidden_units' must be in \[1"),
        ({"activation": "nope"}, r"Unknown activation 'nope'"),
    ],
)
def test_bad_values_raise_with_the_valid_range(override, pattern):
    with pytest.raises(zoo.ZooError, match=pattern):
        zoo.get("mlp", **override)


def test_string_overrides_are_parsed_by_type():
    model = zoo.get("mlp", hidden_units="16,8", dropout="0", input_shape="5")
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [16, 8, 1]
    assert model.input_shape == (None, 5)


def test_registering_a_name_twice_raises():
    @registry.register(
        "zoo_test_once",
        technique="test",
        tasks=("t",),
        summary="s",
        when_to_use="w",
        inputs="i",
        outputs="o",
        recipe="mlp",
    )
    def once(*, width: int = 1):
        """Args:
        width: unused.
        """

    try:
        with pytest.raises(ValueError, match="already registered under the name 'zoo_test_once'"):
            registry.register(
                "zoo_test_once",
                technique="test",
                tasks=("t",),
                summary="s",
                when_to_use="w",
                inputs="i",
                outputs="o",
                recipe="mlp",
            )(once)
    finally:
        registry._REGISTRY.pop("zoo_test_once")


def test_builders_must_take_keyword_only_hyperparameters():
    def positional(width=1):
        pass

    with pytest.raises(TypeError, match="keyword-only"):
        registry.register(
            "zoo_test_bad", technique="t", tasks=(), summary="s", when_to_use="w", inputs="i", outputs="o", recipe="mlp"
        )(positional)
    assert "zoo_test_bad" not in registry._REGISTRY


def test_list_filters_by_technique_and_task():
    assert [c.name for c in zoo.list(technique="mlp")] == [n for n in NAMES if zoo.info(n).technique == "mlp"]
    regression = zoo.list(task="regression")
    assert "mlp" in [c.name for c in regression]
    assert all("regression" in c.tasks for c in regression)
    assert zoo.list(technique="no-such-technique") == []


def test_card_to_dict_lists_both_sections_with_defaults():
    card = zoo.info("mlp").to_dict()
    assert card["architecture"]["hidden_units"]["default"] == (64, 32)
    assert card["architecture"]["dropout"]["type"] == "float"
    assert card["training"]["learning_rate"]["default"] == 1e-3
    assert card["recipe"] == "mlp"


# typing.Optional on purpose: cards written before PEP 604 must still coerce.
def test_coerce_handles_optional_literal_and_bool():
    assert registry.coerce("k", "none", typing.Optional[int]) is None  # noqa: UP045
    assert registry.coerce("k", "3", typing.Optional[int]) == 3  # noqa: UP045
    assert registry.coerce("k", "yes", bool) is True
    assert registry.coerce("k", "8", tuple[int, ...]) == (8,)
    with pytest.raises(zoo.ZooError, match="Received: k='maybe'"):
        registry.coerce("k", "maybe", bool)


def test_the_card_index_holds_the_cards_of_the_code():
    # `zoo list` and `zoo info` read zoo/cards.json instead of importing Keras: it must match.
    from zoo import cards, registry

    index = cards.load()
    assert index is not None, "zoo/cards.json is older than zoo/models/: run `python -m zoo.cards`"
    live = {card.name: card for card in registry.list_models(indexed=False)}
    ours = {name for name, entry in registry._REGISTRY.items() if entry.builder.__module__.startswith("zoo.models.")}
    assert set(index) == ours
    for name in ours:
        assert index[name].to_dict() == live[name].to_dict() and index[name].format() == live[name].format(), name


def test_list_and_info_read_as_one_line_per_model_and_a_card_within_100_columns():
    import zoo

    cards = zoo.list()
    lines = repr(cards).splitlines()
    assert isinstance(cards, list) and len(lines) == len(cards)
    assert all(line.split()[0] == card.name and len(line) <= 100 for line, card in zip(lines, cards))
    text = repr(zoo.info("cnn"))
    assert text.startswith("cnn  (cnn; tasks: image_classification)") and max(map(len, text.splitlines())) <= 100
    # The architecture defaults are MNIST's, and the card says what the recipe's data gives instead.
    assert "8, 8, 1 for its default digits" in text
