"""`lightning-video export --format onnx`: every scheme exports with a free batch size and its clip settings in the
metadata, onnxruntime's logits are PyTorch's within 1e-4 relative, and a bad checkpoint is refused clearly."""
from __future__ import annotations

import json
import re
from pathlib import Path

import onnxruntime
import pytest
import torch
import yaml

from lightning_video import load_checkpoint
from lightning_video.export import main
from lightning_video.models.checkpoint_file import CheckpointError, save_atomically, with_digest
from lightning_video.models.onnx_export import onnx_file_metadata
from lightning_video.training.runs import CONFIG_KEY
from test_load_checkpoint import SCHEMES, fit


def with_random_weights(path: Path) -> Path:
    """The checkpoint with every weight drawn at random, so that no zero-initialised layer (a fresh `temporal_fc`,
    `time_embed`) hides a part of the graph from the comparison."""
    checkpoint = torch.load(path, weights_only=True)
    generator = torch.Generator().manual_seed(0)
    checkpoint["state_dict"] = {name: torch.randn(value.shape, generator=generator) * 0.2 if value.is_floating_point()
                                else value for name, value in checkpoint["state_dict"].items()}
    save_atomically(with_digest(checkpoint), path)
    return path


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_every_scheme_exports_with_its_clip_settings_and_onnxruntime_gives_pytorchs_logits(
        scheme: str, motion_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    checkpoint = with_random_weights(fit(scheme, motion_root, tmp_path / "runs")[1])
    capsys.readouterr()
    assert main(["--ckpt_path", str(checkpoint), "--format", "onnx", "--out", str(tmp_path / "model.onnx")]) == 0
    printed = float(re.search(r"max relative logit error (\S+)", capsys.readouterr().out)[1])
    assert printed < 1e-4
    # independently of the command's own check: other batch sizes, other clips
    model = load_checkpoint(checkpoint).model
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        video = torch.randn(batch, 3, 4, 16, 16, generator=torch.Generator().manual_seed(batch))
        got = torch.from_numpy(session.run(["logits"], {"video": video.numpy()})[0])
        with torch.no_grad():
            expected = model(video)
        assert got.shape == (batch, 2)
        assert ((got - expected).abs().max() / expected.abs().max()).item() < 1e-4
    metadata = {key: json.loads(value) for key, value in onnx_file_metadata(tmp_path / "model.onnx").items()}
    assert metadata["num_frames"] == 4 and metadata["crop_size"] == 16
    assert metadata["mean"] == [0.45] * 3 and metadata["std"] == [0.225] * 3
    assert metadata["class_names"] == ["left", "right"]
    assert metadata["clip_settings"] == model.clip_settings.to_dict()
    assert metadata["attention"] == model.backbone.attention


@pytest.fixture(scope="module")
def divided(motion_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fit("divided", motion_root, tmp_path_factory.mktemp("runs"))[1]


def test_a_checkpoint_whose_weights_do_not_fit_its_config_is_refused(divided: Path, tmp_path: Path):
    checkpoint = torch.load(divided, weights_only=True)
    config = yaml.safe_load(checkpoint[CONFIG_KEY])
    config["model"]["backbone"]["init_args"]["attention"] = "joint"  # divided's weights have temporal_* layers more
    checkpoint[CONFIG_KEY] = yaml.safe_dump(config)
    save_atomically(with_digest(checkpoint), tmp_path / "mismatched.ckpt")
    with pytest.raises(ValueError, match=r"(?s)its weights do not fit the model its config describes .*temporal"):
        main(["--ckpt_path", str(tmp_path / "mismatched.ckpt"), "--out", str(tmp_path / "model.onnx")])
    assert not (tmp_path / "model.onnx").exists()


def test_a_malformed_checkpoint_is_refused(divided: Path, tmp_path: Path):
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(divided.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match="damaged.ckpt"):
        main(["--ckpt_path", str(damaged), "--out", str(tmp_path / "model.onnx")])
    weights_only = tmp_path / "weights.ckpt"
    torch.save({"state_dict": torch.load(divided, weights_only=True)["state_dict"]}, weights_only)
    with pytest.raises(ValueError, match="holds no run config"):
        main(["--ckpt_path", str(weights_only), "--out", str(tmp_path / "model.onnx")])
    with pytest.raises(FileNotFoundError, match="missing.ckpt: no such file"):
        main(["--ckpt_path", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "model.onnx")])
    assert not (tmp_path / "model.onnx").exists()
