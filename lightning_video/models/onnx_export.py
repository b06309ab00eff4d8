"""A `VideoTransformer` as an ONNX model that describes its clips, checked against PyTorch with onnxruntime.

The graph comes from `torch.export` (`torch.onnx.export(dynamo=True)`), which traces every scheme as written (the
older TorchScript exporter froze X-ViT's batch size into its TA head). Input `video` `[batch, 3, frames, size, size]`,
float32, normalised as `mean`/`std` say; output `logits` `[batch, classes]`; the batch size is free. The clip settings
go into the model's `metadata_props`, each a JSON value: `num_frames`, `crop_size`, `mean`, `std`, `class_names`,
`clip_settings` (all of them: sampling, test views, ...) and `attention`, so a deployment needs no other file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from lightning_video.data.clip_settings import ClipSettings
from lightning_video.models.video_transformer import VideoTransformer

INPUT_NAME, OUTPUT_NAME = "video", "logits"
EXPORT_BATCH = 2  # the example's batch; torch.export treats a batch of 1 as a constant


def onnx_metadata(model: VideoTransformer, clips: ClipSettings) -> dict[str, str]:
    """The `metadata_props` of the exported model: what its inputs must be and what its outputs mean, as JSON."""
    values = {"num_frames": clips.num_frames, "crop_size": clips.crop_size, "mean": list(clips.mean),
              "std": list(clips.std), "class_names": clips.class_names, "clip_settings": clips.to_dict(),
              "attention": model.attention}
    return {key: json.dumps(value) for key, value in values.items()}


def export_onnx(model: VideoTransformer, clips: ClipSettings, path: str | Path) -> None:
    """Write `model` (in eval mode) to `path` as ONNX with a free batch size and the clip settings in its metadata;
    the file is whole or absent (written beside and renamed)."""
    path = Path(path)
    model.eval()
    example = torch.randn(EXPORT_BATCH, 3, clips.num_frames, clips.crop_size, clips.crop_size)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.onnx.export(model, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                    dynamic_shapes={"video": {0: batch}}, dynamo=True, verbose=False)
    program.model.metadata_props.update(onnx_metadata(model, clips))
    # in a folder of its own under the final name: a model over 2 GB keeps its weights in `<name>.data` beside it,
    # which the graph names; the weights move first, so the graph is never there without them
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as folder:
        program.save(Path(folder) / path.name)
        for file in sorted(Path(folder).iterdir(), key=lambda file: file.name == path.name):
            os.replace(file, path.parent / file.name)


def onnx_relative_error(model: VideoTransformer, path: str | Path, batch: int = 3, seed: int = 0) -> float:
    """max |onnxruntime - PyTorch| / max |PyTorch| over the logits of `batch` random clips (another batch size than
    the export's, so that a batch size frozen into the graph shows)."""
    import onnxruntime

    metadata = onnx_file_metadata(path)
    frames, size = json.loads(metadata["num_frames"]), json.loads(metadata["crop_size"])
    video = torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run([OUTPUT_NAME], {INPUT_NAME: video.numpy()})[0])
    with torch.no_grad():
        expected = model.eval()(video)
    return ((got - expected).abs().max() / expected.abs().max()).item()


def onnx_file_metadata(path: str | Path) -> dict[str, str]:
    """The `metadata_props` of an ONNX file (its weights not loaded)."""
    import onnx

    return {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
