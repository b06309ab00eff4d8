"""Probes of the device for the GPU check (`gpu_check.py`), each printing `RESULT {json}` lines as it goes, so a
crash or a timeout later in the probe loses none of the figures already printed.

- `env`: versions of Python, torch, CUDA and of the packages the project imports; the device's name.
- `matmul`: the square matrix product's rate in bf16, fp32 and (on CUDA) TF32: the ceilings of the models' main op.
- `compile`: our training step (forward, cross-entropy, backward, AdamW) eager, then under `torch.compile`: how long
  the first, compiling call takes and the compiled step's speed, each printed as soon as it is known.
- `sdpa`: which kernel `scaled_dot_product_attention` picks for the attention calls of our schemes (recorded from a
  real training forward of each, so the shapes and strides are the model's), and which of the backends run there
  and how fast (forward + backward).

    python -m experiments.bench.gpu_probes sdpa --device cuda --batch 16 --attention divided joint xvit
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import warnings

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from experiments.bench.timing import median_seconds

PACKAGES = ("torch", "torchvision", "pytorch-lightning", "torchmetrics", "transformers", "av", "pytorchvideo",
            "fvcore", "iopath", "jsonargparse", "numpy", "pillow", "nvidia-ml-py")
SIZES = ("num_frames", "img_size", "patch_size", "embed_dim", "depth", "num_heads")
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
            "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}


def result(**figures: object) -> None:
    print("RESULT " + json.dumps(figures), flush=True)


def env(args: argparse.Namespace) -> None:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "missing"
    cuda = torch.cuda.is_available()
    result(python=platform.python_version(), cuda=torch.version.cuda, cuda_available=cuda,
           device=torch.cuda.get_device_name() if cuda else platform.processor() or "cpu",
           cpu_count=os.cpu_count(), packages=versions)


def matmul(args: argparse.Namespace) -> None:
    """TFLOP/s of a `side`³ product (one multiply-add = 2 FLOP here, as the hardware's rates are given)."""
    device = torch.device(args.device)
    kinds = [("bf16", torch.bfloat16, False), ("fp32", torch.float32, False)]
    if device.type == "cuda":
        kinds.append(("tf32", torch.float32, True))
    for name, dtype, tf32 in kinds:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = (torch.randn(args.side, args.side, device=device, dtype=dtype) for _ in range(2))
        seconds = median_seconds(lambda: a @ b, device, warmup=3, repeats=args.repeats)
        result(dtype=name, side=args.side, tflops=2 * args.side**3 / seconds / 1e12)
    torch.backends.cuda.matmul.allow_tf32 = False


class AttentionCalls:
    """Within `with`, records the first call of `scaled_dot_product_attention` per (shapes, strides, dtype) and how
    many calls had that signature. The model calls it as `F.scaled_dot_product_attention`, so replacing the module's
    attribute sees every call."""

    def __init__(self) -> None:
        self.calls: dict[str, dict] = {}
        self._original = F.scaled_dot_product_attention

    def __enter__(self) -> AttentionCalls:
        def record(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *rest, **options) -> torch.Tensor:
            signature = " ".join(f"{tuple(t.shape)}" for t in (q, k, v)) + f" {str(q.dtype).removeprefix('torch.')}"
            if not all(t.stride(-1) == 1 for t in (q, k, v)):
                signature += " (last dim strided)"
            entry = self.calls.setdefault(signature, {"count": 0, "tensors": [t.detach() for t in (q, k, v)]})
            entry["count"] += 1
            return self._original(q, k, v, *rest, **options)

        F.scaled_dot_product_attention = record
        return self

    def __exit__(self, *exc: object) -> None:
        F.scaled_dot_product_attention = self._original


def attention_ops(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[list[str], list[str]]:
    """The aten attention ops (they name the backend) and the top GPU kernels by time of one forward + backward."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if q.is_cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as profile:
        forward_backward(q, k, v)
        if q.is_cuda:
            torch.cuda.synchronize(q.device)
    events = profile.key_averages()
    ops = sorted({event.key for event in events if event.key.startswith(("aten::_scaled_dot_product", "aten::_flash",
                                                                         "aten::_efficient", "aten::_cudnn"))})
    kernels = [event for event in events if getattr(event, "device_type", None) == torch.autograd.DeviceType.CUDA
               and event.device_time_total > 0]
    kernels.sort(key=lambda event: -event.device_time_total)
    return ops, [event.key[:100] for event in kernels[:4]]


def forward_backward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]  # `detach` keeps the model's strides
    F.scaled_dot_product_attention(*leaves).float().sum().backward()


def sdpa(args: argparse.Namespace) -> None:
    # only here: `env` and `matmul` need torch alone
    from lightning_video.models import create_model
    from lightning_video.models.attention import fused_attention

    device = torch.device(args.device)
    sizes = {name: getattr(args, name) for name in SIZES if getattr(args, name) is not None}
    for attention in args.attention:
        torch.manual_seed(0)
        model = create_model(args.preset, attention=attention, drop_path_rate=0.0, **sizes).to(device).train()
        video = torch.randn(args.batch, 3, model.num_frames, model.img_size, model.img_size, device=device)
        # the question is SDPA's choice: every attention call through it (a CPU dry run would take our own bf16 paths)
        with AttentionCalls() as recorded, torch.autocast(device.type, dtype=torch.bfloat16), fused_attention():
            model(video)
        del model, video
        calls = []
        for signature, call in recorded.calls.items():
            q, k, v = call["tensors"]
            ops, kernels = attention_ops(q, k, v)
            backends = {}
            for name, backend in BACKENDS.items():
                with warnings.catch_warnings(record=True) as reasons, sdpa_kernel(backend):
                    warnings.simplefilter("always")
                    try:
                        backends[name] = 1e3 * median_seconds(lambda: forward_backward(q, k, v), device, 2, args.repeats)
                    except RuntimeError:  # SDPA warns why it skipped the backend, then raises
                        why = [str(reason.message).strip().splitlines()[0] for reason in reasons]
                        backends[name] = "no: " + ("; ".join(why)[:300] or "no such kernel on this device")
            calls.append(dict(signature=signature, count=call["count"], picked=ops, kernels=kernels,
                              backends_ms=backends))
        result(attention=attention, batch=args.batch, calls=calls)


def compiled(args: argparse.Namespace) -> None:
    from experiments.bench.model import Contender  # only here: it imports the HF side
    from lightning_video.flops import count
    from lightning_video.models import create_model

    device = torch.device(args.device)
    sizes = {name: getattr(args, name) for name in SIZES if getattr(args, name) is not None}
    for attention in args.attention:
        torch.manual_seed(0)
        model = create_model(args.preset, attention=attention, drop_path_rate=0.0, **sizes)
        tflop_per_step = 2 * 3 * count(model)[0] * args.batch / 1000  # fvcore's multiply-adds, a step ≈ 3 forwards
        model.to(device)
        video = torch.randn(args.batch, 3, model.num_frames, model.img_size, model.img_size, device=device)
        for mode, forward in (("eager", model), (f"compiled ({args.backend})", torch.compile(model,
                                                                                             backend=args.backend))):
            contender = Contender(mode, model, video, forward, torch.bfloat16)
            first = median_seconds(contender.train_step, device, warmup=0, repeats=1)
            result(attention=attention, mode=mode, first_call_s=first)
            step = median_seconds(contender.train_step, device, warmup=2, repeats=args.repeats)
            result(attention=attention, mode=mode, first_call_s=first, train_step_s=step,
                   clips_per_s=args.batch / step, train_tflops=tflop_per_step / step)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m experiments.bench.gpu_probes",
                                     description=__doc__.split("\n\n")[0])
    probes = parser.add_subparsers(dest="probe", required=True)
    probes.add_parser("env")
    for name in ("matmul", "sdpa", "compile"):
        probe = probes.add_parser(name)
        probe.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
        probe.add_argument("--repeats", type=int, default=10, help="timed repeats (medians)")
    probes.choices["matmul"].add_argument("--side", type=int, default=8192)
    probes.choices["compile"].add_argument("--backend", default="inductor", help="torch.compile's backend")
    for name in ("sdpa", "compile"):
        model_parser = probes.choices[name]
        model_parser.add_argument("--attention", nargs="+", default=["divided", "joint", "xvit"], help="schemes")
        model_parser.add_argument("--preset", default="timesformer_base_8x224", help="a `lightning_video.models` preset")
        model_parser.add_argument("--batch", type=int, default=16)
        for size in SIZES:
            model_parser.add_argument(f"--{size.replace('_', '-')}", type=int, help="overrides the preset")
    args = parser.parse_args(argv)
    {"env": env, "matmul": matmul, "sdpa": sdpa, "compile": compiled}[args.probe](args)


if __name__ == "__main__":
    main()
