"""The model registry: models register where they are defined, `get` builds and compiles them.

Each model is a builder function with keyword-only architecture hyperparameters, decorated with
`@register(..., training=...)`. The registry reads the hyperparameters, their defaults and their
types from the builder's signature and their descriptions from its docstring, and the training
defaults (learning rate, ...) from the family's `zoo.compiling.Training` dataclass the same way, so
the model card never drifts from the code. `get` builds the architecture, then compiles it once,
through the training defaults.
"""

import dataclasses
import importlib
import inspect
import pkgutil
import re
import types
import typing

from zoo.errors import ZooError, closest

if typing.TYPE_CHECKING:
    import keras

_Builder = typing.TypeVar("_Builder", bound=typing.Callable[..., typing.Any])

_REGISTRY: dict[str, "_Entry"] = {}
# Cards and listings fit a 100-column terminal.
WIDTH = 100
_DISCOVERED = False


@dataclasses.dataclass(frozen=True)
class Hyperparameter:
    """One keyword of a model builder: its default, its type and what it does."""

    name: str
    default: typing.Any
    annotation: typing.Any
    doc: str = ""

    @property
    def type_name(self) -> str:
        return _type_name(self.annotation)


@dataclasses.dataclass(frozen=True, repr=False)
class ModelCard:
    """What a registered model is for, how to call it, and which recipe trains it.

    `architecture` holds the builder's hyperparameters (what the network is); `training` the
    defaults it is compiled with (optimizer settings, what `fit` does), described by `compiled_as`.
    `hyperparameters` is both together: every keyword `zoo.get` and `--set` take.
    """

    name: str
    technique: str
    tasks: tuple[str, ...]
    summary: str
    when_to_use: str
    inputs: str
    outputs: str
    recipe: str
    architecture: dict[str, Hyperparameter]
    training: dict[str, Hyperparameter] = dataclasses.field(default_factory=dict)
    # What `zoo.get` compiles the model as: optimizer, loss, metrics (the training class's summary).
    compiled_as: str = ""
    # The registered model this one is a part of when its recipe trains it ("" when trained alone).
    part_of: str = ""
    # {hyperparameter: spec} that `zoo tune` searches when no --space is given (see zoo.tuning).
    search_space: dict[str, str] = dataclasses.field(default_factory=dict)
    # The formats `zoo export` writes for it (each file is checked by its own runtime).
    exports: str = ""
    # The Keras backends it runs on, each checked by tests/test_backends.py.
    backends: tuple[str, ...] = ("tensorflow", "jax", "torch")

    @property
    def hyperparameters(self) -> dict[str, Hyperparameter]:
        """Architecture hyperparameters and training defaults together: the keys `zoo.get` takes."""
        return {**self.architecture, **self.training}

    def defaults(self) -> dict[str, typing.Any]:
        return {name: hp.default for name, hp in self.hyperparameters.items()}

    def to_dict(self) -> dict[str, typing.Any]:
        card = dataclasses.asdict(self)
        for section in ("architecture", "training"):
            card[section] = {
                name: {"default": hp.default, "type": hp.type_name, "doc": hp.doc}
                for name, hp in getattr(self, section).items()
            }
        return card

    def to_markdown(self) -> str:
        """The card as Markdown: a heading, its fields, and one table per section of hyperparameters."""
        lines = [
            f"## {self.name}",
            "",
            f"{self.summary}",
            "",
            f"- Technique: {self.technique}; tasks: {', '.join(self.tasks)}",
            f"- When to use: {self.when_to_use}",
            f"- Inputs: {self.inputs}",
            f"- Outputs: {self.outputs}",
            f"- Trained by: {self._trained_by()}",
        ]
        if self.exports:
            lines.append(f"- Export: {self.exports}")
        for title, section in (("Architecture", self.architecture), ("Training defaults", self.training)):
            if not section:
                continue
            lines += ["", f"### {title}", ""]
            if section is self.training and self.compiled_as:
                lines += [f"Compiled as: {self.compiled_as}", ""]
            lines += ["| name | type | default | description |", "|---|---|---|---|"]
            for hp in section.values():
                # A bare "|" (in `'a' | 'b'`) would end the table cell.
                kind = hp.type_name.replace("|", "\\|")
                lines.append(f"| `{hp.name}` | {kind} | `{hp.default!r}` | {hp.doc} |")
        return "\n".join(lines)

    def _trained_by(self) -> str:
        if self.part_of:
            return (
                f"zoo train {self.recipe}, as part of the `{self.part_of}` model; no recipe trains it alone "
                "(zoo.get compiles it as below, for your own fit)"
            )
        return f"zoo train {self.recipe}"

    def __repr__(self) -> str:
        # What a notebook shows for `zoo.info("cnn")`: the card itself, wrapped at 100 columns.
        return self.format()

    def line(self, width: int = WIDTH) -> str:
        """One line: name, technique, tasks and summary (what `zoo list` and `zoo.list()` show)."""
        tasks = ",".join(self.tasks)
        tasks = tasks if len(tasks) <= 28 else tasks[:25] + "..."
        text = f"{self.name:<14} {self.technique:<5} {tasks:<28} {self.summary}"
        return text if len(text) <= width else text[: width - 3].rstrip() + "..."

    def format(self, width: int = WIDTH) -> str:
        """The card as text, every line wrapped at `width` columns (`zoo info`)."""
        return "\n".join(_wrap(line, width) for line in self._lines())

    def _lines(self) -> list[str]:
        lines = [
            f"{self.name}  ({self.technique}; tasks: {', '.join(self.tasks)})",
            f"  {self.summary}",
            f"  When to use: {self.when_to_use}",
            f"  Inputs:  {self.inputs}",
            f"  Outputs: {self.outputs}",
            f"  Default recipe: {self._trained_by()}",
            "  Architecture (override with zoo.get(name, key=value) or --set key=value):",
        ]
        lines.extend(_format_section(self.architecture))
        if self.training:
            lines.append("  Training defaults (overridden the same way):")
            if self.compiled_as:
                lines.append(f"    compiled as: {self.compiled_as}")
            lines.extend(_format_section(self.training))
        if self.search_space:
            lines.append(f"  Default search space (zoo tune {self.recipe}; override with --space key=spec):")
            lines.extend(f"    {key}={spec}" for key, spec in self.search_space.items())
        if self.exports:
            lines.append(f"  Export (zoo export --format ...): {self.exports}")
        lines.append(f"  Keras backends (--backend, checked by tests/test_backends.py): {', '.join(self.backends)}")
        return lines


def _wrap(line: str, width: int) -> str:
    """`line` wrapped at `width`, continuation lines indented two spaces past the line's own indent."""
    import textwrap

    if len(line) <= width:
        return line
    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(
        line.strip(), width, initial_indent=indent, subsequent_indent=indent + "    ", break_on_hyphens=False
    )


class CardList(list):
    """The list `zoo.list()` returns: a plain list of `ModelCard`s whose repr is one line per model."""

    def __repr__(self) -> str:
        return "\n".join(card.line() for card in self) if self else "[]"


def _format_section(section: dict[str, Hyperparameter]) -> list[str]:
    return [f"    {hp.name}: {hp.type_name} = {hp.default!r}  {hp.doc}".rstrip() for hp in section.values()]


@dataclasses.dataclass(frozen=True)
class _Entry:
    builder: typing.Callable[..., typing.Any]
    card: ModelCard
    # The family's training defaults (a `zoo.compiling.Training` dataclass); None: the builder
    # returns the model compiled itself.
    training: type | None = None


def register(
    name: str,
    *,
    technique: str,
    tasks: typing.Iterable[str],
    summary: str,
    when_to_use: str,
    inputs: str,
    outputs: str,
    recipe: str,
    training: type | None = None,
    part_of: str = "",
    search_space: dict[str, str] | None = None,
    exports: str = "",
    backends: typing.Iterable[str] = ("tensorflow", "jax", "torch"),
) -> typing.Callable[[_Builder], _Builder]:
    """Register a model builder under `name`.

    Args:
        name: registry name, as given to `zoo.get`.
        technique: the family (`mlp`, `cnn`, `rnn`, `gan`, `rbm`, ...), used by `zoo.list`.
        tasks: the tasks the model serves (`binary`, `multiclass`, `regression`, ...).
        summary: one sentence: what the model is.
        when_to_use: one sentence: when to pick it over its neighbours.
        inputs: what the model takes.
        outputs: what the model returns.
        recipe: the recipe that trains it (`zoo train RECIPE`).
        training: the family's training defaults, a frozen dataclass subclassing
            `zoo.compiling.Training`: its fields are the training settings shown apart on the card,
            and its `compile(model, architecture)` compiles what the builder returned. The builder
            then returns the model uncompiled and takes architecture hyperparameters only.
        part_of: the registered model that contains this one when `recipe` trains it (the GAN's
            generator and discriminator are trained inside `gan`); "" when the recipe trains it alone.
        search_space: {hyperparameter: spec} searched by `zoo tune` without --space, in the
            spec syntax of `zoo.tuning.parse_spec` (`log:1e-4..1e-2`, `0..0.5`, `int:16..256`,
            `choice:16,32|32,64`); a registry test checks it against the hyperparameters.
        exports: the formats `zoo export` writes for it (tf_saved_model, onnx, litert) and what
            it exports (the inference part), or why a format is refused.
        backends: the Keras backends it builds, trains, evaluates and saves on (all three by
            default); tests/test_backends.py checks each model on each backend it lists.

    Returns:
        A decorator that records the builder and returns it unchanged.

    Raises:
        ValueError: if `name` is already registered.
        TypeError: if a hyperparameter is not keyword-only with a default, or is both an
            architecture and a training key.
    """

    def decorator(builder: _Builder) -> _Builder:
        if name in _REGISTRY:
            raise ValueError(f"An entry is already registered under the name '{name}'.")
        architecture = _hyperparameters_of(builder)
        settings = _training_of(training) if training is not None else {}
        both = sorted(set(architecture) & set(settings))
        if both:
            raise TypeError(f"{builder.__name__}: {', '.join(both)} are both architecture and training keys.")
        card = ModelCard(
            name=name,
            technique=technique,
            tasks=tuple(tasks),
            summary=summary,
            when_to_use=when_to_use,
            inputs=inputs,
            outputs=outputs,
            recipe=recipe,
            architecture=architecture,
            training=settings,
            compiled_as=_summary_line(training.__doc__ or "") if training is not None else "",
            part_of=part_of,
            search_space=dict(search_space or {}),
            exports=exports,
            backends=tuple(backends),
        )
        _REGISTRY[name] = _Entry(builder, card, training)
        return builder

    return decorator


def _discover() -> None:
    """Import every module of `zoo.models` once, so that their decorators fill the registry."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    import zoo.models

    for module in pkgutil.iter_modules(zoo.models.__path__):
        importlib.import_module(f"zoo.models.{module.name}")
    _DISCOVERED = True


def _entry(name: str) -> _Entry:
    _discover()
    if name not in _REGISTRY:
        raise ZooError(
            f"Unknown model '{name}'.{closest(name, _REGISTRY)} "
            f"Registered models: {', '.join(sorted(_REGISTRY))} (see `zoo list`)."
        )
    return _REGISTRY[name]


def names() -> list[str]:
    """Return the sorted registered names."""
    _discover()
    return sorted(_REGISTRY)


def _cards(indexed: bool = True) -> dict[str, ModelCard]:
    """{name: card}: from `zoo/cards.json` while it matches the code (no Keras import), else the registry."""
    if indexed and not _DISCOVERED:
        from zoo import cards

        index = cards.load()
        if index is not None:
            # Models registered from outside zoo.models (a user's own) are in the registry only.
            return {**index, **{name: entry.card for name, entry in _REGISTRY.items()}}
    _discover()
    return {name: entry.card for name, entry in _REGISTRY.items()}


def info(name: str, indexed: bool = False) -> ModelCard:
    """Return the `ModelCard` of a registered model.

    Args:
        name: a registered name.
        indexed: read `zoo/cards.json` when it matches the code (no Keras import; `zoo info`
            does). Its hyperparameters name their types as text (`annotation` is the type's name),
            so code that parses values with `coerce` asks for the registry's card (the default).

    Raises:
        ZooError: if `name` is not registered; the message lists the registered names.
    """
    if not indexed:
        return _entry(name).card
    cards = _cards()
    if name not in cards:
        return _entry(name).card  # raises the error that lists the registered names
    return cards[name]


def list_models(technique: str | None = None, task: str | None = None, indexed: bool = True) -> list[ModelCard]:
    """Return the cards of the registered models, optionally filtered by technique and task.

    Args:
        technique: only cards of this technique.
        task: only cards that list this task.
        indexed: read `zoo/cards.json` when it matches the code (no Keras import; the
            hyperparameters' `annotation` is then the type's name); False: the registry.

    Returns:
        A `CardList` (a list; its repr is one line per model).

    Example:
        >>> [card.name for card in zoo.list(technique="mlp")]
        ['mlp']
    """
    by_name = _cards(indexed)
    cards = CardList(by_name[name] for name in sorted(by_name))
    if technique is not None:
        cards = CardList(card for card in cards if card.technique == technique)
    if task is not None:
        cards = CardList(card for card in cards if task in card.tasks)
    return cards


def resolve(name: str, overrides: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """Check `overrides` against the card of `name`; return the full hyperparameter dict.

    String values (from the command line) are parsed into the hyperparameter's type; other
    values are checked against it.

    Raises:
        ZooError: for an unknown name, an unknown key, or a value of the wrong type.
    """
    card = _entry(name).card
    resolved = card.defaults()
    for key, value in overrides.items():
        if key not in card.hyperparameters:
            raise ZooError(
                f"Unknown hyperparameter '{key}' for model '{name}'.{closest(key, card.hyperparameters)} "
                f"Valid keys: {', '.join(card.hyperparameters)}."
            )
        resolved[key] = coerce(key, value, card.hyperparameters[key].annotation)
    return resolved


def get(name: str, **overrides: typing.Any) -> "keras.Model":
    """Build a registered model, compiled and ready for `fit`.

    Args:
        name: a registered name (see `zoo.list()`).
        **overrides: hyperparameters that replace the card's defaults.

    Returns:
        A built and compiled `keras.Model`.

    Raises:
        ZooError: for an unknown name or hyperparameter, or a value of the wrong type or range.

    Example:
        >>> model = zoo.get("mlp", hidden_units=(16,), dropout=0.0)
    """
    params = resolve(name, overrides)
    entry = _entry(name)
    architecture = {key: value for key, value in params.items() if key in entry.card.architecture}
    if entry.training is None:
        return entry.builder(**architecture)
    # The training settings are checked first: a bad learning rate fails before a network is built.
    training = entry.training(**{key: value for key, value in params.items() if key in entry.card.training})
    model = entry.builder(**architecture)
    training.compile(model, architecture)
    return model


# === Types ===


def _hyperparameters_of(builder: typing.Callable[..., typing.Any]) -> dict[str, Hyperparameter]:
    hints = typing.get_type_hints(builder)
    docs = _arg_docs(builder.__doc__ or "")
    hyperparameters = {}
    for param in inspect.signature(builder).parameters.values():
        if param.kind is not inspect.Parameter.KEYWORD_ONLY or param.default is inspect.Parameter.empty:
            raise TypeError(f"{builder.__name__}: hyperparameter '{param.name}' must be keyword-only with a default.")
        hyperparameters[param.name] = Hyperparameter(
            param.name, param.default, hints.get(param.name, typing.Any), docs.get(param.name, "")
        )
    return hyperparameters


def _training_of(training: type) -> dict[str, Hyperparameter]:
    """The fields of a training-defaults dataclass, documented by the `Args:` of its classes."""
    if not dataclasses.is_dataclass(training):
        raise TypeError(f"training={training!r} must be a dataclass subclassing zoo.compiling.Training.")
    hints = typing.get_type_hints(training)
    docs: dict[str, str] = {}
    for klass in reversed(training.__mro__):
        docs.update(_arg_docs(klass.__doc__ or ""))
    settings = {}
    for field in dataclasses.fields(training):
        if field.default is dataclasses.MISSING:
            raise TypeError(f"{training.__name__}: training setting '{field.name}' needs a default.")
        settings[field.name] = Hyperparameter(
            field.name, field.default, hints.get(field.name, typing.Any), docs.get(field.name, "")
        )
    return settings


def _summary_line(docstring: str) -> str:
    return " ".join(docstring.strip().split("\n\n")[0].split())


def _arg_docs(docstring: str) -> dict[str, str]:
    """Parse the `Args:` section of a Google-style docstring into {name: first sentence}."""
    section = re.split(r"\n\s*Args:\s*\n", docstring, maxsplit=1)
    if len(section) < 2:
        return {}
    docs: dict[str, str] = {}
    current = None
    for line in section[1].splitlines():
        if re.match(r"\s*(Returns|Raises|Example|Examples|Yields):", line):
            break
        match = re.match(r"\s{4,8}(\w+):\s*(.*)", line)
        if match and len(line) - len(line.lstrip()) <= 8:
            current = match.group(1)
            docs[current] = match.group(2).strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return docs


def _type_name(annotation: typing.Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is tuple:
        return f"tuple[{_type_name(args[0])}, ...]" if args else "tuple"
    if annotation is type(None):
        return "None"
    return getattr(annotation, "__name__", str(annotation))


def coerce(key: str, value: typing.Any, annotation: typing.Any) -> typing.Any:
    """Parse (if `value` is a string) and check `value` against `annotation`.

    Raises:
        ZooError: naming the key, the value received and the expected form.
    """
    ok, result = _coerce(value, annotation)
    if not ok:
        raise ZooError(
            f"Bad value for '{key}': expected {_type_name(annotation)}{_example(annotation)}. Received: {key}={value!r}"
        )
    return result


def _example(annotation: typing.Any) -> str:
    if typing.get_origin(annotation) is tuple:
        return " (comma-separated, e.g. 64,32)"
    return ""


def _coerce(value: typing.Any, annotation: typing.Any) -> tuple[bool, typing.Any]:
    if annotation is typing.Any:
        return True, value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none" and type(None) in args):
            return (type(None) in args), None
        for arg in args:
            if arg is type(None):
                continue
            ok, result = _coerce(value, arg)
            if ok:
                return True, result
        return False, None
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value):
                return True, choice
        return False, None
    if origin is tuple or annotation is tuple:
        item_type = args[0] if args else typing.Any
        if isinstance(value, str):
            value = [part for part in value.replace(" ", "").split(",") if part != ""]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            return False, None
        items = []
        for item in value:
            ok, parsed = _coerce(item, item_type)
            if not ok:
                return False, None
            items.append(parsed)
        return True, tuple(items)
    if annotation is bool:
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return True, value.lower() in ("true", "1", "yes")
        return False, None
    if annotation is int:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, int):
            return True, value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return True, int(value)
        if hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu":
            return True, int(value)
        return False, None
    if annotation is float:
        if isinstance(value, bool):
            return False, None
        if isinstance(value, (int, float)):
            return True, float(value)
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, None
        return False, None
    if annotation is str:
        return (isinstance(value, str)), value
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    if origin is not None and isinstance(origin, type):
        return isinstance(value, origin), value
    return True, value


def check_range(
    name: str,
    value: typing.Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise a `ZooError` naming `name` and its range unless `low <= value <= high`."""
    values = value if isinstance(value, (tuple, list)) else (value,)
    for item in values:
        too_low = low is not None and (item <= low if low_open else item < low)
        too_high = high is not None and (item >= high if high_open else item > high)
        if too_low or too_high:
            left = "(" if low_open else "["
            right = ")" if high_open else "]"
            lo = "-inf" if low is None else low
            hi = "inf" if high is None else high
            raise ZooError(f"'{name}' must be in {left}{lo}, {hi}{right}. Received: {name}={value!r}")
