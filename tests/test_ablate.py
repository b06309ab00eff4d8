"""The ablation tables (`python -m experiments.tables ablate`): a table end to end on tiny runs (files, rows, resuming),
every shipped table's rows parse against its configs."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from experiments.tables import Row
from experiments.tables.ablate import available, load
from experiments.tables.ablate import main as ablate
from experiments.tables.__main__ import main as tables
from lightning_video.cli import main as cli

# Shrinks the synthetic scale: a tiny model, two batches of training, the test split of the tiny dataset.
# Runs on the shared `motion_root` also pass NO_GENERATION: the config's own `data.synthetic` (100 videos per class)
# would otherwise regenerate that dataset in place.
TINY = ["--data.num_workers", "0", "--data.batch_size", "4", "--data.num_frames", "4", "--data.crop_size", "16",
        "--data.train_min_short_side", "16", "--data.train_max_short_side", "20", "--data.test_crops", "1",
        "--model.backbone.init_args.patch_size", "8", "--model.backbone.init_args.embed_dim", "16",
        "--model.backbone.init_args.depth", "1", "--model.backbone.init_args.num_heads", "2",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
        "--trainer.enable_progress_bar", "false"]
NO_GENERATION = ["--data.synthetic", "null"]


@pytest.fixture
def two_row_table(tmp_path: Path) -> Path:
    table = {"title": "Two schemes", "paper_source": "made up", "rows": [
        {"setting": "space", "set": {"model.backbone.init_args.attention": "space"}, "paper": "1.0"},
        {"setting": "divided", "set": {"model.backbone.init_args.attention": "divided"}, "paper": "2.0"}],
        "scales": {"synthetic": {"config": "experiments/configs/synthetic_motion.yaml"}}}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(table))
    return path


def test_table_runs_every_row_writes_its_files_and_skips_finished_rows(two_row_table: Path, motion_root: Path,
                                                                       tmp_path: Path, capsys: pytest.CaptureFixture):
    out, index = tmp_path / "out", tmp_path / "index"
    arguments = [str(two_row_table), "--scale", "synthetic", "--out", str(out), "--jobs", "2", "--index", str(index),
                 *TINY, *NO_GENERATION, "--data.root", str(motion_root)]  # the rows run side by side
    ablate(arguments)
    with (out / "table.csv").open() as file:
        lines = list(csv.DictReader(file))
    assert [line["setting"] for line in lines] == ["space", "divided"]
    space, divided = lines
    assert float(divided["params_M"]) > float(space["params_M"])  # divided adds the temporal attention's weights
    assert float(divided["gflops_per_view"]) > float(space["gflops_per_view"])
    for line in lines:
        assert 0 <= float(line["top1"]) <= 1 and line["top5"] == ""  # 2 classes: no top-5, 1 by construction
        assert (Path(line["log_dirs"]) / "config.yaml").is_file()
        assert (Path(line["log_dirs"]) / "checkpoints" / "last.ckpt").is_file()
    assert [line["paper"] for line in lines] == ["1.0", "2.0"]
    table = (out / "table.md").read_text()
    (chosen,) = [line["setting"] for line in lines if line["chosen_on_val"] == "1"]  # the row chosen on validation
    assert all(f"| {line['setting']}{' ✓' if line['setting'] == chosen else ''} |" in table for line in lines)
    assert "seeds 0" in table
    assert (out / "top1_vs_gflops.png").stat().st_size > 0
    saved = json.loads((out / "rows" / "divided-seed0.json").read_text())
    assert saved["top1"] == pytest.approx(float(divided["top1"]))
    entry = json.loads((index / "two_synthetic.json").read_text())  # the results index, as `--index` asked
    assert entry == json.loads((out / "two_synthetic.json").read_text())  # and the table's own
    assert (entry["title"], entry["config"]) == ("Two schemes", "experiments/configs/synthetic_motion.yaml")
    assert entry["command"].startswith(f"python -m experiments.tables ablate {two_row_table} --scale synthetic")
    for row, line in zip(entry["rows"], lines):
        assert row["set"] == {"model.backbone.init_args.attention": row["setting"]}
        assert row["params_M"] == pytest.approx(float(line["params_M"]))
        assert row["gflops_per_view"] == pytest.approx(float(line["gflops_per_view"]))
        (run,) = row["runs"]
        assert run["seed"] == 0 and run["metrics"]["top1"] == pytest.approx(float(line["top1"]))
        assert run["wall_s"] > 0 and run["log_dir"] == line["log_dirs"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", run["date"])
        assert run["hardware"].endswith(" cores") or "×" in run["hardware"]  # the CPU's model and cores, or the GPUs
        assert "commit" in run and run["command"] == entry["command"]
        assert run["fit_command"].startswith("python -m lightning_video fit --config ")

    capsys.readouterr()
    ablate(arguments)  # nothing left to run: both rows are read back
    printed = capsys.readouterr().out
    assert printed.count("finished earlier") == 2 and "..." not in printed


def test_pretraining_runs_first_and_its_checkpoint_is_what_the_rows_load(motion_root: Path, tmp_path: Path):
    table = {"title": "Pretraining", "scales": {"synthetic": {
        "config": "experiments/configs/synthetic_motion.yaml",
        "pretrain": [{"setting": "images", "config": "experiments/configs/synthetic_image_pretrain.yaml",
                      "set": {"data.root": str(tmp_path / "location"), "data.synthetic.videos_per_class": 2}}],
        "rows": [{"setting": "scratch", "set": {"data.root": str(motion_root), "data.synthetic": None,
                                                "data.num_frames": 4}},
                 {"setting": "from images", "set": {"data.root": str(motion_root), "data.synthetic": None,
                                                    "data.num_frames": 4, "model.pretrained": "${images}"}}]}}}
    (tmp_path / "pretraining.yaml").write_text(yaml.safe_dump(table))
    common = [option for pair in zip(TINY[::2], TINY[1::2]) if pair[0] not in ("--data.num_frames",) for option in pair]
    ablate([str(tmp_path / "pretraining.yaml"), "--scale", "synthetic", "--out", str(tmp_path / "out"), *common])
    with (tmp_path / "out" / "table.csv").open() as file:
        assert [line["setting"] for line in csv.DictReader(file)] == ["images (pretraining)", "scratch", "from images"]
    image_run = tmp_path / "out" / "runs" / "images-seed0"
    assert yaml.safe_load((image_run / "config.yaml").read_text())["data"]["num_frames"] == 1  # single frames
    log = (tmp_path / "out" / "runs" / "from_images-seed0" / "fit.log").read_text()
    report = next(line for line in log.splitlines() if line.startswith(str(image_run / "checkpoints" / "last.ckpt")))
    assert "0 missing, 0 unexpected" in report  # the image attention copied into the temporal one: "adapted"
    assert "last.ckpt" not in (tmp_path / "out" / "runs" / "scratch-seed0" / "fit.log").read_text()


def test_a_failing_row_names_its_log(two_row_table: Path, motion_root: Path, tmp_path: Path):
    with pytest.raises(RuntimeError, match=r"row 'space' \(seed 0\) failed .*fit\.log"):
        ablate([str(two_row_table), "--scale", "synthetic", "--out", str(tmp_path / "out"), *TINY, *NO_GENERATION,
                "--data.root", str(motion_root), "--model.backbone.init_args.num_heads", "3"])  # 16 channels, 3 heads


def test_rows_name_weights_as_variables_and_a_missing_one_says_how_to_give_it():
    row = Row("in21k", {"model.pretrained": "${IN21K}", "data.num_frames": 8})
    assert row.filled({"IN21K": "/w/vit.npz"}).arguments() == ["--model.pretrained", "/w/vit.npz", "--data.num_frames",
                                                                "8"]
    with pytest.raises(ValueError, match=r"row 'in21k' needs \$\{IN21K\}: pass --weights IN21K=PATH"):
        row.filled({})


def test_a_scales_set_reaches_every_row_and_a_rows_own_value_wins(tmp_path: Path):
    (tmp_path / "table.yaml").write_text(yaml.safe_dump({"title": "t", "rows": [
        {"setting": "a", "set": {"data.num_frames": 4}}, {"setting": "b", "set": {"trainer.max_epochs": 3}}],
        "scales": {"synthetic": {"config": "c.yaml", "set": {"trainer.max_epochs": 30, "model.pretrained": "${w}"}},
                    "paper": {"config": "p.yaml"}}}))
    table = load(str(tmp_path / "table.yaml"))
    assert [row.set for row in table.scale("synthetic").rows] == [
        {"trainer.max_epochs": 30, "model.pretrained": "${w}", "data.num_frames": 4},
        {"trainer.max_epochs": 3, "model.pretrained": "${w}"}]
    assert [row.set for row in table.scale("paper").rows] == [{"data.num_frames": 4}, {"trainer.max_epochs": 3}]


def test_unknown_tables_and_scales_are_named(capsys: pytest.CaptureFixture):
    with pytest.raises(ValueError, match="valid: .*attention.*pos_embed"):
        load("attentoin")
    with pytest.raises(SystemExit):
        tables(["ablate", "attentoin", "--scale", "synthetic"])  # as `python -m experiments.tables` runs it
    assert "unknown ablation 'attentoin'; valid: attention, clip_length" in capsys.readouterr().err
    with pytest.raises(ValueError, match="no scale 'papr'; valid: synthetic, synthetic_appearance, paper"):
        load("attention").scale("papr")
    with pytest.raises(SystemExit):
        ablate(["attention", "--scale", "synthetic", "--jobs", "0"])
    assert "--jobs 0: give the number of rows to run at once, 1 or more" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "scale"), [(name, scale) for name in available() for scale in load(name).scales])
def test_every_row_of_every_shipped_table_is_a_valid_config(name: str, scale: str, capsys: pytest.CaptureFixture):
    table = load(name).scale(scale)
    for row in [*table.pretrain, *table.rows]:
        with pytest.raises(SystemExit):
            cli(["fit", "--config", row.config or table.config, *row.arguments(), "--print_config"])
        printed = yaml.safe_load(capsys.readouterr().out)
        for key, value in row.set.items():
            found = printed
            for part in key.split("."):
                found = found[part]
            assert found == value or {**found, **value} == found, (name, scale, row.setting, key)
