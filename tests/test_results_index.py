"""The results index and its rendering (`experiments.tables.results_index`, `render`): runs recorded per (setting,
seed) with their provenance, documents whose numbers come from the index, and the shipped documents generated from
the shipped index."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.tables import render, results_index
from experiments.tables.fit_process import RowResult
from experiments.tables.table import Row, Scale, Table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"


def result(setting: str, seed: int, top1: float, gflops: float = 0.5) -> RowResult:
    return RowResult(setting, seed, params_M=1.25, gflops_per_view=gflops, top1=top1, top5=1.0, wall_s=90.0,
                     log_dir=f"/runs/{setting}-{seed}", fit_command=f"python -m lightning_video fit --seed {seed}",
                     date="2026-11-30 17:00 UTC", hardware="Test CPU, 2 cores", commit="abc123")


TABLE = Table("toy", "Toy table", "Made-up Table 9", {"synthetic": Scale(
    "experiments/configs/synthetic_motion.yaml", [Row("first", {"data.num_frames": 4}, paper="11.1"),
                                                  Row("second", {"data.num_frames": 8}, paper="22.2")],
    seeds=[0], pretrain=[Row("images", config="experiments/configs/synthetic_image_pretrain.yaml")])})


def test_a_run_is_recorded_with_its_provenance_and_a_rerun_replaces_only_its_seed(tmp_path: Path):
    for setting, seed, top1 in (("second", 0, 0.25), ("first", 1, 0.75), ("first", 0, 0.5), ("images", 0, 0.9)):
        path = results_index.record(tmp_path, TABLE, "synthetic", result(setting, seed, top1), "the command")
    entry = json.loads(path.read_text())
    assert path.name == "toy_synthetic.json"
    assert [row["setting"] for row in entry["rows"]] == ["images", "first", "second"]  # the scale's order
    assert [row["pretraining"] for row in entry["rows"]] == [True, False, False]
    first = entry["rows"][1]
    assert first["set"] == {"data.num_frames": 4} and first["paper"] == "11.1"
    assert first["config"] == "experiments/configs/synthetic_motion.yaml"
    assert entry["rows"][0]["config"] == "experiments/configs/synthetic_image_pretrain.yaml"
    assert [run["seed"] for run in first["runs"]] == [0, 1]
    assert first["runs"][0] == {"seed": 0, "metrics": {"top1": 0.5, "top5": 1.0}, "wall_s": 90.0,
                                "hardware": "Test CPU, 2 cores", "date": "2026-11-30 17:00 UTC", "commit": "abc123",
                                "command": "the command", "fit_command": "python -m lightning_video fit --seed 0",
                                "log_dir": "/runs/first-0"}

    results_index.record(tmp_path, TABLE, "synthetic", result("first", 0, 0.625), "again")
    runs = json.loads(path.read_text())["rows"][1]["runs"]
    assert [(run["seed"], run["metrics"]["top1"], run["command"]) for run in runs] == [(0, 0.625, "again"),
                                                                                      (1, 0.75, "the command")]


def test_rendered_rows_are_the_index_numbers(tmp_path: Path):
    index = tmp_path / "index"
    for setting, seed, top1 in (("first", 0, 0.5), ("first", 1, 0.7), ("second", 0, 0.125), ("second", 1, 0.25)):
        results_index.record(index, TABLE, "synthetic", result(setting, seed, top1, gflops=0.0875), "cmd")
    (index / "bench.json").write_text(json.dumps({
        "kind": "measurements", "table": "bench", "title": "A benchmark", "hardware": "2-core CPU", "command": "b",
        "columns": [{"key": "scheme", "label": "scheme"}, {"key": "rate", "label": "clips/s", "format": ".1f"}],
        "rows": [{"scheme": "joint", "rate": 12.94, "notes": {"rate": "median"}}, {"scheme": "divided"}]}))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "toy_synthetic.md").write_text("Why the toy rows differ.\n")
    written = render.documents(index, tmp_path)

    tables = (tmp_path / "tables.md").read_text()
    assert "## Toy table (synthetic scale)" in tables and "Paper: Made-up Table 9." in tables
    assert ("| setting | params (M) | GFLOPs/view | top-1 (mean) | top-1, per seed | top-5 (mean) | top-5, per seed | "
            "paper | wall (min, per seed) |") in tables
    assert "| first | 1.25 | 0.0875 | 0.600 | 0.500 / 0.700 | 1.000 | 1.000 / 1.000 | 11.1 | 1.5 / 1.5 |" in tables
    assert "| second | 1.25 | 0.0875 | 0.188 | 0.125 / 0.250 |" in tables
    assert "Measured: hardware Test CPU, 2 cores; date 2026-11-30 17:00 UTC; commit abc123. Command: `cmd`." in tables
    assert tables.index("Why the toy rows differ.") > tables.index("| second |")
    assert (tmp_path / "plots" / "toy_synthetic.png").stat().st_size > 0
    benchmarks = (tmp_path / "benchmarks.md").read_text()
    assert "| joint | 12.9 (median) |\n| divided | – |" in benchmarks
    assert "Measured: hardware 2-core CPU. Command: `b`." in benchmarks
    assert set(written) == {tmp_path / name for name in ("tables.md", "benchmarks.md", "plots/toy_synthetic.png")}

    results_index.record(index, TABLE, "synthetic", result("second", 1, 0.375, gflops=0.0875), "cmd")
    render.documents(index, tmp_path)
    assert "| second | 1.25 | 0.0875 | 0.250 | 0.125 / 0.375 |" in (tmp_path / "tables.md").read_text()


def test_the_shipped_results_documents_are_rendered_from_the_shipped_index(tmp_path: Path):
    render.documents(DOCS / "index", tmp_path, notes_dir=DOCS / "notes")
    for name in ("tables.md", "benchmarks.md"):
        assert (tmp_path / name).read_text() == (DOCS / name).read_text(), (
            f"docs/results/{name} differs from its index: run `python -m experiments.tables render`")


def test_every_migrated_run_says_where_it_came_from():
    for path in sorted((DOCS / "index").glob("*.json")):
        entry = results_index.load(path)
        runs = [run for row in entry["rows"] for run in row.get("runs", [])] or [entry]
        for run in runs:
            assert run.get("hardware") and run.get("command"), path
            assert run.get("commit") or "before the results index existed" in run.get("source", ""), path


def test_a_broken_index_file_is_named_with_the_fix(tmp_path: Path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not JSON .*delete it and run its table again"):
        results_index.load(tmp_path / "bad.json")
    (tmp_path / "bad.json").write_text(json.dumps({"table": "t", "rows": []}))
    with pytest.raises(ValueError, match=r"bad\.json: no scale, title; a 'runs' index file holds"):
        results_index.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no index files"):
        render.documents(tmp_path / "empty", tmp_path)
