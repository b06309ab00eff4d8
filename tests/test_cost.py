"""The cost benchmark (`python -m experiments.bench cost`): GFLOPs per view equal the hand counts, joint attention's
memory blows up with the explicit softmax and not with the fused kernel, and an unknown scale is named."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
from test_flops import divided_gflops, joint_gflops

from experiments.bench import main as bench


def test_cost_table_reproduces_the_hand_counts_and_the_joint_memory_blow_up(tmp_path: Path):
    bench(["cost", "--scale", "synthetic", "--out", str(tmp_path), "--schemes", "joint", "divided", "--crops", "224",
           "--frames", "8"])
    with (tmp_path / "gflops_8x224.csv").open() as file:
        paper_config = {line["scheme"]: float(line["gflops_per_view"]) for line in csv.DictReader(file)}
    assert paper_config == pytest.approx({"joint": joint_gflops(), "divided": divided_gflops()}, abs=0.01)
    with (tmp_path / "table.csv").open() as file:
        lines = {line["scheme"]: line for line in csv.DictReader(file)}
    joint, divided = lines["joint"], lines["divided"]
    assert int(joint["tokens"]) == 8 * 14 * 14
    # 1568 tokens: the explicit path keeps four layers of 4 × 1568² attention maps; the fused kernel keeps none
    assert float(joint["explicit_GiB"]) > 3 * float(joint["fused_GiB"])
    assert float(joint["explicit_GiB"]) > 2 * float(divided["explicit_GiB"])
    assert (tmp_path / "cost.png").stat().st_size > 0 and "| joint | 8 | 224 |" in (tmp_path / "table.md").read_text()


def test_unknown_scales_are_named(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        bench(["cost", "--scale", "synthetic_appearance"])
    assert "cost has no scale 'synthetic_appearance'; valid: paper, synthetic" in capsys.readouterr().err
