"""`lightning-video export --ckpt_path CKPT --format onnx --out model.onnx`: a trained model for deployment.

Rebuilds the model from the checkpoint alone (`load_checkpoint`), writes it as ONNX with a free batch size and its clip
settings (frames, crop size, mean/std, class names, ...) in the model's metadata (`models.onnx_export`), then runs the
file with onnxruntime on random clips and prints the largest logit error relative to PyTorch's; the exit status is 1
when it exceeds `--tolerance`. Needs the `[onnx]` extra (`pip install -e ".[onnx]"`).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from jsonargparse import ArgumentParser

from lightning_video.models.checkpoint_file import CheckpointError
from lightning_video.models.onnx_export import export_onnx, onnx_relative_error
from lightning_video.training.rebuild import LoadedCheckpoint, load_checkpoint

Format = Literal["onnx"]


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="lightning-video export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", type=str, required=True, help="a checkpoint written by `fit`")
    parser.add_argument("--format", type=Format, default="onnx", help="the file format")
    parser.add_argument("--out", type=str, required=True, help="the file to write (e.g. model.onnx)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="the largest logit error relative to PyTorch's the parity check accepts")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    loaded = checkpoint_model(args.ckpt_path)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    backbone = loaded.model.backbone
    export_onnx(backbone, loaded.clip_settings, out)
    error = onnx_relative_error(backbone, out)
    verdict = "within" if error <= args.tolerance else "ABOVE"
    clips = loaded.clip_settings
    print(f"{out}: {backbone.attention}, {clips.num_frames} frames at {clips.crop_size}², {len(clips.class_names)} "
          f"classes; onnxruntime vs PyTorch: max relative logit error {error:.1e} "
          f"({verdict} the tolerance {args.tolerance:.0e})")
    return int(error > args.tolerance)


def checkpoint_model(path: str) -> LoadedCheckpoint:
    """The model of a checkpoint of `fit`, or an error that says what is wrong with the file and what to do."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"--ckpt_path {path}: no such file")
    try:
        return load_checkpoint(path)
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError) as error:  # weights or config that do not fit the model it describes
        raise ValueError(f"--ckpt_path {path}: its weights do not fit the model its config describes ({error}). It "
                         f"was edited, or written by another version of the model code; export a checkpoint that "
                         f"`lightning-video test --ckpt_path` accepts") from error


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
