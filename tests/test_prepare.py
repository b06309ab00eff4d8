"""`lightning-video prepare SRC DST`: every video re-encoded (short side, keyframes) with the same frames and frame
count under the same path, every other file copied as it is, the source untouched, a rerun skipping finished files,
and every failure listed with a non-zero exit status."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import av
import numpy as np
import pytest

import published_layouts
from lightning_video.cli import main as cli_main
from lightning_video.data.decode import open_video
from lightning_video.data.synthetic import write_mp4
from lightning_video import prepare
from lightning_video.prepare import FAILURES, main


def digests(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [index for index, packet in enumerate(container.demux(video=0)) if packet.size and packet.is_keyframe]


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """UCF101 (MPEG-4 in .avi, split files) and SSv2 (VP9 in .webm, JSON labels) in one tree, and a 48×64 H.264
    video of 24 frames."""
    root = tmp_path / "source"
    published_layouts.ucf101(root / "ucf101")
    published_layouts.ssv2(root / "ssv2")
    ramp = published_layouts.grey_ramp(16)
    write_mp4(root / "large/video.mp4", np.repeat(np.repeat(ramp[:, :1, :1], 48, axis=1), 64, axis=2), fps=30)
    return root


def test_prepare_reencodes_videos_keeps_frames_and_copies_the_rest(dataset: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture):
    before, target = digests(dataset), tmp_path / "prepared"
    with pytest.raises(SystemExit) as exit:
        cli_main(["prepare", str(dataset), str(target), "--short-side", "24", "--keyframe-interval", "4",
                  "--workers", "2", "--no-progress"])
    assert exit.value.code == 0
    assert digests(dataset) == before  # the source only read
    assert set(digests(target)) == set(before)  # the same relative paths, nothing else
    videos = [name for name in before if Path(name).suffix in (".avi", ".webm", ".mp4")]
    others = set(before) - set(videos)
    assert {"ucf101/ucfTrainTestlist/trainlist01.txt", "ssv2/labels/train.json"} <= others
    assert all(digests(target)[name] == before[name] for name in others)  # annotation files byte for byte
    for name in videos:
        with open_video(dataset / name) as source, open_video(target / name) as prepared:
            assert prepared.num_frames == source.num_frames
            everything = range(source.num_frames)
            assert published_layouts.frame_numbers(prepared.read(everything)) == \
                published_layouts.frame_numbers(source.read(everything))
        assert all(before[name] != digest for name, digest in digests(target).items() if name in videos)
    with open_video(target / "large/video.mp4") as prepared:
        assert prepared.read([0]).shape == (1, 24, 32, 3)  # short side 48 -> 24, aspect kept
    assert keyframes(target / "large/video.mp4") == [0, 4, 8, 12]
    assert f"{len(videos)} written, {len(others)} copied, 0 skipped, 0 failed" in capsys.readouterr().out


def test_rerun_skips_finished_files_and_redoes_the_missing(dataset: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture):
    target = tmp_path / "prepared"
    assert main([str(dataset), str(target), "--workers", "1", "--no-progress"]) == 0
    total = len(digests(target))
    redo = target / "large/video.mp4"
    redo.unlink()
    # what a kill mid-write leaves: a partial under a temporary name, never under the final one
    (redo.parent / f".video.partial-123.mp4").write_bytes(b"half")
    capsys.readouterr()
    assert main([str(dataset), str(target), "--workers", "1", "--no-progress"]) == 0
    assert f"1 written, 0 copied, {total - 1} skipped, 0 failed" in capsys.readouterr().out
    with open_video(redo) as prepared:
        assert prepared.num_frames == 16


def test_a_partial_output_is_never_left_under_the_final_name(dataset: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    def interrupted(*args: object) -> tuple[int, int]:
        raise KeyboardInterrupt

    monkeypatch.setattr("lightning_video.prepare.transcode", interrupted)
    target = tmp_path / "prepared/video.mp4"
    with pytest.raises(KeyboardInterrupt):
        prepare.prepare_file(dataset / "large/video.mp4", target, prepare.DEFAULT_ENCODING, 320)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_unreadable_and_truncated_videos_are_listed_and_fail_the_run(dataset: Path, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture):
    (dataset / "ssv2/20bn-something-something-v2/78687.webm").write_text("not a video")
    truncated = dataset / "ucf101/UCF-101/Archery/v_Archery_g08_c01.avi"
    truncated.write_bytes(truncated.read_bytes()[:int(truncated.stat().st_size * 0.9)])
    target = tmp_path / "prepared"
    assert main([str(dataset), str(target), "--workers", "2", "--no-progress"]) == 1
    failed = {Path(entry["path"]).name: entry["reason"]
              for entry in json.loads((target / FAILURES).read_text())["failed"]}
    assert set(failed) == {"78687.webm", "v_Archery_g08_c01.avi"}
    assert "Invalid data" in failed["v_Archery_g08_c01.avi"]
    assert not (target / "ssv2/20bn-something-something-v2/78687.webm").exists()
    assert not (target / "ucf101/UCF-101/Archery/v_Archery_g08_c01.avi").exists()
    assert "2 failed" in capsys.readouterr().out


def test_a_frame_count_other_than_the_sources_fails_the_file(dataset: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    count_frames = prepare.count_frames
    monkeypatch.setattr(prepare, "count_frames", lambda path: (count_frames(path)[0] - 1, count_frames(path)[1]))
    target = tmp_path / "prepared/video.mp4"
    outcome = prepare.prepare_file(dataset / "large/video.mp4", target, prepare.DEFAULT_ENCODING, 320)
    assert outcome.status == "failed" and not target.exists()
    assert "source 16 decoded (16 in its header), prepared 16 decoded (15 by its header" in outcome.reason


def test_a_phone_video_comes_out_upright_without_its_display_matrix(tmp_path: Path):
    stored = published_layouts.grey_ramp(4)[:, :, :12].copy()  # 16 high, 12 wide as stored
    stored[:, :4] = 255  # a white band at the stored top: after a 90° turn counterclockwise, at the left
    source = tmp_path / "phone.mp4"
    with av.open(str(source), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.height, stream.width = stored.shape[1:3]
        stream.pix_fmt, stream.options = "yuv420p", {"qp": "0"}
        stream.set_display_rotation(90)
        for image in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    target = tmp_path / "prepared.mp4"
    assert prepare.prepare_file(source, target, prepare.DEFAULT_ENCODING, 320).status == "written"
    with av.open(str(target)) as container:
        assert next(container.decode(video=0)).rotation == 0  # the pixels turned, no matrix left to turn them again
    with open_video(source) as original, open_video(target) as copy:
        upright, prepared = original.read([0, 3]).float(), copy.read([0, 3]).float()
    assert prepared.shape == upright.shape == (2, 12, 16, 3)
    assert (prepared - upright).abs().mean() < 4 and prepared[:, :, :3].mean() > 200  # the band at the left


def test_the_source_folder_is_refused_as_the_target(dataset: Path):
    with pytest.raises(ValueError, match="originals are never modified"):
        main([str(dataset), str(dataset), "--no-progress"])
