"""`lightning-video explain --ckpt_path CKPT --data.path VIDEO_OR_FOLDER --out DIR`: where a trained model looks.

For each video (a file, or every video file under a folder) it takes the clip the model is tested on (its centre
clip and centre crop, as the checkpoint's clip settings make it) and writes, in `DIR/<video's path under data.path,
without its suffix>/`:

- `rollout.png`: the clip's frames, and under each the attention rollout (`models.rollout`) over it as a heat map,
  one colour scale for the whole clip; a title with the top class;
- `rollout.gif`: the heat-map frames as an animation;
- `rollout.npy`: the rollout itself, `[frames, height, width]` patches, each patch's share of the clip feature;
- `top5.json`, `top5.txt`: the five most probable classes (of a model with several heads, combinations: actions).

`--layer L` draws the cls token's own attention in block L instead of the rollout (files `layerL.*`). A video that
cannot be decoded is named and counted; the exit status is then 1.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from jsonargparse import ArgumentParser
from PIL import Image, ImageDraw

from lightning_video.data.clip_settings import ClipSettings
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.models.rollout import HeadFusion, cls_attention, rollout
from lightning_video.training.metrics import JOINT
from lightning_video.training.module import VideoClassifier
from lightning_video.training.predictions import top_answers

TOP_K = 5
MIN_CELL = 128  # pixels: frames smaller than this are drawn enlarged
HEAT_OPACITY = 0.5
TITLE_HEIGHT = 16
GAP = 4  # pixels between the cells of the grid


@dataclass(frozen=True)
class ClipExplanation:
    """One clip, the map that explains it and what the model predicts.

    Attributes:
        frames: `[T, H, W, 3]` uint8, the clip as the model saw it (crop and frames), normalisation undone.
        heat: `[T, h, w]` per patch, in frame order, rows from the top.
        top: the most probable classes, best first: (class name, probability).
        kind: what `heat` is: "rollout" or "layerL".
    """

    frames: np.ndarray
    heat: np.ndarray
    top: list[tuple[str, float]]
    kind: str


def explain_clip(classifier: VideoClassifier, video: torch.Tensor, settings: ClipSettings, layer: int | None = None,
                 head_fusion: HeadFusion = "mean", discard_ratio: float = 0.0) -> ClipExplanation:
    """Explain one normalised clip `video` `[C, T, H, W]` (as the data module gives it) of a classifier with
    `settings`: the rollout, or with `layer` the cls token's attention in that block. Its top classes are as `predict`
    ranks them (with several heads, the most likely combinations: Epic-Kitchens' actions)."""
    model = classifier.backbone
    batch = video.unsqueeze(0).to(next(model.parameters()))
    explanation = (rollout(model, batch, head_fusion, discard_ratio) if layer is None else
                   cls_attention(model, batch, layer, head_fusion))
    probabilities = classifier.probabilities(explanation.logits).cpu()
    names = settings.class_names or [str(index) for index in range(probabilities.shape[1])]
    answers = top_answers(probabilities, names, settings.heads, TOP_K)
    best = answers[JOINT if settings.heads else ""][0]
    mean, std = (torch.tensor(values).view(3, 1, 1, 1) for values in (settings.mean, settings.std))
    frames = ((video.cpu().float() * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 3, 0)
    return ClipExplanation(frames.numpy(), explanation.heat[0].float().numpy(),
                           list(zip(best["labels"], best["scores"])),
                           "rollout" if layer is None else f"layer{layer % len(model.blocks)}")


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """`[...]` values in [0, 1] -> `[..., 3]` uint8 colours, blue (0) to red (1) through green and yellow (jet)."""
    ramp = 4 * heat[..., None] - np.array([3.0, 2.0, 1.0])  # red, green and blue peak at 3/4, 1/2 and 1/4
    return (np.clip(1.5 - np.abs(ramp), 0, 1) * 255).astype(np.uint8)


def overlays(explanation: ClipExplanation, cell: int) -> tuple[np.ndarray, np.ndarray]:
    """The frames enlarged to `cell` pixels and, beside them, the frames under the heat map, bilinearly spread from
    patches to pixels: two `[T, cell, cell, 3]` uint8 arrays. One colour scale for the clip: its largest value red."""
    frames = torch.from_numpy(explanation.frames).permute(0, 3, 1, 2).float()
    frames = torch.nn.functional.interpolate(frames, size=(cell, cell), mode="nearest")
    heat = torch.from_numpy(explanation.heat).float().unsqueeze(1)
    heat = torch.nn.functional.interpolate(heat, size=(cell, cell), mode="bilinear", align_corners=False)[:, 0]
    heat = (heat / heat.max().clamp(min=1e-12)).numpy()
    frames = frames.permute(0, 2, 3, 1).numpy()
    blended = (1 - HEAT_OPACITY) * frames + HEAT_OPACITY * heat_colours(heat)
    return frames.round().astype(np.uint8), blended.round().astype(np.uint8)


def figure(explanation: ClipExplanation, title: str) -> Image.Image:
    """The grid: a title, then the frames in a row and the heat maps over them in the row below, `GAP` pixels of
    white between cells (so that nothing seems to run from one frame into the next)."""
    frames_number, size = explanation.frames.shape[0], explanation.frames.shape[1]
    cell = size * math.ceil(MIN_CELL / size)
    image = Image.new("RGB", (frames_number * (cell + GAP) - GAP, TITLE_HEIGHT + 2 * cell + GAP), "white")
    for row, images in enumerate(overlays(explanation, cell)):
        for column, frame in enumerate(images):
            image.paste(Image.fromarray(frame), (column * (cell + GAP), TITLE_HEIGHT + row * (cell + GAP)))
    ImageDraw.Draw(image).text((2, 2), title, fill="black")
    return image


def title_of(name: str, explanation: ClipExplanation) -> str:
    label, probability = explanation.top[0]
    return f"{name}: {label} ({probability:.2f}), {explanation.kind}"


def write_outputs(explanation: ClipExplanation, folder: Path, name: str, fps: float) -> None:
    """The files of one video (see the module docstring) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    figure(explanation, title_of(name, explanation)).save(folder / f"{explanation.kind}.png")
    cell = explanation.frames.shape[1] * math.ceil(MIN_CELL / explanation.frames.shape[1])
    animation = [Image.fromarray(frame) for frame in overlays(explanation, cell)[1]]
    animation[0].save(folder / f"{explanation.kind}.gif", save_all=True, append_images=animation[1:],
                      duration=round(1000 / fps), loop=0)
    np.save(folder / f"{explanation.kind}.npy", explanation.heat)
    top = [{"class": label, "probability": probability} for label, probability in explanation.top]
    (folder / "top5.json").write_text(json.dumps(top, indent=2) + "\n")
    (folder / "top5.txt").write_text("".join(f"{probability:.4f} {label}\n" for label, probability in explanation.top))


def parser() -> ArgumentParser:
    parser = ArgumentParser(prog="lightning-video explain", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt_path", type=str, required=True, help="a checkpoint of `lightning-video fit`")
    parser.add_argument("--data.path", type=str, required=True, help="a video file, or a folder searched for videos")
    parser.add_argument("--out", type=str, required=True, help="the folder to write into")
    parser.add_argument("--layer", type=int | None, default=None,
                        help="draw the cls token's attention in this block (negative: from the end), not the rollout")
    parser.add_argument("--head_fusion", type=HeadFusion, default="mean",
                        help="fuse each step's heads by their mean (the TimeSformer paper's figure) or max")
    parser.add_argument("--discard_ratio", type=float, default=0.0,
                        help="zero this fraction of each step's lowest weights (sharper maps)")
    parser.add_argument("--fps", type=float, default=4.0, help="frames per second of the GIF")
    parser.add_argument("--device", type=str, default="cpu", help="cpu, cuda, cuda:1, ...")
    return parser


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if not 0.0 <= args.discard_ratio < 1.0:
        raise SystemExit(f"explain: --discard_ratio {args.discard_ratio}: valid values are in [0, 1)")
    checkpoint = Path(args.ckpt_path)
    if not checkpoint.is_file():
        raise SystemExit(f"explain: --ckpt_path {checkpoint} is not a file: give a checkpoint of `lightning-video fit` "
                         f"(runs/NAME/version_N/checkpoints/*.ckpt)")
    from lightning_video.training.rebuild import load_checkpoint  # Lightning: only once the arguments are good

    loaded = load_checkpoint(checkpoint, map_location=args.device)
    settings, depth = loaded.clip_settings, len(loaded.model.backbone.blocks)
    if args.layer is not None and not -depth <= args.layer < depth:
        raise SystemExit(f"explain: --layer {args.layer}: the model has {depth} blocks; valid: 0..{depth - 1}, or "
                         f"-{depth}..-1 from the end")
    data = VideoDataModule(**{**settings.data_arguments(), "test_clips": 1, "test_crops": 1}, path=args.data.path,
                           num_workers=0)
    try:
        data.setup("predict")
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"explain: {error}: --data.path takes a video file or a folder of videos") from error
    dataset, root, out = data.datasets["predict"], Path(args.data.path), Path(args.out)
    unreadable = 0
    for index, (path, _) in enumerate(dataset.videos):
        sample = dataset[index]
        if not sample["valid"]:
            unreadable += 1
            print(f"{path}: unreadable, left out", file=sys.stderr)
            continue
        relative = Path(path).relative_to(root) if root.is_dir() else Path(Path(path).name)
        explanation = explain_clip(loaded.model, sample["video"], settings, args.layer, args.head_fusion,
                                   args.discard_ratio)
        write_outputs(explanation, out / relative.with_suffix(""), str(relative), args.fps)
        label, probability = explanation.top[0]
        print(f"{path}: {label} ({probability:.3f}) -> {out / relative.with_suffix('')}")
    print(f"{len(dataset.videos) - unreadable} videos explained into {out}"
          + (f"; {unreadable} unreadable" if unreadable else ""))
    return int(unreadable > 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
