"""`python -m experiments.tables ablate|sweep|render ...`: the command first, then its own arguments (see its
`--help`)."""
from __future__ import annotations

import argparse
from collections.abc import Sequence

from experiments import tables
from experiments.tables import ablate, render, sweep

COMMANDS = {"ablate": ablate, "sweep": sweep, "render": render}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.tables", description=tables.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's; see its --help")
    args = parser.parse_args(argv)
    COMMANDS[args.command].main(args.arguments)


if __name__ == "__main__":
    main()
