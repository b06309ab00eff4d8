"""`python -m experiments.tables sweep SWEEP.yaml --grid [--out DIR] [--seeds ...] [any LightningCLI override]`: a wandb
sweep file of `experiments/sweeps/` run here, without a wandb server: every point of its grid, one after the other.

Each point is a row of a table as `ablate` runs it: a `lightning_video fit --test_after_fit true` of the
config named in the sweep's command (`--config FILE`) with the point's keys, then your overrides, logged to CSV in
`OUT/runs/`; then `OUT/table.md`, `OUT/table.csv` and a plot. Finished points are skipped when the command is run
again. Without `--grid`, the points are listed and nothing runs.

The grid is every combination of the parameters' `values` (a `value` stays fixed), whatever the file's `method`. A
distribution (`min`/`max`) has no points to take, so `--grid` asks for `values` instead: leave such a sweep to
`wandb agent`. The rest of the command (the wandb logger) is wandb's alone: the runs here log to CSV.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import yaml

from experiments.tables import provenance, results_index
from experiments.tables.runner import run_table
from experiments.tables.table import Row, Scale, Table

SWEEPS_DIR = Path(__file__).resolve().parents[1] / "sweeps"
ARGS = "${args}"


def load(path: Path) -> Table:
    """The sweep as a table with one scale, named after its base config: a row per point of the grid."""
    if not path.is_file():
        shipped = (str(shipped.relative_to(SWEEPS_DIR.parents[1])) for shipped in sorted(SWEEPS_DIR.glob("*.yaml")))
        raise ValueError(f"no sweep file {path}; shipped: {', '.join(shipped)}")
    sweep = yaml.safe_load(path.read_text()) or {}
    config = base_config(path, [str(part) for part in sweep.get("command") or []])
    choices = grid_choices(path, sweep.get("parameters"))
    points = [dict(zip(choices, values)) for values in itertools.product(*choices.values())]
    swept = [key for key, values in choices.items() if len(values) > 1]
    rows = [Row(setting, point) for setting, point in zip(settings(points, swept), points)]
    return Table(path.stem, sweep.get("description", path.stem), "", {Path(config).stem: Scale(config, rows, [0])})


def settings(points: list[dict], swept: list[str]) -> list[str]:
    """Each point's name: the last part of each swept key with its value (`lr=0.0003`; a dict value gives its own keys,
    `num_frames=4 test_clips=4`), or the full keys where two last parts are alike."""
    named = [[pair for key in swept for pair in _entries(key, point[key])] for point in points]
    keys = {key for pairs in named for key, _ in pairs}
    short = {key: key.rsplit(".", 1)[-1] for key in keys}
    if len(set(short.values())) < len(short):
        short = {key: key for key in keys}
    return [" ".join(f"{short[key]}={value}" for key, value in pairs) or "as configured" for pairs in named]


def _entries(key: str, value: Any) -> list[tuple[str, Any]]:
    return [(f"{key}.{sub}", item) for sub, item in value.items()] if isinstance(value, dict) else [(key, value)]


def base_config(path: Path, command: list[str]) -> str:
    """The config after `--config` in the sweep's command: the one every point changes."""
    if ARGS not in command:
        raise ValueError(f"{path}: the command has no `{ARGS}`, so wandb would run every point with the same "
                         f"settings: end the command with `- {ARGS}`")
    configs = [command[index + 1] for index, part in enumerate(command[:-1]) if part == "--config"]
    configs += [part.removeprefix("--config=") for part in command if part.startswith("--config=")]
    if not configs:
        raise ValueError(f"{path}: the command names no base config: add `--config CONFIG` after `fit` (e.g. "
                         "experiments/configs/synthetic_motion.yaml)")
    if not Path(configs[0]).is_file():
        raise ValueError(f"{path}: its base config {configs[0]} (the command's `--config`) does not exist; paths are "
                         "relative to the repository root, where both this command and `wandb agent` run")
    return configs[0]


def grid_choices(path: Path, parameters: Any) -> dict[str, list]:
    """Each parameter's values on the grid: its `values`, or its one `value`."""
    if not isinstance(parameters, dict) or not parameters:
        raise ValueError(f"{path}: no `parameters`; give each LightningCLI key to sweep (e.g. "
                         "model.optimizer.init_args.lr) its `values`")
    choices = {}
    for key, parameter in parameters.items():
        if isinstance(parameter, dict) and "parameters" in parameter:
            raise ValueError(f"{path}: {key!r} nests parameters; name each one by its full dotted LightningCLI key "
                             f"(e.g. {key}.NAME) instead")
        if isinstance(parameter, dict) and "values" in parameter:
            choices[key] = list(parameter["values"])
        elif isinstance(parameter, dict) and "value" in parameter:
            choices[key] = [parameter["value"]]
        else:
            raise ValueError(f"{path}: {key!r} has no `values` ({parameter}), so it has no grid points: list them "
                             "(`values: [...]`) for --grid, or run this sweep with `wandb agent`")
    return choices


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.tables sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path, help="a wandb sweep file, e.g. experiments/sweeps/lr.yaml")
    parser.add_argument("--grid", action="store_true", help="run every point of the grid (without it: list them)")
    parser.add_argument("--out", type=Path, help="output folder (default: sweeps/NAME)")
    results_index.add_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run each point with (default: 0)")
    args, overrides = parser.parse_known_args(argv)
    try:
        table = load(args.sweep)
    except ValueError as error:
        parser.error(str(error))
    scale_name, scale = next(iter(table.scales.items()))
    if not args.grid:
        print("\n".join(f"{row.setting}: {' '.join(row.arguments())}" for row in scale.rows))
        print(f"\n{len(scale.rows)} points on {scale.config}: add --grid to run them here, or "
              f"`wandb sweep {args.sweep}` and its `wandb agent`")
        return
    out = args.out or Path("sweeps") / table.name
    out.mkdir(parents=True, exist_ok=True)
    written = run_table(table, scale_name, args.seeds, overrides, out, index_dir=args.index,
                        command=provenance.tables_command("sweep", argv))
    print("\n".join(["", *(str(path) for path in written)]))
