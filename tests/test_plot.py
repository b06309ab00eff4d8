"""`lightning-video plot RUN...`: learning curves from a run's metrics.csv, as Lightning's CSVLogger writes it."""
from __future__ import annotations

from pathlib import Path

import pytest

from lightning_video.cli import main as cli
from lightning_video.plot import curves_figure, read_metrics

# Lightning's CSVLogger layout: one line per logging call, empty cells for what that call did not log.
METRICS_CSV = """epoch,lr-AdamW,step,train/loss,val/clip_top1,val/loss,test/video_top1,model/params_M
0,0.0001,0,,,,,1.5
0,0.0001,9,0.9,,,,
0,,9,,0.5,0.7,,
1,0.0002,19,0.6,,,,
1,,19,,0.75,0.5,,
2,,20,,,,0.8,
"""


def plot(arguments: list[str]) -> int:
    """`lightning-video plot ARGUMENTS`' exit status."""
    with pytest.raises(SystemExit) as exit_:
        cli(["plot", *arguments])
    return exit_.value.code


def run_folder(root: Path, name: str = "version_0") -> Path:
    folder = root / "runs" / "synthetic_motion" / name
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(METRICS_CSV)
    return folder


def test_each_logged_curve_is_drawn_against_the_step_in_its_panel(tmp_path: Path):
    series = read_metrics(run_folder(tmp_path) / "metrics.csv")
    assert series["val/clip_top1"] == [(9, 0.5), (19, 0.75)] and series["train/loss"] == [(9, 0.9), (19, 0.6)]
    figure = curves_figure(series, "a run")
    panels = {axes.get_title(): {line.get_label(): list(zip(*line.get_data())) for line in axes.get_lines()}
              for axes in figure.axes}
    assert list(panels) == ["loss", "top-1", "learning rate"]
    assert panels["loss"] == {"train/loss": [(9, 0.9), (19, 0.6)], "val/loss": [(9, 0.7), (19, 0.5)]}
    assert panels["top-1"] == {"val/clip_top1": [(9, 0.5), (19, 0.75)], "test/video_top1": [(20, 0.8)]}
    assert panels["learning rate"] == {"lr-AdamW": [(0, 1e-4), (9, 1e-4), (19, 2e-4)]}


def test_the_command_writes_a_figure_into_each_run_or_out(tmp_path: Path, capsys: pytest.CaptureFixture):
    first, second = run_folder(tmp_path), run_folder(tmp_path, "version_1")
    assert plot([str(first), str(second / "metrics.csv")]) == 0
    written = [first / "learning_curves.png", second / "learning_curves.png"]
    assert capsys.readouterr().out.split() == [str(path) for path in written]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
    assert plot([str(first), "--out", str(tmp_path / "figures")]) == 0
    assert (tmp_path / "figures" / "synthetic_motion_version_0.png").stat().st_size > 0


def test_a_folder_without_metrics_names_the_runs_inside_and_nothing_plottable_names_the_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture):
    run = run_folder(tmp_path)
    assert plot([str(run.parent)]) == 2
    assert f"{run.parent}: no metrics.csv; the runs in it: {run}" in capsys.readouterr().out
    (run / "metrics.csv").write_text("epoch,step,model/params_M\n0,0,1.5\n")
    assert plot([str(run)]) == 2
    assert "no loss, top-1 or learning-rate column to plot; it has model/params_M" in capsys.readouterr().out
    assert not (run / "learning_curves.png").exists()
