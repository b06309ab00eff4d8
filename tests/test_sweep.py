"""The sweeps: every point of every shipped sweep file, in the command `wandb agent` would run, is a valid config of
its base config; a 2-point grid runs here end to end and skips its finished points; bad sweep files say the fix."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from test_ablate import NO_GENERATION, TINY
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from experiments.tables import figure, render
from experiments.tables.sweep import SWEEPS_DIR, load
from experiments.tables.sweep import main as sweep
from lightning_video.cli import main as cli

SYNTHETIC = "experiments/configs/synthetic_motion.yaml"
COMMAND = ["${env}", "python", "-m", "lightning_video", "fit", "--config", SYNTHETIC, "--trainer.logger=WandbLogger",
           "${args}"]


def agent_command(command: list[str], point: dict) -> list[str]:
    """The command of one point as `wandb agent` makes it: each `${macro}` replaced by wandb's own rendering."""
    macros = create_sweep_command_args({"args": {key: {"value": value} for key, value in point.items()}})
    macros["env"] = ["/usr/bin/env"]
    return [part for chunk in command for part in (macros[chunk[2:-1]] if chunk.startswith("${") else [chunk])]


@pytest.mark.parametrize("path", sorted(SWEEPS_DIR.glob("*.yaml")), ids=lambda path: path.stem)
def test_every_point_of_every_shipped_sweep_is_a_valid_config(path: Path, capsys: pytest.CaptureFixture):
    """Both ways a point runs: the agent's command (`--key=value`, values as Python prints them) and `--grid`'s row."""
    sweep_file = yaml.safe_load(path.read_text())
    assert sweep_file["metric"] == {"name": "val/clip_top1", "goal": "maximize"}
    scale = next(iter(load(path).scales.values()))
    for row in scale.rows:
        command = agent_command(sweep_file["command"], row.set)
        assert command[:5] == ["/usr/bin/env", "python", "-m", "lightning_video", "fit"]
        assert all(f"--{key}={value}" in command for key, value in row.set.items())
        agent = printed_config(command[4:], capsys)
        assert agent["trainer"]["logger"]["class_path"] == "pytorch_lightning.loggers.WandbLogger"
        for printed in (agent, printed_config(["fit", "--config", scale.config, *row.arguments()], capsys)):
            check_values(printed, row.set, path.stem)


def printed_config(arguments: list[str], capsys: pytest.CaptureFixture) -> dict:
    with pytest.raises(SystemExit):
        cli([*arguments, "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def check_values(printed: dict, point: dict, name: str) -> None:
    for key, value in point.items():
        found = printed
        for part in key.split("."):
            found = found[part]
        assert found == value or {**found, **value} == found, (name, key)  # a dict value sets some of the keys


def test_grid_runs_every_point_reports_validation_and_test_and_skips_finished_points(
        motion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """The report of a tiny lr sweep: validation and test columns, the row chosen on validation marked (in table.md
    and table.csv), the plot with the lr on x; a rerun skips the finished points."""
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump({"description": "Learning rate", "method": "grid", "command": COMMAND,
                                    "parameters": {"model.optimizer.init_args.lr": {"values": [0.0001, 0.001]},
                                                   "model.optimizer.init_args.weight_decay": {"value": 0.05}}}))
    out = tmp_path / "out"
    arguments = [str(path), "--grid", "--out", str(out), *TINY, *NO_GENERATION, "--data.root", str(motion_root)]
    sweep(arguments)
    with (out / "table.csv").open() as file:
        lines = list(csv.DictReader(file))
    assert [line["setting"] for line in lines] == ["lr=0.0001", "lr=0.001"]
    assert all(0 <= float(line[key]) <= 1 for line in lines for key in ("val_top1", "top1"))
    resolved = yaml.safe_load((Path(lines[1]["log_dirs"]) / "config.yaml").read_text())
    assert resolved["model"]["optimizer"]["init_args"] == pytest.approx({**resolved["model"]["optimizer"]["init_args"],
                                                                         "weight_decay": 0.05, "lr": 0.001})
    best = max(float(line["val_top1"]) for line in lines)  # the first of equals: table order
    chosen = next(line for line in lines if float(line["val_top1"]) == best)
    assert [line["chosen_on_val"] for line in lines] == ["1" if line is chosen else "0" for line in lines]

    table = (out / "table.md").read_text()
    assert "# Learning rate (synthetic_motion scale)" in table
    assert "| setting | params (M) | GFLOPs/view | val top-1 | test top-1 | test top-5 |" in table
    assert f"| {chosen['setting']} ✓ | " in table and table.count("✓") == 2  # the row, and the sentence below
    assert f"✓ Chosen on validation: **{chosen['setting']}** (val top-1 {best:.3f}" in table
    for line in lines:
        assert f"curves/{Path(line['log_dirs']).name}.png" in table
        assert (out / "curves" / f"{Path(line['log_dirs']).name}.png").stat().st_size > 0

    entry = json.loads((out / "lr_synthetic_motion.json").read_text())
    assert [row["classes"] for row in entry["rows"]] == [2, 2]
    drawn, axis = figure.draw(entry, render.summary(entry), chosen["setting"])
    (axes,) = [axes for axes in drawn.axes if axes.get_xlabel()]
    assert axes.get_xlabel() == "lr (model.optimizer.init_args.lr)" and axes.get_xscale() == "log"
    assert list(axes.get_xticks()) == pytest.approx([0.0001, 0.001])
    assert [label.get_text() for label in axes.get_xticklabels()] == ["0.0001", "0.001"]
    (chance,) = [line for line in axes.get_lines() if line.get_label() == "chance (1/2)"]  # 2 classes
    assert list(chance.get_ydata()) == [0.5, 0.5]
    assert (out / "top1_vs_lr.png").stat().st_size > 0

    capsys.readouterr()
    sweep(arguments)
    printed = capsys.readouterr().out
    assert printed.count("finished earlier") == 2 and "..." not in printed


@pytest.mark.parametrize(("change", "message"), [
    ({"command": COMMAND[:-1]}, r"no `\$\{args\}`.*end the command with `- \$\{args\}`"),
    ({"command": [part for part in COMMAND if part not in ("--config", SYNTHETIC)]}, "no base config: add `--config"),
    ({"parameters": {"model.optimizer.init_args.lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-3}}},
     r"'model.optimizer.init_args.lr' has no `values`.*list them .*or run this sweep with `wandb agent`"),
    ({"parameters": {"data": {"parameters": {"num_frames": {"values": [4, 8]}}}}}, r"full dotted .*\(e.g. data.NAME\)"),
])
def test_a_bad_sweep_file_says_what_is_wrong_and_the_fix(change: dict, message: str, tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"command": COMMAND, "parameters": {"data.num_frames": {"values": [4, 8]}},
                                    **change}))
    with pytest.raises(ValueError, match=message):
        load(path)
