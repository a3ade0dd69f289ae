"""Training: the recipe base class and the run every recipe goes through, one module per concern.

- `config`: `RecipeConfig` (options every recipe has) and building a config from options and `--set`.
- `recipe`: the `Recipe` base class (its hooks), `Data` (what a loader returns) and `Evaluation`.
- `catalog`: `@register_recipe`, discovery of `zoo.recipes`, lookup by name.
- `pipelines`: batching for `fit`, `evaluate` and `predict`: tf.data, or NumPy off TensorFlow (`from_arrays`,
  `Stream`).
- `devices`: device strategy and replicas; the only module that knows `tf.distribute`.
- `run`: `train` and `resume`, the run loop, `RunResult`.
- `description`: what a run logs about itself once (params, config file, datasets, its description).
- `outputs`: the checkpoint folder and the `--output` folder on disk.
- `baselines`: the trivial baseline of a run's task, and whether the network beat it (`zoo.learned`).
- `stopping`: early stopping on the recipe's metric, best weights restored, a warm-up guard.
- `budgets`: default epochs and patience that follow the training rows (`Recipe.budget`).
- `prechecks`: the user's data checked before TensorFlow, Keras and MLflow are imported.

Checkpoints, signals and the NaN guard are in `zoo.faults`; MLflow in `zoo.tracking`; figures in
`zoo.plots`. The names recipes and the CLI use are re-exported here: `training.Recipe`,
`training.train`, ...
"""

from zoo.training.baselines import Baseline
from zoo.training.budgets import Budget
from zoo.training.catalog import get_recipe, recipe_names, register_recipe, unregister_recipe
from zoo.training.config import RUN_OPTIONS, RecipeConfig, config_fields, make_config
from zoo.training.description import CONFIG_FILE, RunSummary
from zoo.training.outputs import save
from zoo.training.pipelines import Arrays, Stream, batch, from_arrays, tensorflow_input, training_batches
from zoo.training.recipe import Data, Evaluation, Recipe
from zoo.training.run import CHECKPOINT_TAG, RESUME_TAG, RunResult, build_model, resume, train

__all__ = [
    "Baseline",
    "Budget",
    "CHECKPOINT_TAG",
    "CONFIG_FILE",
    "RESUME_TAG",
    "RUN_OPTIONS",
    "Data",
    "Evaluation",
    "Recipe",
    "RecipeConfig",
    "RunResult",
    "RunSummary",
    "Arrays",
    "Stream",
    "batch",
    "build_model",
    "from_arrays",
    "config_fields",
    "get_recipe",
    "make_config",
    "recipe_names",
    "register_recipe",
    "resume",
    "save",
    "tensorflow_input",
    "train",
    "training_batches",
    "unregister_recipe",
]
