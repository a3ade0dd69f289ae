"""Recipe options: `RecipeConfig`, the options every recipe has, and how options and `--set` settings
become a recipe's config and its model's overrides.

A new option every recipe has goes into `RecipeConfig` here (and into `RUN_OPTIONS` when it says
where a run goes rather than how it trains).
"""

import dataclasses
import typing

from zoo import backends, registry
from zoo.errors import ZooError, closest

if typing.TYPE_CHECKING:
    from zoo.training.recipe import Recipe

# The largest seed NumPy's and Keras' generators take.
SEED_MAX = 2**32 - 1
# Options that say where a run goes, not how it trains: not logged as params.
# `require_learned` says what a finished run means to its caller (the exit status): not logged either.
RUN_OPTIONS: tuple[str, ...] = (
    "experiment",
    "run_name",
    "tracking_uri",
    "output",
    "register",
    "system_metrics",
    "checkpoint_dir",
    "require_learned",
)


@dataclasses.dataclass
class RecipeConfig:
    """Options every recipe has. A recipe subclasses this to add its own and change defaults.

    Args:
        epochs: maximum number of passes over the training split (a recipe with a budget in
            optimizer steps raises its default for small data; an explicit value wins).
        batch_size: global batch size (split across replicas when there are several devices).
        seed: seed for the split, the initial weights and the shuffling.
        patience: epochs without a better validation score (the recipe's metric, else the loss)
            before early stopping; the best epoch's weights are restored (0: never stop).
        lr_patience: epochs without a better validation score before the learning rate is halved,
            and again after as many more (reduce on plateau; 0, the default: a constant learning rate).
        devices: auto, cpu, gpu, gpu:0,1, cpu:0,1 or all.
        experiment: MLflow experiment name.
        run_name: MLflow run name.
        tracking_uri: MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db).
        output: folder to save the trained model in (`model.keras`), besides MLflow.
        register: register the model under this name, aliased champion if it beats the champion.
        system_metrics: log CPU, memory and GPU use as `system/*` metrics.
        checkpoint_dir: where per-epoch checkpoints go (default: ZOO_CHECKPOINT_DIR or
            ./zoo-checkpoints); a run's folder is deleted when it finishes, kept when it stops.
        precision: float32, or mixed_float16 / mixed_bfloat16 (for GPUs; outputs stay float32).
        jit: compile the training step with XLA on TensorFlow (JAX always compiles it; refused on
            PyTorch, where a recipe whose default is on trains without it).
        require_learned: `zoo train` exits 1 when the network does not beat its task's trivial
            baseline (for scripts and CI); the run is logged either way.
        init_from: start from a trained model's weights wherever layers match by name and shape: a
            run id, runs:/RUN_ID/model, models:/NAME@ALIAS or a .keras file (`zoo.training.finetune`).
        freeze: with init_from, keep the first N layers with weights (or all-but-head) frozen for
            freeze_epochs, then train every layer at a tenth of the learning rate.
        freeze_epochs: epochs the frozen layers stay frozen.
    """

    epochs: int = 20
    batch_size: int = 32
    seed: int = 42
    patience: int = 5
    lr_patience: int = 0
    devices: str = "auto"
    experiment: str | None = None
    run_name: str | None = None
    tracking_uri: str | None = None
    output: str | None = None
    register: str | None = None
    system_metrics: bool = False
    checkpoint_dir: str | None = None
    precision: typing.Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit: bool = False
    require_learned: bool = False
    init_from: str | None = None
    freeze: str | int | None = None
    freeze_epochs: int = 0


def config_fields(config_class: type) -> dict[str, typing.Any]:
    """Return {field name: type annotation} of a recipe's config class."""
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def make_config(
    recipe: "Recipe",
    options: typing.Mapping[str, typing.Any] | None = None,
    settings: typing.Mapping[str, typing.Any] | None = None,
) -> tuple[typing.Any, dict[str, typing.Any]]:
    """Build a recipe's config from options and `--set key=value` settings.

    A setting names a config field or a hyperparameter of the recipe's model; string values are
    parsed into the field's type.

    Returns:
        (config, model_overrides)

    Raises:
        ZooError: for an unknown key or a value of the wrong type.
    """
    fields = config_fields(recipe.Config)
    values, overrides = {}, {}
    for key, value in (options or {}).items():
        if key not in fields:
            raise ZooError(f"Unknown option '{key}' for recipe '{recipe.name}'.{closest(key, fields)}")
        values[key] = registry.coerce(key, value, fields[key])
    settings = settings or {}
    for key, value in settings.items():
        if key in fields:
            values[key] = registry.coerce(key, value, fields[key])
    # Options first: an option (`model=`) decides which hyperparameters exist.
    for key, value in settings.items():
        if key in fields:
            continue
        model = recipe.model_name(recipe.Config(**values))
        hyperparameters = registry.info(model).hyperparameters
        if key not in hyperparameters:
            known = list(fields) + list(hyperparameters)
            raise ZooError(
                f"Unknown key '{key}' for recipe '{recipe.name}' (a --set KEY or zoo.train keyword)."
                f"{closest(key, known)} "
                f"Valid keys: recipe options {', '.join(fields)}; model '{model}' hyperparameters "
                f"{', '.join(hyperparameters)}."
            )
        overrides[key] = registry.coerce(key, value, hyperparameters[key].annotation)
    backend = backends.named()
    if backend == "torch" and "jit" not in values:
        # A recipe whose default is XLA (the RBM's) trains without it where the backend has none;
        # only a `jit` the user asked for is refused there.
        values["jit"] = False
    config = recipe.Config(**values)
    _check_common(config)
    backends.check_compute(backend, config.precision, config.jit)
    return config, overrides


def _check_common(config: typing.Any) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(config, name) < 1:
            raise ZooError(f"`{name}` must be at least 1. Received: {getattr(config, name)}")
    if config.patience < 0:
        raise ZooError(f"`patience` must be 0 or more. Received: {config.patience}")
    if config.lr_patience < 0:
        raise ZooError(f"`lr_patience` must be 0 or more. Received: {config.lr_patience}")
    if config.lr_patience and not config.patience:
        raise ZooError(
            f"`lr_patience={config.lr_patience}` counts the epochs without a better validation score that "
            "early stopping tracks, and `patience` is 0 (never stop): set `patience` above it, or `lr_patience=0`."
        )
    if not 0 <= config.seed <= SEED_MAX:
        # NumPy and Keras seed their generators with 32 bits: a larger seed fails deep inside them.
        raise ZooError(f"`seed` must be between 0 and {SEED_MAX} (2**32 - 1). Received: {config.seed}")
    from zoo.training import finetune

    finetune.check(config)
