"""Tables of `lightning_video fit --test_after_fit true` runs: each row a process, its results a row of `table.md`,
`table.csv` and a plot. The papers' ablations (`experiments/ablations/*.yaml`) and a wandb sweep's grid
(`experiments/sweeps/*.yaml`) are two ways to write such a table:

    python -m experiments.tables ablate attention --scale synthetic
    python -m experiments.tables sweep experiments/sweeps/lr.yaml --grid

A table of your own from Python: `run_table(Table(name, title, "", {"mine": Scale(config, rows, seeds)}), "mine",
None, overrides, out)`.
"""
from experiments.tables.runner import run_table
from experiments.tables.table import Row, Scale, Table

__all__ = ["Row", "Scale", "Table", "run_table"]
