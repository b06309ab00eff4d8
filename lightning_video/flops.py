"""FLOPs and parameters of one view, the way papers report them: fvcore's count, one multiply-add = one FLOP.

fvcore counts matrix products, convolutions and norms (LayerNorm as 5 FLOPs per element) and skips elementwise
ops (adds, softmax, GELU). It has no handle for the fused attention kernel and would count it as zero, so we
register one, and refuse to answer when any other attention or matrix-product op goes uncounted.

    lightning-video flops --config experiments/configs/timesformer_k400.yaml --attention joint
    lightning-video flops --attention divided --num_frames 8 --img_size 224
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from fvcore.nn import FlopCountAnalysis
from fvcore.nn.jit_handles import Handle, get_shape
from jsonargparse import ArgumentParser
from torch import nn

from lightning_video.models import VideoTransformer
from lightning_video.models.attention import fused_attention

VIDEO_TRANSFORMER = "lightning_video.models.VideoTransformer"
# The data settings `fit` links into the backbone (`cli.VideoCLI.add_arguments_to_parser`) -> the backbone's argument
DATA_LINKS = {"num_frames": "num_frames", "crop_size": "img_size"}
# Unsupported ops whose names look like these do real matrix work; fvcore skipping them would under-count. So would
# skipping a `prim::PythonOp.*` (an autograd.Function, opaque to the trace).
_CONTRACTION = re.compile(r"attention|attn|matmul|einsum|dot|mm_?$|::(conv|linear)", re.IGNORECASE)


def scaled_dot_product_attention_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """q·kᵀ and attn·v for q `[..., Lq, E]`, k `[..., Lk, E]`, v `[..., Lk, Ev]`; the scale and the softmax are
    elementwise, which fvcore does not count elsewhere either."""
    *batch, queries, channels = get_shape(inputs[0])
    keys = get_shape(inputs[1])[-2]
    value_channels = get_shape(inputs[2])[-1]
    return math.prod(batch) * queries * keys * (channels + value_channels)


ATTENTION_HANDLES: dict[str, Handle] = {"aten::scaled_dot_product_attention": scaled_dot_product_attention_flops}


class EagerForward(nn.Module):
    """`model.forward` called directly, not through `model(...)`: a model compiled in place (`nn.Module.compile`, as
    `VideoClassifier(compile=True)` does) is called through `torch.compile`, which jit tracing refuses."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.model.forward(video)


def count(model: VideoTransformer, num_frames: int | None = None, img_size: int | None = None) -> tuple[float, float]:
    """GFLOPs of one view `[1, C, num_frames, img_size, img_size]` and millions of parameters.

    Args:
        model: the model, counted as written (`VideoTransformer.as_written`), without the shortcuts it takes.
        num_frames: frames per view; the model's own by default.
        img_size: frame side; the model's own by default.

    Raises:
        RuntimeError: fvcore met an attention or matrix-product op it cannot count.
    """
    parameter, side = next(model.parameters()), img_size or model.img_size
    video = torch.zeros(1, model.patch_embed.proj.in_channels, num_frames or model.num_frames, side, side,
                        device=parameter.device, dtype=parameter.dtype)
    modes = {module: module.training for module in model.modules()}
    model.eval()  # no dropout or stochastic depth in the traced graph
    try:
        with torch.no_grad(), model.as_written(), fused_attention():
            analysis = FlopCountAnalysis(EagerForward(model), video).set_op_handle(**ATTENTION_HANDLES)
            flops = analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()
    finally:
        for module, training in modes.items():
            module.training = training
    uncounted = sorted(op for op in analysis.unsupported_ops()
                       if _CONTRACTION.search(op) or op.startswith("prim::PythonOp"))
    if uncounted:
        raise RuntimeError(f"fvcore cannot count {', '.join(uncounted)}: add a handle to ATTENTION_HANDLES "
                           f"or count under lightning_video.models.explicit_attention()")
    return flops / 1e9, sum(p.numel() for p in model.parameters()) / 1e6


def parser(config: dict, config_dir: Path) -> ArgumentParser:
    """`VideoTransformer`'s arguments as options, defaulting to the backbone of a fit config (`config`, with its pieces
    read from `config_dir`) and its clip size, as `fit` links them: `data.num_frames`, `data.crop_size`."""
    parser = ArgumentParser(prog="lightning-video flops", description=main.__doc__)
    parser.add_argument("--config", type=str | None, default=None,
                        help="a fit config: its model.backbone, data.num_frames and data.crop_size are the defaults")
    parser.add_class_arguments(VideoTransformer)
    backbone = (config.get("model") or {}).get("backbone") or {}
    if isinstance(backbone, str):  # a piece, relative to the config (`experiments/configs/pieces/backbone/*.yaml`)
        backbone = yaml.safe_load((config_dir / backbone).read_text())
    if backbone.get("class_path", VIDEO_TRANSFORMER) != VIDEO_TRANSFORMER:
        parser.error(f"model.backbone.class_path {backbone['class_path']}: flops counts {VIDEO_TRANSFORMER}")
    data = config.get("data") or {}
    linked = {ours: data[theirs] for theirs, ours in DATA_LINKS.items() if data.get(theirs) is not None}
    parser.set_defaults({**(backbone.get("init_args") or {}), **linked})
    return parser


def main(args: list[str]) -> int:
    """Print the GFLOPs per view and parameters of a `VideoTransformer`: a fit config's backbone at its clip size
    (`--config`), with any argument changed (`--attention joint`, `--num_frames 16`, ...); without a config, the
    defaults (TimeSformer-B: ViT-B/16, 8 frames at 224, 400 classes). The class count is the backbone's own: the
    dataset's changes the head's share only."""
    given = argparse.ArgumentParser(add_help=False)
    given.add_argument("--config")
    config_path = given.parse_known_args(args)[0].config
    config = (yaml.safe_load(Path(config_path).read_text()) or {}) if config_path else {}
    options = parser(config, Path(config_path or ".").parent).parse_args(args).as_dict()
    options.pop("config")
    model = VideoTransformer(**options)
    gflops, params = count(model)
    print(f"{model.attention} {model.num_frames}x{model.img_size}: {gflops:.4g} GFLOPs/view, {params:.4g}M params")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
