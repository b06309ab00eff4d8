"""Benchmarks against the reference implementations, run side by side in one process so they share machine noise.

    python -m experiments.bench model --attention joint divided      # ours vs HF transformers' Timesformer
    python -m experiments.bench attention                            # the attention kernels alone, bf16 on CPU
    python -m experiments.bench data                                 # ours vs PyTorchVideo's stock Kinetics pipeline
    python -m experiments.bench cost --scale synthetic               # GFLOPs and training memory as tokens grow
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    from experiments.bench import attention, cost, data, model  # slow imports (transformers, pytorchvideo): only when run

    parser = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__.split("\n\n")[0])
    benchmarks = parser.add_subparsers(dest="benchmark", required=True)
    modules = {"model": model, "attention": attention, "data": data, "cost": cost}
    for name, module in modules.items():
        module.add_arguments(benchmarks.add_parser(name, help=module.__doc__.split("\n\n")[0],
                                                   description=module.__doc__))
    args = parser.parse_args(argv)
    modules[args.benchmark].run(args)
