"""What a run writes about itself once: params, the resolved config file, structured hyperparameters,
datasets, and its name and description in the MLflow UI.

A new param, tag text or file that describes every run (rather than its results) belongs here.
"""

import dataclasses
import typing

from zoo import backends, registry, tracking
from zoo.training.config import RUN_OPTIONS

if typing.TYPE_CHECKING:
    from zoo.training.recipe import Data, Recipe

# The resolved config of a run, as an artifact: what `zoo train --resume` reads back.
CONFIG_FILE = "config.yaml"


@dataclasses.dataclass
class RunSummary:
    """What a run trained, where: its default name and the description shown in the MLflow UI."""

    recipe: str
    model: str
    dataset: str
    device: str
    # The caller's MLflow run this run is nested under (`zoo.tracking.nesting.describe`), if any.
    parent: str = ""

    def name_prefix(self) -> str:
        """`cnn-digits`, or `cnn-mlp_image-digits` when the recipe trains another model than its own."""
        parts = [self.recipe] + ([self.model] if self.model != self.recipe else []) + [self.dataset]
        # Short enough for the MLflow UI's name column (about 25 characters) with the `-3f2a` suffix.
        return "-".join(part.replace(" ", "_") for part in parts if part)[:20].rstrip("-_")

    def describe(self, metrics: dict[str, float] | None = None, preferred: str | None = None) -> str:
        """The run's description (`mlflow.note.content`): recipe, dataset, model, device, headline metric."""
        text = f"`zoo train {self.recipe}`: model `{self.model}` on `{self.dataset or 'its data'}`, {self.device}."
        metrics = metrics or {}
        metric = tracking.main_metric(metrics, preferred)
        if metric:
            text += f" {metric} = {metrics[metric]:.4g}."
        if self.parent:
            text += f" Nested under {self.parent}."
        return text


def log_run_description(
    recipe: "Recipe",
    config: typing.Any,
    model_name: str,
    hyperparameters: dict[str, typing.Any],
    overrides: dict[str, typing.Any],
    data: "Data",
    strategy_name: str,
    replicas: int,
) -> None:
    """Params, the config file, structured hyperparameters and datasets: once per run."""
    from zoo.tracking import mlflow

    resolved = registry.resolve(model_name, hyperparameters)
    # Structured hyperparameters (a feature spec) would flood the params table: files instead.
    structured = {k: v for k, v in resolved.items() if isinstance(v, dict)}
    resolved = {k: v for k, v in resolved.items() if k not in structured}
    # Options that do not apply to this data (`Recipe.unused_options`) would read as if they had shaped it.
    unused = set(recipe.unused_options(config))
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in RUN_OPTIONS and k not in unused}
    params.update({"recipe": recipe.name, "model": model_name, "strategy": strategy_name, "replicas": replicas})
    params["backend"] = backends.current()
    tracking.log_params(
        tracking.flatten(params)
        | tracking.flatten(resolved, prefix="model.")
        | tracking.flatten(data.spec, prefix="data.")
    )
    mlflow.log_dict(
        plain(
            {
                "recipe": recipe.name,
                "config": dataclasses.asdict(config),
                "model": model_name,
                "overrides": overrides,
                "hyperparameters": resolved | structured,
                "data": data.spec,
            }
        ),
        CONFIG_FILE,
    )
    for key, value in structured.items():
        mlflow.log_dict(plain(value), f"{key}.json")
    for dataset, context in data.mlflow_datasets:
        mlflow.log_input(dataset, context=context)


def plain(value: typing.Any) -> typing.Any:
    """Tuples to lists, numpy scalars to Python: what YAML and JSON can write plainly."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value
