"""Experiment configs, tables and benchmarks; a package so that `python -m experiments.tables` and
`python -m experiments.bench` run from the repo."""
