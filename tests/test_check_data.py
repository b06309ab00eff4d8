"""`python -m lightning_video check-data`: every split scanned, every unreadable file listed with its reason."""
from __future__ import annotations

import json
import re
import runpy
import sys
from pathlib import Path

import pytest
import yaml

import published_layouts


def run_module(*args: str) -> int:
    """`python -m lightning_video ARGS` in this process; its exit status."""
    argv = sys.argv
    sys.argv = ["lightning_video", *args]
    try:
        runpy.run_module("lightning_video", run_name="__main__")
    except SystemExit as exit:
        return exit.code
    finally:
        sys.argv = argv
    return 0


def fit_config(folder: Path, **data: object) -> Path:
    """A whole fit config, of which check-data reads only the data section."""
    config = folder / "fit.yaml"
    config.write_text(yaml.safe_dump({"trainer": {"max_epochs": 3}, "model": {"label_smoothing": 0.1}, "data": data}))
    return config


def test_check_data_lists_unreadable_videos_of_every_split(tmp_path: Path, capsys: pytest.CaptureFixture):
    root = published_layouts.ucf101(tmp_path / "ucf")
    videos = root / "UCF-101"
    (videos / "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi").write_bytes(b"")
    truncated = videos / "Archery/v_Archery_g08_c01.avi"  # it opens, but its last frames do not decode
    truncated.write_bytes(truncated.read_bytes()[:int(truncated.stat().st_size * 0.9)])
    (videos / "ApplyLipstick/v_ApplyLipstick_g01_c01.avi").write_text("not a video")
    (videos / "Archery/v_Archery_g01_c01.avi").unlink()
    config = fit_config(tmp_path, root=str(tmp_path / "elsewhere"), dataset="ucf101", num_workers=2)
    out = tmp_path / "manifest.json"
    assert run_module("check-data", "--config", str(config), "--data.root", str(root), "--out", str(out)) == 1
    manifest = json.loads(out.read_text())
    # the absent file stays listed (training meets it as unreadable); every video is shorter than one 8 × 32 clip
    assert manifest["splits"] == {
        "train": {"listed": 3, "found": 3, "missing": 0, "unreadable": 2, "too_short": 1},
        "val": {"listed": 3, "found": 2, "missing": 1, "unreadable": 2, "too_short": 1},
        "test": {"listed": 3, "found": 2, "missing": 1, "unreadable": 2, "too_short": 1}}
    reasons = {Path(entry["path"]).name: (entry["reason"], entry["splits"]) for entry in manifest["unreadable"]}
    assert set(reasons) == {"v_ApplyEyeMakeup_g08_c01.avi", "v_Archery_g08_c01.avi", "v_ApplyLipstick_g01_c01.avi",
                            "v_Archery_g01_c01.avi"}
    assert "No such file" in reasons["v_Archery_g01_c01.avi"][0]
    assert reasons["v_ApplyEyeMakeup_g08_c01.avi"][1] == ["train"]
    assert reasons["v_Archery_g01_c01.avi"][1] == ["val", "test"]
    assert [Path(entry["path"]).name for entry in manifest["missing"]] == ["v_Archery_g01_c01.avi"]
    assert manifest["duplicates"] == []  # val and test are the same list, not two splits sharing videos
    assert re.search(r"^train +3 +3 +0 +2 +1$", capsys.readouterr().out, re.MULTILINE)


def test_check_data_passes_a_clean_dataset_and_reports_missing_splits(tmp_path: Path):
    root = published_layouts.diving48(tmp_path / "diving")
    config, out = fit_config(tmp_path, root=str(root), dataset="diving48", num_workers=0), tmp_path / "manifest.json"
    assert run_module("check-data", "--config", str(config), "--out", str(out)) == 0
    assert json.loads(out.read_text())["unreadable"] == []
    (root / "Diving48_V2_test.json").unlink()
    assert run_module("check-data", "--config", str(config), "--out", str(out)) == 1
    assert "Diving48_V2_test.json is missing" in json.loads(out.read_text())["splits"]["test"]["error"]


def test_check_data_fails_when_nothing_can_be_read_and_lists_annotation_problems(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture):
    root = published_layouts.diving48(tmp_path / "diving")
    for video in (root / "rgb").iterdir():
        video.write_bytes(b"\x00" * 100)
    table = root / "Diving48_V2_test.json"
    table.write_text(table.read_text().replace('"label": 3', '"label": "three"'))
    config, out = fit_config(tmp_path, root=str(root), dataset="diving48", num_workers=0), tmp_path / "manifest.json"
    assert run_module("check-data", "--config", str(config), "--out", str(out)) == 1
    manifest = json.loads(out.read_text())
    assert manifest["splits"]["train"] == {"listed": 2, "found": 2, "missing": 0, "unreadable": 2, "too_short": 0}
    assert manifest["videos"] == 2
    assert f"{table}, entry 2: 'three' is not an integer label" in manifest["splits"]["test"]["error"]
    assert "2 of the 2 videos unreadable" in capsys.readouterr().out


KINETICS_AUDITS = {  # per split: listed, found, missing, unreadable, too short
    "cvdf": {"train": (8, 7, 1, 0, 1), "val": (5, 4, 1, 1, 0), "test": (4, 4, 0, 0, 0)},
    # no replacement folder: one more video missing, and the corrupted one is read
    "crawler": {"train": (8, 6, 2, 1, 1), "val": (5, 4, 1, 1, 0), "test": (4, 4, 0, 0, 0)},
}


@pytest.mark.parametrize("layout", sorted(KINETICS_AUDITS))
def test_check_data_audits_kinetics_as_downloaded(tmp_path: Path, layout: str, capsys: pytest.CaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch):
    root = getattr(published_layouts, f"kinetics_{layout}")(tmp_path / layout)
    config = fit_config(tmp_path, root=str(root), dataset="kinetics", num_frames=4, sampling_rate=2, num_workers=2)
    monkeypatch.chdir(tmp_path)
    assert run_module("check-data", "--config", str(config)) == 1  # an unreadable video
    out = tmp_path / f"runs/check-data/{layout}_kinetics.json"  # the default place, printed
    printed = capsys.readouterr().out
    assert f"audit: {out}" in printed
    manifest = json.loads(out.read_text())
    assert manifest["splits"] == {split: dict(zip(("listed", "found", "missing", "unreadable", "too_short"), counts))
                                  for split, counts in KINETICS_AUDITS[layout].items()}
    for split, counts in KINETICS_AUDITS[layout].items():
        assert re.search(rf"^{split} +{' +'.join(map(str, counts))}$", printed, re.MULTILINE)
    names = {kind: {Path(entry["path"]).name: entry["splits"] for entry in manifest[kind]}
             for kind in ("missing", "unreadable", "too_short")}
    assert names["missing"] == {"zumbazumba2_000003_000013.mp4": ["train"], "valmissing1_000000_000010.mp4": ["val"],
                                **({"replaced001_000000_000010.mp4": ["train"]} if layout == "crawler" else {})}
    assert names["unreadable"] == {"brokenvid01_000000_000010.mp4": ["val"],
                                   **({"corrupted01_000000_000010.mp4": ["train"]} if layout == "crawler" else {})}
    assert names["too_short"] == {"shortvid001_000000_000010.mp4": ["train"]}
    assert [entry["frames"] for entry in manifest["too_short"]] == [3] and manifest["frames_per_clip"] == 8
    # the same YouTube id at other times in train and test
    assert [(entry["video"], sorted(entry["splits"])) for entry in manifest["duplicates"]] == [
        ("abcdefghij1", ["test", "train"])]
    assert "the same video in two splits: 1" in printed


def test_check_data_passes_kinetics_with_only_missing_videos(tmp_path: Path):
    root = published_layouts.kinetics_cvdf(tmp_path / "k400")
    (root / "val/brokenvid01_000000_000010.mp4").unlink()
    config = fit_config(tmp_path, root=str(root), dataset="kinetics", num_workers=0)
    out = tmp_path / "audit.json"
    assert run_module("check-data", "--config", str(config), "--out", str(out)) == 0  # missing videos are normal
    assert json.loads(out.read_text())["splits"]["val"]["missing"] == 2
