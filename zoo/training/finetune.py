"""Fine-tuning: start a run from a trained model's weights (`init_from`), with layers frozen at first.

`init_from` names a logged run (`RUN_ID`, `runs:/RUN_ID/model`), a registered model
(`models:/NAME@ALIAS`, `models:/NAME/VERSION`) or a `.keras` file. The recipe builds its model for
the new data as always; every layer with trainable weights takes the source's weights when the
source has a layer of the same name whose weights have the same shapes, and keeps its fresh
initialization otherwise: a classifier head over other classes, an OCR model's output layer over
another alphabet, a first dense layer after another image size. Layers whose weights are all
statistics of the data (`Normalization`) keep the new data's.

`freeze` (`N`: the first N layers with weights; `all-but-head`: all but the last one) keeps
those layers fixed for `freeze_epochs` epochs; then every layer trains, at the learning rate times
`UNFROZEN_LEARNING_RATE`, so the new head's first large gradients do not wreck the taken
features (timm's and keras.io's transfer-learning recipe). One `fit` does both phases on every
backend: at the unfreezing epoch a callback sets the layers trainable and traces the training
step again (Keras 3 reads `trainable` when it traces the step); on JAX, whose stateless optimizer
update takes exactly the variables it was built on, the optimizer is rebuilt on every layer with
its step count, learning rate and the head's moments carried over.

The run records where it started: tags `zoo.init_from` (as given), `zoo.init_from.run_id`,
`zoo.init_from.model_id`, `zoo.init_from.took`, `zoo.init_from.new`, and, where the store supports
it, the source logged model as an input of the run (MLflow's model lineage).
"""

import dataclasses
import os
import re
import sys
import typing

from zoo.errors import ZooError

# The learning rate once every layer trains, relative to the compiled one.
UNFROZEN_LEARNING_RATE = 0.1
HEAD = "all-but-head"
TAG = "zoo.init_from"


@dataclasses.dataclass
class Transfer:
    """What `transfer` did: the layers that took the source's weights and those built new."""

    reference: str
    run_id: str | None
    model_id: str | None
    took: list[str]
    new: list[str]

    def describe(self) -> str:
        took = ", ".join(self.took) or "none"
        new = ", ".join(self.new) or "none"
        return f"zoo: init from {self.reference}: took {len(self.took)} layers ({took}); built new: {new}"


def check(config: typing.Any) -> None:
    """Refuse `freeze` and `freeze_epochs` values that cannot work, before any data is loaded.

    Raises:
        ZooError: naming the option and what it takes.
    """
    freeze = None if config.freeze is None else str(config.freeze)
    if freeze is None:
        if config.freeze_epochs:
            raise ZooError("`freeze_epochs` needs `freeze` (N or all-but-head): which layers stay frozen.")
        return
    if freeze != HEAD and not (freeze.isdigit() and int(freeze) >= 1):
        raise ZooError(f"`freeze` takes a number of layers (1 or more) or {HEAD}. Received: freeze={freeze}")
    if config.init_from is None:
        raise ZooError("`freeze` keeps the layers taken from a trained model: give `init_from` too.")
    if not 1 <= config.freeze_epochs < config.epochs:
        raise ZooError(
            f"`freeze_epochs` must be at least 1 and below `epochs` ({config.epochs}), so that every layer "
            f"trains afterwards. Received: freeze_epochs={config.freeze_epochs}"
        )


def load_source(
    reference: str, tracking_uri: str | None = None
) -> tuple[typing.Any, str | None, str | None, typing.Any]:
    """The Keras model `reference` names, the run that logged it, its MLflow logged-model id and the
    labels of its outputs (class names, or an OCR model's alphabet; None when unknown: a .keras file).

    Raises:
        ZooError: when `reference` names nothing loadable.
    """
    import keras

    from zoo import registry

    registry.names()  # imports the zoo's models, so their custom classes deserialize
    if os.path.isfile(reference):
        if not reference.endswith(".keras"):
            raise ZooError(f"`init_from={reference}` is not a .keras file, a run id, or a runs:/ or models:/ URI.")
        try:
            return keras.saving.load_model(reference, compile=False), None, None, None
        except Exception as error:  # noqa: BLE001 - a damaged or foreign file: one line
            raise ZooError(f"Cannot load the Keras model {reference} ({_first_line(error)}).") from None
    uri = reference
    if re.fullmatch(r"[0-9a-f]{32}", reference):
        uri = f"runs:/{reference}/model"
    elif not reference.startswith(("runs:/", "models:/")):
        raise ZooError(
            f"`init_from={reference}` is not a .keras file, a run id, or a runs:/ or models:/ URI "
            "(models:/NAME@champion)."
        )
    import mlflow
    from mlflow.exceptions import MlflowException

    from zoo import tracking

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    store = tracking.configure(tracking_uri)
    try:
        info = mlflow.models.get_model_info(uri)
        model = mlflow.keras.load_model(uri, load_model_kwargs={"compile": False})
    except (MlflowException, OSError, ValueError) as error:
        raise ZooError(
            f"Cannot load the model {uri} from the MLflow store {store} ({_first_line(error)}). Check "
            "`init_from` and `tracking_uri`."
        ) from None
    metadata = info.metadata or {}
    return model, info.run_id, getattr(info, "model_id", None), labels_of(metadata)


def weighted_layers(model: typing.Any) -> list[typing.Any]:
    """The layers with trainable weights, in order, nested models' layers in place of the models."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += weighted_layers(layer)
        elif layer.trainable_weights:
            found.append(layer)
    return found


def _flat_layers(model: typing.Any) -> list[typing.Any]:
    import keras

    found = []
    for layer in model.layers:
        found += _flat_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return found


def labels_of(spec: typing.Mapping[str, typing.Any]) -> typing.Any:
    """What a model's outputs stand for, from a model's metadata or a run's data spec: the class
    names, or an OCR model's alphabet."""
    labels = spec.get("class_names") or spec.get("alphabet")
    return [str(label) for label in labels] if labels else None


def transfer(
    source: typing.Any,
    model: typing.Any,
    reference: str,
    run_id: str | None = None,
    model_id: str | None = None,
    labels: tuple[typing.Any, typing.Any] = (None, None),
) -> Transfer:
    """Copy the source's weights into `model` wherever a layer's name and weight shapes match.

    `labels` are (the source's, the new data's) output labels: when both are known and differ,
    the output layer is built new even where its shape matches (ten digits read as ten letters).
    """
    offered = {layer.name: layer for layer in weighted_layers(source)}
    took, new = [], []
    layers = weighted_layers(model)
    other_outputs = None not in labels and list(labels[0]) != list(labels[1])
    for layer in layers:
        match = offered.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if layer is layers[-1] and other_outputs:
            new.append(layer.name)
        elif match is not None and [tuple(w.shape) for w in match.weights] == shapes:
            layer.set_weights(match.get_weights())
            took.append(layer.name)
        else:
            new.append(layer.name)
    if not took:
        raise ZooError(
            f"`init_from={reference}` shares no layer (same name, same weight shapes) with model '{model.name}': "
            "start from a model of the same architecture."
        )
    return Transfer(reference, run_id, model_id, took, new)


def freeze(model: typing.Any, spec: str) -> list[str]:
    """Freeze the layers `spec` names (N, or all-but-head); return their names.

    On TensorFlow and PyTorch the optimizer is built on every trainable variable first, so that it
    can update those that unfreeze later (a Keras optimizer keeps slots only for the variables it
    was built on). Not on JAX: there its stateless update takes exactly the variables it was built
    on, so it is built on those that train now, and rebuilt when the layers unfreeze.

    Raises:
        ZooError: for more layers than the model has with weights.
    """
    layers = weighted_layers(model)
    count = len(layers) - 1 if spec == HEAD else int(spec)
    if count >= len(layers):
        raise ZooError(
            f"`freeze={spec}` leaves nothing to train: model '{model.name}' has {len(layers)} layers with weights; "
            f"freeze at most {len(layers) - 1} (or {HEAD})."
        )
    import keras

    if not model.optimizer.built and keras.backend.backend() != "jax":
        model.optimizer.build(model.trainable_variables)
    for layer in layers[:count]:
        layer.trainable = False
    return [layer.name for layer in layers[:count]]


def unfreeze_callback(model: typing.Any, frozen: list[str], epochs: int) -> typing.Any:
    """A Keras callback that, at epoch `epochs`, unfreezes `frozen` and lowers the learning rate."""
    import keras

    class Unfreeze(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: typing.Any = None) -> None:
            if epoch != epochs:
                return
            # Not `weighted_layers`: a frozen layer has no trainable weights until it is unfrozen.
            for layer in _flat_layers(self.model):
                if layer.name in frozen:
                    layer.trainable = True
            if keras.backend.backend() == "jax":
                self.model.optimizer = _rebuilt(self.model.optimizer, self.model.trainable_variables)
            rate = self.model.optimizer.learning_rate
            if isinstance(rate, keras.Variable):
                rate.assign(float(rate.numpy()) * UNFROZEN_LEARNING_RATE)
            # `fit` calls `model.train_function` each step: traced again, it updates every layer (on
            # JAX, `fit` reads the model's and the new optimizer's state after this callback).
            self.model.make_train_function(force=True)
            print(
                f"zoo: epoch {epoch + 1}: the {len(frozen)} frozen layers train again, "
                f"learning rate x{UNFROZEN_LEARNING_RATE}",
                file=sys.stderr,
                flush=True,
            )

    return Unfreeze()


def _rebuilt(optimizer: typing.Any, variables: list[typing.Any]) -> typing.Any:
    """The same optimizer, built on `variables`: its step count, learning rate and the moments of
    the variables it already trained carried over, fresh slots for the unfrozen ones."""
    fresh = optimizer.__class__.from_config(optimizer.get_config())
    fresh.build(variables)
    # Optimizer variables are named for the model variable they follow ("adam/dense_kernel_momentum").
    old = {variable.path: variable for variable in optimizer.variables}
    for variable in fresh.variables:
        if variable.path in old and tuple(old[variable.path].shape) == tuple(variable.shape):
            variable.assign(old[variable.path])
    return fresh


def start_from(
    model: typing.Any, reference: str, tracking_uri: str | None = None, labels: typing.Any = None
) -> Transfer:
    """Load `reference`, copy its matching weights into `model`, say which layers it took and which are new.

    Args:
        labels: the new data's output labels (`labels_of(data.spec)`), None when unknown.
    """
    source, run_id, model_id, source_labels = load_source(reference, tracking_uri)
    transferred = transfer(source, model, reference, run_id, model_id, (source_labels, labels))
    print(transferred.describe(), file=sys.stderr, flush=True)
    return transferred


def log(transferred: Transfer, frozen: list[str]) -> None:
    """Tags of the run's source model and, where the store keeps it, the model as the run's input."""
    import contextlib

    from zoo.tracking import mlflow

    tags = {TAG: transferred.reference, f"{TAG}.took": ",".join(transferred.took)[:5000]}
    tags[f"{TAG}.new"] = ",".join(transferred.new)[:5000]
    if transferred.run_id:
        tags[f"{TAG}.run_id"] = transferred.run_id
    if transferred.model_id:
        tags[f"{TAG}.model_id"] = transferred.model_id
    if frozen:
        tags["zoo.frozen"] = ",".join(frozen)[:5000]
    mlflow.set_tags(tags)
    if transferred.model_id:
        from mlflow.entities import LoggedModelInput

        # MLflow's model lineage; stores that do not keep model inputs refuse it, the tags remain.
        with contextlib.suppress(Exception):
            mlflow.log_inputs(models=[LoggedModelInput(transferred.model_id)])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__name__
