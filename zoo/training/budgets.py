"""Training budgets that follow the data: epochs and patience from the training rows.

A fixed epoch count fits the data a recipe was tuned on and few others: 20 epochs of 4,000 digit
lines are 2,500 optimizer steps, 20 epochs of 1,050 captcha lines only 660, where keras.io's captcha
example takes 6,500. A recipe states its budget in optimizer steps (`Budget`), and a run whose user
gave no `--epochs` / `--patience` trains for as many epochs as those steps need at the data's
size, with a patience that is a share of them.

Explicit `epochs` / `patience` always win; the choice is printed once and logged (`budget` param).
"""

import dataclasses
import math
import sys
import typing


@dataclasses.dataclass(frozen=True)
class Budget:
    """A recipe's default training budget, in optimizer steps.

    Attributes:
        steps: the optimizer steps a default run takes at least (epochs are rounded up to cover them).
        patience_share: patience as a share of those epochs (at least the config's default patience).
        max_epochs: the most epochs a default run takes, however small the data.
    """

    steps: int
    patience_share: float = 0.25
    max_epochs: int = 200

    def choose(self, rows: int, batch_size: int, epochs: int, patience: int) -> tuple[int, int]:
        """(epochs, patience) for `rows` training rows: never fewer than the config's defaults."""
        per_epoch = max(1, math.ceil(rows / batch_size))
        chosen = min(self.max_epochs, max(epochs, math.ceil(self.steps / per_epoch)))
        return chosen, self.patience_for(chosen, patience)

    def patience_for(self, epochs: int, patience: int) -> int:
        """A share of `epochs`, at least the config's default `patience` (0 stays 0: never stop)."""
        return max(patience, round(epochs * self.patience_share)) if patience else 0


def apply(
    budget: Budget | None, config: typing.Any, rows: int, explicit: typing.Collection[str], what: str
) -> tuple[typing.Any, str | None]:
    """The config with the budget's epochs and patience where the user set neither.

    Args:
        budget: the recipe's `Recipe.budget` (None: the config's epochs and patience stand).
        config: the resolved config.
        rows: training rows.
        explicit: the options the user gave (`epochs`, `patience` among them win).
        what: the recipe's name, for the printed line.

    Returns:
        (config, a one-line description of the choice, or None when nothing changed).
    """
    if budget is None or rows < 1:
        return config, None
    epochs, patience = budget.choose(rows, config.batch_size, config.epochs, config.patience)
    if "epochs" in explicit:
        epochs = config.epochs
        patience = budget.patience_for(epochs, config.patience)
    if "patience" in explicit:
        patience = config.patience
    if (epochs, patience) == (config.epochs, config.patience):
        return config, None
    per_epoch = max(1, math.ceil(rows / config.batch_size))
    text = (
        f"{epochs} epochs of {per_epoch} steps (at least {budget.steps} optimizer steps for {rows} training rows), "
        f"patience {patience}"
    )
    print(f"zoo: {what}: {text}; --epochs and --patience override it.", file=sys.stderr, flush=True)
    return dataclasses.replace(config, epochs=epochs, patience=patience), text
