"""The model cards without building anything: `zoo/cards.json`, written from the registry.

`zoo list`, `zoo info` and `zoo.list()` / `zoo.info()` read the cards, which the registry builds
by importing every module of `zoo.models`, and those import Keras and TensorFlow (about 4 s
alone, 10 s on a busy machine) before a card can be printed. The index holds the same cards as
JSON with a fingerprint of the sources they come from (`zoo/models/`, `zoo/compiling.py`,
`zoo/registry.py`); while the fingerprint matches, the cards are read from it in milliseconds.
When the code has changed since the index was written, the registry is imported as before (slow,
still right), and `tests/test_registry.py` fails until the index is written again:

    python -m zoo.cards
"""

import ast
import hashlib
import json
import pathlib
import typing

if typing.TYPE_CHECKING:
    from zoo.registry import ModelCard

PACKAGE = pathlib.Path(__file__).resolve().parent
INDEX = PACKAGE / "cards.json"


def sources() -> list[pathlib.Path]:
    """The files whose content the cards come from: every folder of `zoo.models.__path__` (a
    program may add its own, as `tests/test_new_technique.py` does), the training defaults and the
    registry."""
    import zoo.models

    folders = [pathlib.Path(folder).resolve() for folder in zoo.models.__path__]
    files = [path for folder in folders for path in folder.rglob("*.py")]
    return sorted([*files, PACKAGE / "compiling.py", PACKAGE / "registry.py"])


def fingerprint() -> str:
    digest = hashlib.sha256()
    for path in sources():
        name = path.relative_to(PACKAGE).as_posix() if path.is_relative_to(PACKAGE) else str(path)
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def to_json(cards: typing.Iterable["ModelCard"]) -> dict[str, typing.Any]:
    entries = []
    for card in cards:
        entry = {
            field: getattr(card, field)
            for field in card.__dataclass_fields__
            if field not in ("architecture", "training")
        }
        for section in ("architecture", "training"):
            entry[section] = [
                {"name": hp.name, "default": repr(hp.default), "type": hp.type_name, "doc": hp.doc}
                for hp in getattr(card, section).values()
            ]
        entries.append(entry)
    return {"fingerprint": fingerprint(), "cards": entries}


def from_json(index: dict[str, typing.Any]) -> dict[str, "ModelCard"]:
    """{name: card}; a hyperparameter's `annotation` is its type's name (the type itself is the code's)."""
    from zoo.registry import Hyperparameter, ModelCard

    cards = {}
    for entry in index["cards"]:
        fields = dict(entry)
        for section in ("architecture", "training"):
            fields[section] = {
                hp["name"]: Hyperparameter(hp["name"], ast.literal_eval(hp["default"]), hp["type"], hp["doc"])
                for hp in entry[section]
            }
        for field in ("tasks", "backends"):
            fields[field] = tuple(fields[field])
        cards[entry["name"]] = ModelCard(**fields)
    return cards


def load() -> dict[str, "ModelCard"] | None:
    """The indexed cards by name, or None when the index is missing or older than the code."""
    try:
        index = json.loads(INDEX.read_text())
    except (OSError, ValueError):
        return None
    if index.get("fingerprint") != fingerprint():
        return None
    try:
        return from_json(index)
    except (KeyError, TypeError, ValueError, SyntaxError):
        return None


def write() -> pathlib.Path:
    """Write the index from the registry (imports every model module, hence Keras)."""
    from zoo import registry

    cards = registry.list_models(indexed=False)
    INDEX.write_text(json.dumps(to_json(cards), indent=1) + "\n")
    return INDEX


if __name__ == "__main__":
    print(f"wrote {write()}")
