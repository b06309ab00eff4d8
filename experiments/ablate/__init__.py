"""The papers' ablation tables as commands: see `__main__` and `experiments/ablations/`."""
