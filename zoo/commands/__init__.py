"""Extra `zoo` subcommands: each module defines `add_parser(commands)` and is found automatically."""
