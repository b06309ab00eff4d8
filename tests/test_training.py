"""The training recipe's pieces: mixing and soft targets, the loss, weight-decay groups, the global batch, video
predictions, the compute monitor, the NaN stop and multi-label training."""
from __future__ import annotations

import faulthandler
import os
import socket
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lightning_video.training import monitoring
from lightning_video.training.global_batch import GlobalBatch
from lightning_video.training.losses import Mixing, classification_loss, one_hot_per_head
from lightning_video.training.metrics import VideoPredictions, classification_metrics
from lightning_video.models import VideoTransformer
from lightning_video.training.module import VideoClassifier
from lightning_video.training.monitoring import ComputeMonitor
from lightning_video.training.optim import parameter_groups

CLASSES = 4


def tiny_backbone(**overrides) -> VideoTransformer:
    settings = dict(attention="divided", num_classes=CLASSES, img_size=16, patch_size=8, num_frames=4, embed_dim=32,
                    depth=1, num_heads=2)
    return VideoTransformer(**{**settings, **overrides})


def loader(videos: int, multi_label: bool = False, nan_at: tuple[int, ...] = ()) -> DataLoader:
    """Batches of 2 random clips in the datamodule's format; the clips at `nan_at` are NaN."""
    generator = torch.Generator().manual_seed(0)
    samples = []
    for index in range(videos):
        video = torch.randn(3, 4, 16, 16, generator=generator)
        if index in nan_at:
            video[:] = float("nan")
        label = (torch.rand(CLASSES, generator=generator) < 0.5).int() if multi_label else index % CLASSES
        samples.append({"video": video, "label": label, "video_index": index, "clip_index": 0, "aug_index": 1,
                        "skipped": 0, "valid": True})
    return DataLoader(samples, batch_size=2)


def trainer(**overrides) -> pl.Trainer:
    settings = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, max_epochs=1)
    return pl.Trainer(**{**settings, **overrides})


def test_mixup_mixes_each_clip_with_the_reversed_batch():
    torch.manual_seed(0)
    video, targets = torch.randn(4, 3, 2, 8, 8), torch.eye(4)
    mixed, soft = Mixing(mixup_alpha=0.4)(video, targets)
    weight = soft[0, 0]
    torch.testing.assert_close(mixed, video * weight + video.flip(0) * (1 - weight))
    torch.testing.assert_close(soft, targets * weight + targets.flip(0) * (1 - weight))


def test_cutmix_pastes_one_box_through_all_frames_and_weights_the_labels_by_its_area():
    torch.manual_seed(1)
    video = torch.arange(4.0)[:, None, None, None, None].expand(4, 3, 2, 16, 16)
    mixed, soft = Mixing(cutmix_alpha=1.0)(video, torch.eye(4))
    pasted = mixed[0] == 3  # clip 0 receives its box from clip 3
    assert pasted.any() and not pasted.all()
    assert (pasted == pasted[0, 0]).all()  # the same box in every channel and frame
    assert soft[0, 3].item() == pytest.approx(pasted[0, 0].float().mean().item())
    assert soft[0, 0].item() == pytest.approx(1 - soft[0, 3].item())


def test_mixing_is_off_by_default_and_rejects_negative_alphas():
    video, targets = torch.randn(2, 3, 2, 8, 8), torch.eye(2)
    assert Mixing()(video, targets) == (video, targets)
    with pytest.raises(ValueError, match="mixup_alpha=-1"):
        Mixing(mixup_alpha=-1)


def test_loss_reads_class_indices_probabilities_and_multi_hot_targets():
    logits, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    expected = F.cross_entropy(logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(classification_loss(logits, labels, False, 0.1), expected)
    torch.testing.assert_close(classification_loss(logits, F.one_hot(labels, 5).float(), False, 0.1), expected)
    multi_hot = (torch.rand(6, 5) < 0.5).int()
    smoothed = multi_hot * 0.9 + 0.1 / 5
    torch.testing.assert_close(classification_loss(logits, multi_hot, True, 0.1),
                               F.binary_cross_entropy_with_logits(logits, smoothed))


def test_norms_biases_and_embeddings_get_no_weight_decay():
    backbone = tiny_backbone(attention="xvit", attention_options={"temporal": "ta"})
    decay, no_decay = parameter_groups(backbone, no_weight_decay=True)
    names = {id(param): name for name, param in backbone.named_parameters()}
    exempt = {names[id(param)] for param in no_decay["params"]}
    assert no_decay["weight_decay"] == 0.0 and "weight_decay" not in decay
    assert {"cls_token", "pos_embed", "time_embed", "temporal_head.cls_token", "norm.weight", "blocks.0.norm1.bias",
            "temporal_head.mlp_head.0.weight", "blocks.0.attn.qkv.bias"} <= exempt
    assert all(param.ndim == 2 or param.ndim == 4 for param in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(backbone.parameters()))
    (everything,) = parameter_groups(backbone, no_weight_decay=False)
    assert len(everything["params"]) == len(list(backbone.parameters()))


def test_a_list_of_name_patterns_exempts_exactly_what_it_matches():
    """The official X-ViT's rule: every parameter decays but the biases of its head modules."""
    model = VideoClassifier(tiny_backbone(attention="xvit", attention_options={"temporal": "ta"}))
    decay, no_decay = parameter_groups(model, ["backbone.head.bias", "backbone.temporal_head.mlp_head.*.bias"])
    names = {id(param): name for name, param in model.named_parameters()}
    assert sorted(names[id(param)] for param in no_decay["params"]) == [
        "backbone.head.bias", "backbone.temporal_head.mlp_head.0.bias", "backbone.temporal_head.mlp_head.1.bias"]
    assert len(decay["params"]) + 3 == len(list(model.parameters()))
    with pytest.raises(ValueError, match=r"model.no_weight_decay: backbone.heads.bias match no parameter; names look"):
        parameter_groups(model, ["backbone.heads.bias"])


def test_the_optimizer_gets_the_groups():
    model = VideoClassifier(tiny_backbone(), optimizer=lambda params: torch.optim.SGD(params, lr=0.1,
                                                                                      weight_decay=1e-4))
    optimizer = model.configure_optimizers()["optimizer"]
    assert [group["weight_decay"] for group in optimizer.param_groups] == [1e-4, 0.0]


def test_global_batch_sets_the_accumulation_and_rejects_a_remainder():
    fake = SimpleNamespace(datamodule=SimpleNamespace(batch_size=4), accumulate_grad_batches=1, world_size=2,
                           num_devices=2, num_nodes=1)
    GlobalBatch(64).on_fit_start(fake, None)
    assert fake.accumulate_grad_batches == 8
    fake.accumulate_grad_batches = 1
    with pytest.raises(ValueError, match=r"not a multiple of data.batch_size × devices × nodes = 4 × 2 × 1 = 8"):
        GlobalBatch(60).on_fit_start(fake, None)
    with pytest.raises(ValueError, match="set only one"):
        GlobalBatch(64).on_fit_start(SimpleNamespace(**{**vars(fake), "accumulate_grad_batches": 2}), None)


def test_video_predictions_average_each_view_once():
    metric = VideoPredictions()
    probs = torch.tensor([[0.8, 0.2], [0.4, 0.6], [0.1, 0.9], [0.4, 0.6]])  # the last repeats view (0, 0, 1): padding
    keys = torch.tensor([[0, 0, 0], [0, 0, 1], [1, 0, 0], [0, 0, 1]])
    metric.update(probs, torch.tensor([0, 0, 1, 0]), *keys.T)
    per_video = metric.compute()
    assert per_video.videos.tolist() == [0, 1] and per_video.labels.tolist() == [0, 1]
    torch.testing.assert_close(per_video.probs, torch.tensor([[0.6, 0.4], [0.1, 0.9]]))


def test_compute_monitor_warns_instead_of_failing_when_flops_cannot_be_counted(monkeypatch: pytest.MonkeyPatch):
    def uncountable(model: object) -> None:
        raise RuntimeError("fvcore cannot count aten::mystery")

    monkeypatch.setattr(monitoring.flops, "count", uncountable)
    logged = []
    logger = SimpleNamespace(log_metrics=lambda metrics, step: logged.append(metrics))
    fake = SimpleNamespace(is_global_zero=True, loggers=[logger], global_step=0)
    with pytest.warns(UserWarning, match="GFLOPs per view not logged: fvcore cannot count aten::mystery"):
        ComputeMonitor().on_fit_start(fake, VideoClassifier(tiny_backbone()))
    assert list(logged[0]) == ["model/params_M"] and logged[0]["model/params_M"] > 0


def test_a_nan_loss_stops_training_with_the_step_named():
    model = VideoClassifier(tiny_backbone())
    with pytest.raises(FloatingPointError, match=r"not finite at global step 2 \(epoch 0, batch 2"):
        trainer().fit(model, train_dataloaders=loader(8, nan_at=(4, 5)))


def fit_with_a_nan_on_rank_one(rank: int, port: int, out: str) -> None:
    """One of two DDP processes (started here, as torchrun would); writes the error that stopped it."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", NODE_RANK="0",
                      RANK=str(rank), LOCAL_RANK=str(rank))
    model = VideoClassifier(tiny_backbone(), optimizer=partial(torch.optim.SGD, lr=0.01))
    try:  # the DistributedSampler gives rank 1 clips 1, 3, 5, 7: its second batch holds the NaN clip 5
        trainer(strategy="ddp", devices=2).fit(model, train_dataloaders=loader(8, nan_at=(5,)))
        error = "finished"
    except FloatingPointError as raised:
        error = str(raised)
    finally:  # gloo's threads, left running at exit, can abort the process ("terminate called without ...")
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    (Path(out) / f"rank{rank}.txt").write_text(error)


def test_a_nan_on_one_rank_stops_every_rank_at_the_same_step(tmp_path: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    faulthandler.dump_traceback_later(120, exit=True)  # a rank left waiting would hang the suite: fail it instead
    try:
        mp.spawn(fit_with_a_nan_on_rank_one, args=(port, str(tmp_path)), nprocs=2)
    finally:
        faulthandler.cancel_dump_traceback_later()
    for rank in (0, 1):
        assert "not finite at global step 1 (epoch 0, batch 1" in (tmp_path / f"rank{rank}.txt").read_text()


def test_multi_label_training_with_mixup_logs_map_per_clip_and_per_video():
    model = VideoClassifier(tiny_backbone(), multi_label=True, mixing=Mixing(mixup_alpha=0.4, cutmix_alpha=1.0),
                            optimizer=lambda params: torch.optim.SGD(params, lr=0.01))
    fit = trainer(limit_train_batches=2, num_sanity_val_steps=0)
    fit.fit(model, train_dataloaders=loader(4, multi_label=True), val_dataloaders=loader(4, multi_label=True))
    assert torch.isfinite(fit.callback_metrics["train/loss"]) and 0 <= fit.callback_metrics["val/clip_map"] <= 1
    (result,) = fit.test(model, loader(4, multi_label=True), verbose=False)
    assert 0 <= result["test/video_map"] <= 1 and result["test/videos"] == 4


def test_top5_stays_top5_when_the_first_batch_is_one_class():
    """Validation lists are sorted by class; a first batch of one class, scored by an untrained model, once made
    torchmetrics share one state between top-5 and top-1."""
    metrics = classification_metrics(8, multi_label=False)
    metrics.update(torch.arange(8.0).expand(16, 8), torch.zeros(16, dtype=torch.long))  # class 0 ranked last
    metrics.update(torch.eye(8)[torch.arange(16) % 8] * 5, torch.arange(16) % 8)  # every sample right
    result = metrics.compute()
    assert result["top1"] == pytest.approx(0.5) and result["top5"] == pytest.approx(0.5)
    metrics.reset()
    metrics.update(torch.arange(8.0).expand(16, 8), torch.full((16,), 4))  # class 4: 4th of 8 → in the top 5
    assert metrics.compute()["top5"] == 1 and metrics.compute()["top1"] == 0


def test_compiled_backbone_trains_to_the_same_weights_under_the_same_names():
    trained = []
    for compiled in (False, True):
        torch.manual_seed(0)
        model = VideoClassifier(tiny_backbone(drop_path_rate=0.0), compile=compiled)
        assert (model.backbone._compiled_call_impl is not None) == compiled  # nn.Module.compile's in-place forward
        trainer(limit_val_batches=0).fit(model, loader(4))
        trained.append(model.state_dict())
    assert list(trained[1]) == list(trained[0])
    for name, weight in trained[0].items():
        torch.testing.assert_close(trained[1][name], weight, rtol=1e-4, atol=1e-5, msg=name)


def test_the_loss_of_several_heads_is_the_sum_of_each_heads_smoothed_cross_entropy():
    logits, labels = torch.randn(3, 7), torch.tensor([[0, 1], [2, 3], [1, 0]])  # heads of 3 and 4 classes
    expected = (F.cross_entropy(logits[:, :3], labels[:, 0], label_smoothing=0.3) +
                F.cross_entropy(logits[:, 3:], labels[:, 1], label_smoothing=0.3))
    assert classification_loss(logits, labels, False, 0.3, [3, 4]) == pytest.approx(expected.item())
    targets = one_hot_per_head(labels, [3, 4])  # what Mixup and CutMix mix: each head's one-hot, side by side
    assert targets.tolist()[1] == [0, 0, 1, 0, 0, 0, 1]
    assert classification_loss(logits, targets, False, 0.3, [3, 4]) == pytest.approx(expected.item())
