"""Run a table: its pretraining runs, then every row with every seed, each as its own `fit` process
(`fit_process`), each finished run recorded in the results index (`results_index`), then the table's files rendered
from that index (`report`). Both `ablate` and `sweep` run their tables through here."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments.tables import report, results_index
from experiments.tables.fit_process import RowResult, finished, run_row
from experiments.tables.provenance import command_line
from experiments.tables.table import Row, Table


def run_table(table: Table, scale_name: str, seeds: list[int] | None, overrides: list[str], out: Path,
              weights: dict[str, str] | None = None, jobs: int | None = None, index_dir: Path | None = None,
              command: str | None = None) -> list[Path]:
    """Pretraining runs first (seed 0; your overrides apply to them too, so their model matches the rows'), then
    every row with every seed, `jobs` at a time. Each finished run goes into OUT's own index file and, if given, the
    index in `index_dir` (the repository's: `docs/results/index`), with `command` (the one that ran the table) as its
    provenance. Returns the files written: `OUT/table.md`, `table.csv`, the plot and OUT's index file."""
    scale = table.scale(scale_name)
    seeds = seeds or scale.seeds
    jobs = jobs or scale.jobs
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    indexes = [out, *([index_dir] if index_dir else [])]
    command = command or command_line()

    def run_or_reuse(config: str, row: Row, seed: int, threads: int | None = None) -> RowResult:
        result = _run_or_reuse(table.name, config, row, seed, overrides, out, threads)
        for index in indexes:
            results_index.record(index, table, scale_name, result, command)
        return result

    variables = dict(weights or {})
    for step in scale.pretrain:
        pretrained = run_or_reuse(step.config or scale.config, step, 0)
        variables[step.setting] = str(Path(pretrained.log_dir) / "checkpoints" / "last.ckpt")
    with ThreadPoolExecutor(jobs) as pool:
        runs = [pool.submit(run_or_reuse, scale.config, row.filled(variables), seed, threads)
                for row in scale.rows for seed in seeds]
        for run in runs:
            run.result()  # a failed row raises here
    return report.write(results_index.index_path(out, table.name, scale_name), out)


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
