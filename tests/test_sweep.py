"""The sweeps: every point of every shipped sweep file, in the command `wandb agent` would run, is a valid config of
its base config; a 2-point grid runs here end to end and skips its finished points; bad sweep files say the fix."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from test_ablate import NO_GENERATION, TINY
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

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


def test_grid_runs_every_point_writes_the_table_and_skips_finished_points(motion_root: Path, tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture):
    path = tmp_path / "wd.yaml"
    path.write_text(yaml.safe_dump({"description": "Weight decay", "method": "grid", "command": COMMAND,
                                    "parameters": {"model.optimizer.init_args.weight_decay": {"values": [0.0, 0.05]},
                                                   "model.optimizer.init_args.lr": {"value": 0.001}}}))
    arguments = [str(path), "--grid", "--out", str(tmp_path / "out"), *TINY, *NO_GENERATION,
                 "--data.root", str(motion_root)]
    sweep(arguments)
    with (tmp_path / "out" / "table.csv").open() as file:
        lines = list(csv.DictReader(file))
    assert [line["setting"] for line in lines] == ["weight_decay=0.0", "weight_decay=0.05"]
    assert all(0 <= float(line["top1"]) <= 1 for line in lines)
    resolved = yaml.safe_load((Path(lines[1]["log_dirs"]) / "config.yaml").read_text())
    assert resolved["model"]["optimizer"]["init_args"] == pytest.approx({**resolved["model"]["optimizer"]["init_args"],
                                                                         "weight_decay": 0.05, "lr": 0.001})
    assert "# Weight decay (synthetic_motion scale)" in (tmp_path / "out" / "table.md").read_text()

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
