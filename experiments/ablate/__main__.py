"""`python -m experiments.ablate NAME --preset synthetic|paper|... [--out DIR] [any LightningCLI override]`: one paper
ablation table, end to end. Tables are defined in `experiments/ablations/NAME.yaml`; `cost` needs no dataset.

Every row is a `lightning_video fit --test_after_fit true` run of the preset's config with the row's keys, and then
your overrides (e.g. `--data.root /data/k400 --trainer.devices 8`). Writes `OUT/table.md`, `OUT/table.csv` and
`OUT/*.png`; finished rows are kept and skipped when the command is run again.
"""
from __future__ import annotations

import argparse
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments.ablate import cost, report, spec
from experiments.ablate.runs import RowResult, finished, run_row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.ablate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help=f"{', '.join(spec.available())}, {cost.NAME}, or the path of a table's YAML file")
    parser.add_argument("--preset", required=True, help="synthetic, paper, or another preset the table names")
    parser.add_argument("--out", type=Path, help="output folder (default: ablations/NAME_PRESET)")
    parser.add_argument("--seeds", type=int, nargs="+", help="seeds to run each row with (default: the table's)")
    parser.add_argument("--weights", nargs="+", default=[], metavar="NAME=PATH", type=weight,
                        help="weights a table's rows name as ${NAME}, e.g. IN21K=vit_b16_in21k.npz (pretraining)")
    parser.add_argument("--jobs", type=int, help="rows to run at once, each on its share of the CPU cores "
                        "(default: the preset's; small CPU rows finish sooner side by side than one after another)")
    cost.add_arguments(parser)
    args, overrides = parser.parse_known_args(argv)
    try:
        table = None if args.name == cost.NAME else spec.load(args.name)
        if table is not None:
            table.preset(args.preset)  # checked before any run starts
        elif args.preset not in cost.PRESETS:
            raise ValueError(f"{cost.NAME} has no preset {args.preset!r}; valid: {', '.join(cost.PRESETS)}")
    except ValueError as error:
        parser.error(str(error))
    if args.jobs is not None and args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: give the number of rows to run at once, 1 or more")
    if table is None and overrides:
        parser.error(f"cost trains nothing, so it takes no LightningCLI overrides; got {' '.join(overrides)}")
    out = args.out or Path("ablations") / f"{Path(args.name).stem}_{args.preset}"
    out.mkdir(parents=True, exist_ok=True)
    if table is None:
        written = cost.run(args.preset, args, out)
    else:
        written = run_table(table, args.preset, args.seeds, overrides, out, dict(args.weights), args.jobs)
    print("\n".join(["", *(str(path) for path in written)]))


def weight(text: str) -> tuple[str, str]:
    name, separator, path = text.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=PATH, e.g. IN21K=vit_b16_in21k.npz")
    return name, path


def run_table(ablation: spec.Ablation, preset_name: str, seeds: list[int] | None, overrides: list[str], out: Path,
              weights: dict[str, str] | None = None, jobs: int | None = None) -> list[Path]:
    """Pretraining runs first (seed 0; your overrides apply to them too, so their model matches the rows'), then
    every row with every seed, `jobs` at a time."""
    preset = ablation.preset(preset_name)
    seeds = seeds or preset.seeds
    jobs = jobs or preset.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    variables = dict(weights or {})
    pretrained = []
    for step in preset.pretrain:
        pretrained.append(_run_or_reuse(ablation.name, step.config or preset.config, step, 0, overrides, out))
        variables[step.setting] = str(Path(pretrained[-1].log_dir) / "checkpoints" / "last.ckpt")
    with ThreadPoolExecutor(jobs) as pool:
        runs = [pool.submit(_run_or_reuse, ablation.name, preset.config, row.filled(variables), seed, overrides, out,
                            threads) for row in preset.rows for seed in seeds]
        results = pretrained + [run.result() for run in runs]
    return report.write(ablation, preset_name, seeds, report.summarise(preset, results), out)


def _run_or_reuse(table: str, config: str, row: spec.Row, seed: int, overrides: list[str], out: Path,
                  threads: int | None = None) -> RowResult:
    result = finished(out, row.setting, seed)
    if result is None:
        print(f"{table}: {row.setting} (seed {seed}) ...", flush=True)
        result = run_row(config, row, seed, overrides, out, threads)
        state = f"{result.wall_s / 60:.1f} min"
    else:
        state = "finished earlier"
    print(f"{table}: {row.setting} (seed {seed}): top-1 {result.top1:.3f}, {state}", flush=True)
    return result


if __name__ == "__main__":
    main()
