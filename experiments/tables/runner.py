"""Run a table: its pretraining runs, then every row with every seed, each as its own `fit` process
(`fit_process`), then the table's files (`report`). Both `ablate` and `sweep` run their tables through here."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments.tables import report
from experiments.tables.fit_process import RowResult, finished, run_row
from experiments.tables.table import Row, Table


def run_table(table: Table, scale_name: str, seeds: list[int] | None, overrides: list[str], out: Path,
              weights: dict[str, str] | None = None, jobs: int | None = None) -> list[Path]:
    """Pretraining runs first (seed 0; your overrides apply to them too, so their model matches the rows'), then
    every row with every seed, `jobs` at a time. Returns the files written: `OUT/table.md`, `table.csv`, the plot."""
    scale = table.scale(scale_name)
    seeds = seeds or scale.seeds
    jobs = jobs or scale.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    variables = dict(weights or {})
    pretrained = []
    for step in scale.pretrain:
        pretrained.append(_run_or_reuse(table.name, step.config or scale.config, step, 0, overrides, out))
        variables[step.setting] = str(Path(pretrained[-1].log_dir) / "checkpoints" / "last.ckpt")
    with ThreadPoolExecutor(jobs) as pool:
        runs = [pool.submit(_run_or_reuse, table.name, scale.config, row.filled(variables), seed, overrides, out,
                            threads) for row in scale.rows for seed in seeds]
        results = pretrained + [run.result() for run in runs]
    return report.write(table, scale_name, seeds, report.summarise(scale, results), out)


def _run_or_reuse(table: str, config: str, row: Row, seed: int, overrides: list[str], out: Path,
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
