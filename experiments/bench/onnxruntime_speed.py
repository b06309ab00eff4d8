"""The model benchmark's onnxruntime rows (`python -m experiments.bench model --onnxruntime`): the model exported as
`lightning-video export` does, its logits checked against eager PyTorch's, then the CPU inference clips/s of both,
timed alternately (same threads: onnxruntime gets PyTorch's thread count, and does not spin between runs)."""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import torch

from experiments.bench.timing import seconds
from lightning_video.data.clip_settings import ClipSettings
from lightning_video.models import VideoTransformer
from lightning_video.models.onnx_export import INPUT_NAME, export_onnx, onnx_relative_error

CPU = torch.device("cpu")


def onnxruntime_rows(attention: str, model: VideoTransformer, video: torch.Tensor, warmup: int,
                     repeats: int) -> list[str]:
    """Table rows (the model bench's columns; inference only) of onnxruntime and eager PyTorch on `video`."""
    import onnxruntime

    from experiments.bench.model import figure  # the bench's number format (that module imports this one)

    clips = ClipSettings(num_frames=model.num_frames, sampling_rate=1, sampling="clip", crop_size=model.img_size,
                         mean=(0.45,) * 3, std=(0.225,) * 3, test_clips=1, test_crops=1,
                         class_names=[str(label) for label in range(model.head.out_features)])
    model = model.to(CPU).eval()
    video = video.to(CPU)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(model, clips, path)
        error = onnx_relative_error(model, path)
        print(f"{attention}: logits onnxruntime vs eager PyTorch: max relative error {error:.1e}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        # its threads otherwise spin for work after each run, taking the cores from the eager run timed next
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = {INPUT_NAME: video.numpy()}

    def eager() -> None:
        with torch.inference_mode():
            model(video)

    runs = {"eager": eager, "onnxruntime": lambda: session.run(None, inputs)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(warmup + repeats):
        for name in list(runs)[::-1] if repeat % 2 else runs:
            took = seconds(runs[name], CPU)
            if repeat >= warmup:
                times[name].append(took)
    medians = {name: statistics.median(values) for name, values in times.items()}
    return [f"| {attention} | ours, {name} (CPU fp32) | {figure(len(video) / median)} | | | | |"
            for name, median in medians.items()] + [
        f"| {attention} | onnxruntime vs eager | {medians['eager'] / medians['onnxruntime']:.2f}× | | | | |"]
