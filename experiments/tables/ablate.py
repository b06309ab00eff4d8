"""`python -m experiments.tables ablate NAME --scale synthetic|paper|... [--out DIR] [any LightningCLI override]`: one
paper ablation table, end to end. Tables are defined in `experiments/ablations/NAME.yaml`.

Every row is a `lightning_video fit --test_after_fit true` run of the scale's config with the row's keys, and then
your overrides (e.g. `--data.root /data/k400 --trainer.devices 8`). Writes the table's results index file
(`OUT/NAME_SCALE.json`, and into `--index DIR` too), then `OUT/table.md`, `OUT/table.csv` and `OUT/*.png` rendered from
it; finished rows are kept and skipped when the command is run again.
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import yaml

from experiments.tables import provenance, results_index
from experiments.tables.runner import run_table
from experiments.tables.table import Row, Scale, Table

ABLATIONS_DIR = Path(__file__).resolve().parents[1] / "ablations"


def available() -> list[str]:
    return sorted(path.stem for path in ABLATIONS_DIR.glob("*.yaml"))


def load(name: str) -> Table:
    """The table `experiments/ablations/NAME.yaml`, or the YAML file `name` (a table of your own), mmaction2-style: a
    row holds only what differs from its base config. A scale may give its own `rows` and `seeds`; otherwise it uses
    the file's (seeds default to [0]). A scale's `set` holds keys every one of its rows sets (a row's own value
    wins)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else ABLATIONS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(available())}, or a YAML file's path")
    spec = yaml.safe_load(path.read_text())
    scales = {}
    for scale_name, scale in spec["scales"].items():
        rows = [Row(**row) for row in scale.get("rows", spec.get("rows", []))]
        settings = [row.setting for row in rows]
        if len(set(settings)) != len(settings):
            raise ValueError(f"{path}: scale {scale_name!r} repeats a setting name: {settings}")
        rows = [replace(row, set={**scale.get("set", {}), **row.set}) for row in rows]
        scales[scale_name] = Scale(scale["config"], rows, list(scale.get("seeds", spec.get("seeds", [0]))),
                                   [Row(**step) for step in scale.get("pretrain", [])], scale.get("jobs", 1))
    return Table(path.stem, spec["title"], spec.get("paper_source", ""), scales)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.tables ablate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"{', '.join(available())}, or the path of a table's YAML file")
    parser.add_argument("--scale", required=True, help="synthetic, paper, or another scale the table names")
    parser.add_argument("--out", type=Path, help="output folder (default: ablations/NAME_SCALE)")
    results_index.add_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run each row with (default: the table's)")
    parser.add_argument("--weights", nargs="+", default=[], metavar="NAME=WEIGHTS", type=weight,
                        help="weights (a file or a name, as --model.pretrained takes) a table's rows name as ${NAME}, "
                             "e.g. IN21K=timm/vit_base_patch16_224.augreg_in21k (pretraining)")
    parser.add_argument("--jobs", type=int, help="rows to run at once, each on its share of the CPU cores "
                        "(default: the scale's; small CPU rows finish sooner side by side than one after another)")
    args, overrides = parser.parse_known_args(argv)
    try:
        table = load(args.name)
        table.scale(args.scale)  # checked before any run starts
    except ValueError as error:
        parser.error(str(error))
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give the number of rows to run at once, 1 or more")
    out = args.out or Path("ablations") / f"{Path(args.name).stem}_{args.scale}"
    out.mkdir(parents=True, exist_ok=True)
    written = run_table(table, args.scale, args.seeds, overrides, out, dict(args.weights), args.jobs, args.index,
                        provenance.tables_command("ablate", argv))
    print("\n".join(["", *(str(path) for path in written)]))


def weight(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=WEIGHTS, e.g. "
                                         "IN21K=timm/vit_base_patch16_224.augreg_in21k")
    return name, path
