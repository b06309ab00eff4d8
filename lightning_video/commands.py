"""The commands beside LightningCLI's fit/validate/test/predict, each a module with `main(args) -> exit status`.

One table, so `lightning-video --help` can list them and `cli.main` can dispatch to them without importing any
until it is called (each pulls in what only it needs).
"""
from __future__ import annotations

import importlib

# command -> (module whose `main(args: list[str]) -> int` runs it, one line for `--help`)
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "check-data": ("lightning_video.check_data", "audit a dataset: listed, found, missing, unreadable, too short videos"),
    "flops": ("lightning_video.flops", "GFLOPs per view and parameters of a config's backbone at its clip size"),
    "explain": ("lightning_video.explain", "attention rollout heat maps, an animation and the top-5 classes per video"),
    "plot": ("lightning_video.plot", "draw the learning curves of runs from their metrics.csv"),
    "extract": ("lightning_video.extract", "features of videos (per view, clip or video; sliding windows) as shards"),
    "export": ("lightning_video.export", "a checkpoint as ONNX with its clip settings, checked with onnxruntime"),
    "prepare": ("lightning_video.prepare", "re-encode a dataset's videos for fast random access (short side 320)"),
}


def run_extra_command(name: str, args: list[str]) -> int:
    """Run `name` with its arguments and return its exit status."""
    module, _ = EXTRA_COMMANDS[name]
    return importlib.import_module(module).main(args)
