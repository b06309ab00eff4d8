"""Benchmarks against the reference implementations, run side by side in one process so they share machine noise.

    python -m experiments.bench model --attention joint divided      # ours vs HF transformers' Timesformer
    python -m experiments.bench data                                 # ours vs PyTorchVideo's stock Kinetics pipeline
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from experiments.bench import data, model  # slow imports (transformers, pytorchvideo): only when run

    parser = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    for name, module in (("model", model), ("data", data)):
        module.add_arguments(benchmarks.add_parser(name, help=module.__doc__.split("\n\n")[0],
                                                   description=module.__doc__))
    args = parser.parse_args(argv)
    (model if args.benchmark == "model" else data).run(args)
