"""The benchmarks (`python -m experiments.bench model|data`) run end to end on a tiny model and a tiny video."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from experiments.bench import main
from experiments.bench.utilisation import GpuSampler

TINY = ["--img-size", "32", "--patch-size", "8", "--embed-dim", "32", "--depth", "1", "--num-heads", "4",
        "--num-frames", "4"]


def test_model_benchmark_checks_the_logits_and_times_ours_and_hf(capsys: pytest.CaptureFixture[str]):
    main(["model", *TINY, "--attention", "space", "joint", "divided", "axial", "--warmup", "0", "--repeats", "1"])
    out = capsys.readouterr().out
    number = r"\d[\d.]*"
    for attention in ("space", "joint", "divided"):
        assert re.search(rf"{attention}: logits ours vs HF \w+: max relative error .* \(same logits\)", out)
        for model in ("ours", "HF"):
            assert re.search(rf"\| {attention} \| {model} \| {number} \| {number} \| {number} / {number} \|", out)
        assert re.search(rf"\| {attention} \| ours vs HF \| {number}× \| {number}× \|", out)
    assert re.search(rf"\| axial \| ours \| {number} \|", out) and "| axial | HF |" not in out  # HF has no axial


def test_model_benchmark_in_bf16_times_our_fp32_step_and_profiles_where_the_time_goes(
        capsys: pytest.CaptureFixture[str]):
    main(["model", *TINY, "--attention", "divided", "--dtype", "bf16", "--profile", "--warmup", "0",
          "--repeats", "1"])
    out = capsys.readouterr().out
    number = r"\d[\d.]*"
    assert re.search(rf"\| divided \| ours fp32 \| – \| {number} \| – / {number} \|", out)
    assert re.search(rf"\| divided \| ours bf16 vs fp32 \| \| {number}× \|", out)
    for model in ("ours", "HF", "ours fp32"):
        row = re.search(rf"^\| divided \| {model} \| ((?:{number}% \| )+){number}% \|$", out, re.MULTILINE)
        shares = [float(share) for share in row[1].split("% | ") if share.strip()]
        assert sum(shares) == pytest.approx(100, abs=0.5)  # every operator's time is in one kind



def test_model_benchmark_adds_onnxruntime_beside_eager_pytorch(capsys: pytest.CaptureFixture[str]):
    main(["model", *TINY, "--attention", "xvit", "--device", "cpu", "--onnxruntime", "--warmup", "0", "--repeats", "1"])
    out = capsys.readouterr().out
    error = float(re.search(r"xvit: logits onnxruntime vs eager PyTorch: max relative error (\S+)", out)[1])
    assert error < 1e-4
    for model in ("eager", "onnxruntime"):
        assert re.search(rf"\| xvit \| ours, {model} \(CPU fp32\) \| [\d.]+ \|", out)
    assert re.search(r"\| xvit \| onnxruntime vs eager \| [\d.]+× \|", out)


def test_attention_benchmark_times_each_kernel_per_shape(capsys: pytest.CaptureFixture[str]):
    main(["attention", "--shapes", "2,3,40,16", "3,2,9,8", "--warmup", "0", "--repeats", "1"])
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("| 2,3") or
            line.startswith("| 3,2")]
    kernels = ("fused", "explicit", "head_groups", "head_groups: products alone", "head_groups: softmax alone")
    assert [(row[0], row[1]) for row in rows] == [(f"| {shape}", kernel) for shape in ("2,3,40,16", "3,2,9,8")
                                                 for kernel in kernels]
    assert all(float(row[2]) > 0 and row[4].endswith("%") for row in rows)


def test_data_benchmark_times_both_readers_prepared_videos_and_the_loader(capsys: pytest.CaptureFixture[str]):
    main(["data", "--videos", "1", "--seconds", "2", "--clips", "1", "--sampling", "4x4", "--workers", "1",
          "--batch", "1", "--batches", "1"])
    out = capsys.readouterr().out
    number = r"\d[\d.]*"
    for reader in ("ours (PyAV, sampled frames only)", "data.reader: pytorchvideo (PyAV)"):
        assert re.search(rf"\| 4x4 \| {re.escape(reader)} \| {number} \| {number}× \|", out)
    # a 60-frame video: the clip starts at frame (60 - 16) // 2; both spread 4 frames over its 16, 15 / 3 apart
    assert "4x4 frames from a clip starting at frame 22: ours [22, 27, 32, 37], stock [22, 27, 32, 37]: same" in out
    assert re.search(rf"\| 4x4 \| original \| 1.00× \| {number} \| 1.00× \|", out)
    # the prepared copy holds the same frames (index codes), and its pixel error is measured
    assert re.search(rf"\| 4x4 \| keyframe every 8, .* \(chosen\) \| {number}× \| {number} \| {number}× \| yes \| "
                     rf"{number} \(worst\) \| {number} \(worst\) \|", out)
    assert re.search(rf"\| 1 \| {number} \| {number} \| {number}× \|", out)  # loader with one worker
    assert re.search(rf"- train step, H200, bf16, batch 16: {number} clips/s", out)
    assert re.search(r"## torchcodec\n\n(4x4, decoding only|torchcodec does not run here: \w+)", out)


def test_gpu_check_dry_run_writes_every_section_of_its_report(tmp_path: Path):
    """The one-command GPU check, end to end through its script at tiny sizes on the CPU: every step runs and the
    report holds its figures (the GPU run cannot be tested here; this keeps the check itself working)."""
    out = tmp_path / "report"
    done = subprocess.run(["bash", "experiments/bench/gpu_check.sh", "--dry-run", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
    report = (out / "gpu_check.md").read_text()
    steps = json.loads((out / "gpu_check.json").read_text())["steps"]
    for title in ("Summary", "Environment", "Matrix-product rates", "Model benchmark (bf16)", "SDPA kernels",
                  "Synthetic videos", "Fit through the CLI (bf16-mixed)", "Data loader, 2 workers",
                  "DDP smoke run (1 GPU, NCCL)", "torch.compile of our train step"):
        assert f"\n## {title}\n" in report, title
    assert {key: step["status"] for key, step in steps.items() if step["status"] != "ok"} == {}
    figures = {key: step["figures"] for key, step in steps.items()}
    assert figures["matmul"]["bf16"] > 0 and figures["matmul"]["fp32"] > 0
    assert figures["model"]["divided"]["ours_vs_hf"]["train"] > 0
    assert figures["model"]["divided"]["ours"]["train_clips_per_s"] > 0  # its GFLOP/s round to 0 at tiny sizes
    assert figures["sdpa"]["divided"][0]["picked"]  # the aten op that names the backend SDPA chose
    assert figures["videos"]["videos"] == 16  # 4 training videos per class, 2 for val and test, 2 classes
    assert figures["fit"]["steps"] == 4 and figures["fit"]["clips_per_s"] > 0
    assert figures["fit"]["peak_memory_GiB"] > 0
    assert figures["loader"]["clips_per_s"] > 0 and figures["ddp"] == {**figures["ddp"], "steps": 2, "backend": "gloo"}
    assert figures["compile"]["divided"]["compiled (eager)"]["train_tflops"] > 0  # dynamo traced, nothing compiled
    assert "report: " in done.stdout and "steps not ok: none" in done.stdout


def test_gpu_sampler_summarises_the_busy_span_and_says_why_it_cannot_sample(monkeypatch: pytest.MonkeyPatch):
    """NVML stands in for a GPU here: idle, busy at 40 then 80 %, idle again; the idle ends stay out of the mean."""
    loads = iter([0, 0, 40, 80, 0] + [0] * 1000)

    class Error(Exception):
        pass

    def utilisation(handle: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=next(loads))

    nvml = SimpleNamespace(NVMLError=Error, nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda index: index,
                           nvmlShutdown=lambda: None, nvmlDeviceGetUtilizationRates=utilisation,
                           nvmlDeviceGetMemoryInfo=lambda handle: SimpleNamespace(used=3 * 2**30))
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with GpuSampler(interval=0.001) as sampler:
        while len(sampler.samples) < 6:
            time.sleep(0.001)
    summary = sampler.summary()
    assert (summary["mean_util_pct"], summary["samples"], summary["max_memory_used_GiB"]) == (60, 2, 3)
    assert not sampler.unavailable

    def unsupported(handle: int) -> None:
        raise Error("Not Supported")

    nvml.nvmlDeviceGetUtilizationRates = unsupported
    with GpuSampler(interval=0.001) as sampler:
        sampler._thread.join()
    assert sampler.summary() == {} and sampler.unavailable == "NVML cannot read the GPU's load (Not Supported)"
