"""Training defaults: what `zoo.get` compiles a model with, kept apart from its architecture.

A model family declares its training settings once, as a frozen dataclass that subclasses
`Training`: each field is a setting with a default, a type hint and a line in the class docstring's
`Args:` (the model card reads them the way it reads a builder's signature), and its `compile`
method is the family's one compile step. The builder builds the architecture and returns the model
uncompiled; `zoo.get(name, **overrides)` sends each override to the builder or to the training
defaults, then calls `compile`. So a card lists architecture hyperparameters and training defaults
apart, and the optimizer, loss and metrics of a family are written in one place.

Example:
    >>> @dataclasses.dataclass(frozen=True)
    ... class MyTraining(compiling.Adam):
    ...     '''Adam on sparse categorical cross-entropy, accuracy reported.'''
    ...
    ...     def compile(self, model, architecture):
    ...         model.compile(optimizer=self.optimizer(), loss="sparse_categorical_crossentropy")
"""

import dataclasses
import typing

from zoo.registry import check_range

if typing.TYPE_CHECKING:
    import keras


@dataclasses.dataclass(frozen=True)
class Training:
    """Base of the training defaults of a model family (subclass it as a frozen dataclass).

    The first line of a subclass's docstring says what the model is compiled as; the card shows it.
    """

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise `zoo.ZooError` naming a setting out of its range (called on construction)."""

    def compile(self, model: "keras.Model", architecture: typing.Mapping[str, typing.Any]) -> None:
        """Compile `model`, just built from `architecture` (the builder's resolved keywords), in place."""
        raise NotImplementedError(f"{type(self).__name__} must define compile(model, architecture).")


@dataclasses.dataclass(frozen=True)
class Adam(Training):
    """Adam.

    Args:
        learning_rate: Adam learning rate.
    """

    learning_rate: float = 1e-3

    def check(self) -> None:
        check_range("learning_rate", self.learning_rate, low=0.0, low_open=True)

    def optimizer(self, **options: typing.Any) -> "keras.optimizers.Optimizer":
        """A new Adam optimizer at `learning_rate`; `options` are further Adam arguments."""
        import keras

        return keras.optimizers.Adam(self.learning_rate, **options)
