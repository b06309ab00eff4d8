"""The results index and its rendering (`experiments.tables.results_index`, `render`): runs recorded per (setting,
seed) with their provenance, documents whose numbers come from the index, and the shipped documents generated from
the shipped index."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from experiments.tables import figure, render, results_index, run_folder
from experiments.tables.fit_process import RowResult
from experiments.tables.table import Row, Scale, Table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "results"


def result(setting: str, seed: int, top1: float, gflops: float = 0.5, val_top1: float | None = None) -> RowResult:
    return RowResult(setting, seed, params_M=1.25, gflops_per_view=gflops, top1=top1, top5=1.0, wall_s=90.0,
                     log_dir=f"/runs/{setting}-{seed}", fit_command=f"python -m lightning_video fit --seed {seed}",
                     date="2026-11-30 17:00 UTC", hardware="Test CPU, 2 cores", commit="abc123", val_top1=val_top1,
                     classes=None if val_top1 is None else 4)


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
    assert ("| setting | params (M) | GFLOPs/view | test top-1 (mean) | test top-1, per seed | test top-5 (mean) | "
            "test top-5, per seed | paper | wall (min, per seed) |") in tables
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


SWEEP = Table("lr", "Learning rate", "", {"synthetic": Scale("experiments/configs/synthetic_motion.yaml", [
    Row(f"lr={lr}", {"model.optimizer.init_args.lr": lr}) for lr in (0.0001, 0.0003, 0.001, 0.003)], seeds=[0, 1])})


def lr_sweep(index: Path, val: dict[str, tuple[float, float]], test: dict[str, float]) -> dict:
    for row in SWEEP.scale("synthetic").rows:
        for seed, val_top1 in enumerate(val[row.setting]):
            results_index.record(index, SWEEP, "synthetic", result(row.setting, seed, test[row.setting],
                                                                   gflops=0.0875, val_top1=val_top1), "cmd")
    return results_index.load(index / "lr_synthetic.json")


def test_the_row_is_chosen_on_validation_not_test_and_marked(tmp_path: Path):
    val = {"lr=0.0001": (0.5, 0.6), "lr=0.0003": (0.9, 0.8), "lr=0.001": (0.85, 0.85), "lr=0.003": (0.25, 0.25)}
    test = {"lr=0.0001": 0.5, "lr=0.0003": 0.75, "lr=0.001": 0.95, "lr=0.003": 0.25}  # best test: lr=0.001
    entry = lr_sweep(tmp_path, val, test)
    assert entry["rows"][1]["runs"][0]["metrics"] == {"val_top1": 0.9, "top1": 0.75, "top5": 1.0}
    assert entry["rows"][1]["classes"] == 4
    text = render.runs_markdown(entry)
    assert "val: the validation split, one centre clip per video, of the checkpoint tested; test: the test" in text
    assert ("| setting | params (M) | GFLOPs/view | val top-1 (mean) | val top-1, per seed | test top-1 (mean) | "
            "test top-1, per seed |") in text
    assert "| lr=0.0003 ✓ | 1.25 | 0.0875 | 0.850 | 0.900 / 0.800 | 0.750 |" in text  # 0.850 first of equals
    assert "| lr=0.001 | 1.25 | 0.0875 | 0.850 | 0.850 / 0.850 | 0.950 |" in text
    assert ("✓ Chosen on validation: **lr=0.0003** (val top-1 0.850, tied with lr=0.001: the first in table order); "
            "its test top-1 0.750 is the number to report.") in text

    for row in entry["rows"]:  # an old run without a validation figure: no choice is made among the others
        row["runs"][0]["metrics"].pop("val_top1") if row["setting"] == "lr=0.003" else None
    text = render.runs_markdown(entry)
    assert "✓" not in text and "No row is chosen: lr=0.003 recorded no validation top-1 for every seed" in text


def test_the_plot_puts_the_swept_value_or_differing_gflops_on_x_with_chance_and_seeds(tmp_path: Path):
    val = {row.setting: (0.5, 0.7) for row in SWEEP.scale("synthetic").rows}
    entry = lr_sweep(tmp_path, val, dict.fromkeys(val, 0.5))
    drawn, axis = figure.draw(entry, render.summary(entry), "lr=0.0001")
    (axes,) = [axes for axes in drawn.axes if axes.get_xlabel()]
    assert (axis.name, axes.get_xlabel(), axes.get_xscale()) == ("lr", "lr (model.optimizer.init_args.lr)", "log")
    assert list(axes.get_xticks()) == pytest.approx([0.0001, 0.0003, 0.001, 0.003])
    (chance,) = [line for line in axes.get_lines() if line.get_label() == "chance (1/4)"]
    assert list(chance.get_ydata()) == [0.25, 0.25]
    seeds = [list(points.get_offsets()[:, 1]) for points in axes.collections if len(points.get_offsets()) == 2]
    assert [0.5, 0.7] in seeds  # each seed's validation top-1 of a row, drawn beside the mean
    drawn.canvas.draw()  # no tick label covers another
    boxes = [label.get_window_extent() for label in axes.get_xticklabels() if label.get_text()]
    assert len(boxes) == 4 and not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])

    entry["rows"][0]["gflops_per_view"] = 0.2  # rows that differ in cost: GFLOPs on x
    assert figure.draw(entry, render.summary(entry), None)[1].name == "gflops"
    for row in entry["rows"]:  # settings that are no number: in table order
        row["gflops_per_view"], row["set"] = 0.0875, {"model.backbone.init_args.attention": row["setting"]}
    drawn, axis = figure.draw(entry, render.summary(entry), None)
    assert axis.categories == [row["setting"] for row in entry["rows"]]


@pytest.mark.parametrize(("checkpoint", "expected"), [
    ({"monitor": "val/clip_top1", "mode": "max"}, 0.75),  # the first best: Lightning keeps only a strictly better one
    ({"monitor": "val/loss", "mode": "min"}, 0.625),  # epoch 2, not epoch 4's equal loss
    ({"monitor": None}, 0.5),  # the final weights were tested: the last validation
])
def test_the_validation_figure_is_the_tested_checkpoints(tmp_path: Path, checkpoint: dict, expected: float):
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss,val/clip_top1,val/loss\n0,9,0.9,,\n0,9,,0.5,0.7\n"
                                          "1,19,,0.75,0.6\n2,29,,0.625,0.3\n3,39,,0.75,0.5\n4,49,,0.5,0.3\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"checkpoint": checkpoint}))
    assert run_folder.tested_validation_top1(tmp_path) == expected
    (tmp_path / "metrics.csv").write_text("epoch,step,train/loss\n0,9,0.9\n")
    assert run_folder.tested_validation_top1(tmp_path) is None


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
