"""`zoo train --config FILE` and `zoo train --like RUN_ID` without the recipe's name on the command line.

The recipe's options (`--seed 3`) belong to its subcommand, so the command line reads
`zoo train --like RUN_ID RECIPE --seed 3`; the user writes `zoo train --like RUN_ID --seed 3` and
the recipe named by the file or the run is put in its place before the command line is parsed.
"""

_REPRODUCE = ("--config", "--like")


def with_recipe(argv: list[str]) -> list[str]:
    """`argv` with `--config`/`--like` moved before the recipe, and the recipe they name inserted
    where `zoo train` expects it when the command line does not name it.

    Raises:
        ZooError: for a file or run that cannot be read (as `zoo.train` would).
    """
    if not argv or argv[0] != "train":
        return argv
    given: dict[str, str] = {}
    rest: list[str] = []
    index = 1
    while index < len(argv):
        flag, sep, value = argv[index].partition("=")
        if flag in _REPRODUCE and (sep or index + 1 < len(argv)):
            given[flag] = value if sep else argv[index + 1]
            index += 1 if sep else 2
            continue
        rest.append(argv[index])
        index += 1
    if not given:
        return argv
    # What comes before the recipe: `zoo train`'s own options (--resume, --tracking-uri, -h).
    prefix: list[str] = []
    while rest and rest[0].partition("=")[0] in ("--resume", "--tracking-uri", "-h", "--help"):
        flag, sep, _ = rest[0].partition("=")
        width = 1 if sep or flag in ("-h", "--help") else 2
        prefix, rest = prefix + rest[:width], rest[width:]
    pairs = [part for flag, value in given.items() for part in (flag, value)]
    named = bool(rest) and not rest[0].startswith("-")
    if named or any(word.split("=")[0] in ("--resume", "-h", "--help") for word in prefix):
        return ["train", *pairs, *prefix, *rest]
    from zoo.training import reproduce

    uri = _value(prefix, "--tracking-uri")
    if "--config" in given:
        recipe = reproduce.from_file(given["--config"]).recipe
    else:
        recipe = reproduce.from_run(given["--like"], uri).recipe
    # The recipe's own --tracking-uri is the one a run uses (`zoo train`'s is for --resume).
    return ["train", *pairs, recipe, *prefix, *rest]


def _value(words: list[str], flag: str) -> str | None:
    for index, word in enumerate(words):
        name, sep, value = word.partition("=")
        if name == flag:
            return value if sep else (words[index + 1] if index + 1 < len(words) else None)
    return None
