"""The benchmarks (`python -m experiments.bench model|data`) run end to end on a tiny model and a tiny video."""
from __future__ import annotations

import re

import pytest

from experiments.bench import main

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


def test_data_benchmark_times_both_pipelines_and_reads_the_frames_they_take(capsys: pytest.CaptureFixture[str]):
    main(["data", "--videos", "1", "--seconds", "2", "--clips", "1", "--sampling", "4x4"])
    out = capsys.readouterr().out
    for pipeline in ("ours (PyAV, sampled frames only)", "PyTorchVideo Kinetics (PyAV)"):
        assert re.search(rf"\| 4x4 \| {re.escape(pipeline)} \| \d[\d.]* \| \d[\d.]*× \|", out)
    # a 60-frame video: the clip starts at frame (60 - 16) // 2; both spread 4 frames over its 16, 15 / 3 apart
    assert "4x4 frames from a clip starting at frame 22: ours [22, 27, 32, 37], stock [22, 27, 32, 37]: same" in out
