"""Experiment configs, launchers and benchmarks; a package so that `python -m experiments.bench` runs from the repo."""
