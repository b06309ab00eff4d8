"""Every dataset layout on a tiny copy of its published files: labels, class names, splits, folds, loading, and the
error that names a missing file and the layout."""
from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

import published_layouts as published
from lightning_video.data import layouts
from lightning_video.data.datamodule import VideoDataModule
from lightning_video.data.layouts import LAYOUTS
from lightning_video.models import VideoTransformer
from lightning_video.training.module import VideoClassifier


def datamodule(root: Path, dataset: str, **overrides) -> VideoDataModule:
    settings = dict(num_frames=4, sampling_rate=2, crop_size=16, train_min_short_side=16, train_max_short_side=20,
                    batch_size=2, num_workers=0, test_clips=1, test_crops=1)
    return VideoDataModule(str(root), dataset=dataset, **{**settings, **overrides})


def names_and_labels(data: VideoDataModule, split: str) -> list[tuple[str, object]]:
    return [(Path(path).name, label) for path, label in data.videos(split)]


def first_batch(data: VideoDataModule, stage: str = "fit") -> dict:
    data.setup(stage)
    return next(iter(data.train_dataloader() if stage == "fit" else data.test_dataloader()))


@pytest.mark.parametrize("dataset", ["kinetics", "folder"])
def test_kinetics_class_folders(tmp_path: Path, dataset: str):
    data = datamodule(published.kinetics_folders(tmp_path), dataset)
    assert data.class_names == list(published.KINETICS_CLASSES) and not data.multi_label
    assert [label for _, label in data.videos("train")] == [0, 0, 1, 1]  # notes.txt is not a video
    assert [label for _, label in data.videos("test")] == [0, 1]
    assert first_batch(data)["video"].shape == (2, 3, 4, 16, 16)


def test_kinetics_reads_the_csv_layout_when_there_is_one(motion_root: Path):
    data = datamodule(motion_root, "kinetics")
    assert data.num_classes == 2 and len(data.videos("train")) == 8


def test_ssv2_labels_from_templates_webm_and_mp4_videos_and_segment_sampling(tmp_path: Path):
    data = datamodule(published.ssv2(tmp_path), "ssv2")
    # class i is the template whose id is i; a video's label is its template without brackets
    assert data.class_names == ["Pushing something from left to right", "Approaching something with your camera",
                                "Moving something and something away from each other"]
    assert names_and_labels(data, "train") == [("78687.webm", 1), ("42326.webm", 0), ("100904.webm", 2)]
    assert names_and_labels(data, "test") == [("74225.webm", 0), ("116154.mp4", 1)]  # validation.json
    assert data.sampling == "segments"
    data.setup("test")
    data.datasets["test"].transform = lambda sample: sample
    # 12 frames in 4 segments, bounds round(2.75 i) = 0, 3, 6, 8, 11: the centres, as in the official loader
    assert [published.frame_numbers(data.datasets["test"][i]["video"]) for i in range(2)] == [[1, 4, 7, 9]] * 2


def test_ssv2_frame_folders_train_on_a_random_frame_of_each_segment(tmp_path: Path):
    data = datamodule(published.ssv2(tmp_path, store="frames"), "ssv2")
    assert Path(data.videos("train")[0][0]) == tmp_path / "frames/78687"
    data.setup("fit")
    data.datasets["train"].transform = lambda sample: sample
    torch.manual_seed(0)
    drawn = torch.tensor([published.frame_numbers(data.datasets["train"][0]["video"]) for _ in range(40)])
    low, high = torch.tensor([0, 3, 6, 8]), torch.tensor([3, 6, 8, 11])
    assert ((drawn >= low) & (drawn <= high)).all()
    assert (drawn.min(0).values == low).all() and (drawn.max(0).values == high).all()  # each bound is reached


def test_ssv2_is_never_flipped_but_other_datasets_are(tmp_path: Path):
    left_half_white = torch.zeros(4, 16, 16, 3, dtype=torch.uint8)
    left_half_white[:, :, :8] = 255
    sample = {"video": left_half_white, "label": 0}

    def flips(dataset: str) -> int:
        transform = datamodule(tmp_path, dataset).train_transform  # crop = short side: only a flip can move pixels
        return sum(bool(transform(dict(sample))["video"][0, 0, 0, -1] > 0) for _ in range(30))

    torch.manual_seed(0)
    assert flips("ssv2") == 0 and flips("kinetics") > 5


def test_ucf101_official_split_files(tmp_path: Path):
    root = published.ucf101(tmp_path)
    data = datamodule(root, "ucf101")
    assert data.class_names == list(published.UCF_CLASSES)
    assert names_and_labels(data, "train") == [(f"v_{name}_g08_c01.avi", label)
                                               for label, name in enumerate(published.UCF_CLASSES)]
    assert names_and_labels(data, "test") == [(f"v_{name}_g01_c01.avi", label)  # label from the folder
                                              for label, name in enumerate(published.UCF_CLASSES)]
    assert [name for name, _ in names_and_labels(datamodule(root, "ucf101", fold=2), "train")][0] == \
        "v_ApplyEyeMakeup_g01_c01.avi"
    batch = first_batch(data, "test")
    assert batch["valid"].all() and batch["video"].shape == (2, 3, 4, 16, 16)
    with pytest.raises(FileNotFoundError, match=r"trainlist03\.txt is missing.*ucf101 layout.*classInd"):
        datamodule(root, "ucf101", fold=3).videos("train")


def test_hmdb51_split_files_train_on_1_test_on_2_and_drop_0(tmp_path: Path):
    data = datamodule(published.hmdb51(tmp_path), "hmdb51")
    assert data.class_names == list(published.HMDB_CLASSES)
    assert names_and_labels(data, "train") == [("brush_hair_train_u_nm_np1_ba_goo_0.avi", 0),
                                               ("cartwheel_train_u_nm_np1_ba_goo_0.avi", 1)]
    assert [name for name, _ in names_and_labels(data, "val")] == ["brush_hair_test_u_nm_np1_ba_goo_0.avi",
                                                                    "cartwheel_test_u_nm_np1_ba_goo_0.avi"]
    assert first_batch(data)["video"].shape == (2, 3, 4, 16, 16)


def test_diving48_json_labels(tmp_path: Path):
    data = datamodule(published.diving48(tmp_path), "diving48")
    assert data.num_classes == 48 and data.class_names[0] == "Back 15som 00Twis FREE"
    assert names_and_labels(data, "test") == [("0ZO2GMsl2lU_00001.mp4", 47), ("0ZO2GMsl2lU_00002.mp4", 3)]
    assert first_batch(data)["label"].tolist() in ([0, 47], [47, 0])


def test_charades_multi_hot_targets_and_video_map(tmp_path: Path):
    data = datamodule(published.charades(tmp_path), "charades", test_clips=2)
    assert data.multi_label and data.num_classes == 157 and data.class_names[92] == "Action number 92"
    train = dict(names_and_labels(data, "train"))
    assert train["46GP8.mp4"].nonzero().flatten().tolist() == [92, 147]
    assert train["N11GT.mp4"].nonzero().flatten().tolist() == [75, 98]  # an action that occurs twice counts once
    assert dict(names_and_labels(data, "test"))["0A8CF.mp4"].sum() == 0
    backbone = VideoTransformer("divided", num_classes=157, img_size=16, patch_size=8, num_frames=4, embed_dim=16,
                                depth=1, num_heads=2)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match="multi-hot labels but model.multi_label=False: set model.multi_label=True"):
        trainer.test(VideoClassifier(backbone), datamodule=data)
    results = trainer.test(VideoClassifier(backbone, multi_label=True), datamodule=data)[0]
    assert results["test/videos"] == 2 and 0 <= results["test/video_map"] <= 1


@pytest.mark.parametrize("dataset", sorted(LAYOUTS))
def test_a_missing_file_names_itself_and_the_layout(tmp_path: Path, dataset: str):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path}.* Expected the {dataset} layout: .*{tmp_path}"):
        layouts.read(dataset, tmp_path, "train")
    with pytest.raises(FileNotFoundError, match=rf"nowhere does not exist\. Expected the {dataset} layout"):
        layouts.read(dataset, tmp_path / "nowhere", "train")
