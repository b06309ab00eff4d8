"""Tables of `lightning_video fit --test_after_fit true` runs: each row a process, each finished run an entry of the
results index (`results_index.py`), from which `table.md`, `table.csv`, a plot and the results documents are rendered
(`render.py`). The papers' ablations (`experiments/ablations/*.yaml`) and a wandb sweep's grid
(`experiments/sweeps/*.yaml`) are two ways to write such a table:

    python -m experiments.tables ablate attention --scale synthetic [--index docs/results/index]
    python -m experiments.tables sweep experiments/sweeps/lr.yaml --grid
    python -m experiments.tables render     # docs/results/*.md from docs/results/index

A table of your own from Python: `run_table(Table(name, title, "", {"mine": Scale(config, rows, seeds)}), "mine",
None, overrides, out)`.
"""
from experiments.tables.runner import run_table
from experiments.tables.table import Row, Scale, Table

__all__ = ["Row", "Scale", "Table", "run_table"]
