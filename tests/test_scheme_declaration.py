"""A scheme is one declared object: a new one, defined here alone, trains, reloads and is counted; schemes given as
objects or by name build the same model; their options show on the command line and a wrong one is refused."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_video import cli, flops
from lightning_video.models import ATTENTIONS, Scheme, VideoTransformer, load_pretrained
from lightning_video.models.block import Block, TokenGrid, split_cls
from lightning_video.models.grouping import Grouping
from lightning_video.models.xvit import XViT

TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4,
            drop_path_rate=0.0)
FRAMES, PATCHES, DIM, CLASSES = 4, 16, 32, 5


def locations(grid: TokenGrid) -> Grouping:
    """One group per spatial location, holding its T patches."""
    return Grouping((grid.patches_per_frame, grid.frames), (0, 1))


class TemporalOnly(Scheme):
    """Each patch attends to the patches at its location in the other frames, with a copy of the cls token (whose
    update is the average over locations); no spatial step."""

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        cls, patches = block.attend_groups_with_cls(*split_cls(x), locations(block.grid), cls_only)
        return cls if cls_only else torch.cat([cls, patches], dim=1)


@pytest.fixture
def temporal_only(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(ATTENTIONS, "temporal_only", TemporalOnly)  # the registration, undone after the test
    return "temporal_only"


def test_a_scheme_defined_here_trains_every_parameter(temporal_only: str):
    torch.manual_seed(0)
    model = VideoTransformer(temporal_only, **TINY)
    assert model.attention == "temporal_only"
    video, labels = torch.randn(4, 3, FRAMES, 32, 32), torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(10):  # memorise four clips
        optimizer.zero_grad()
        loss = F.cross_entropy(model(video), labels)
        loss.backward()
        assert all(param.grad is not None for param in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 3


def test_a_scheme_defined_here_reloads_to_the_same_logits(temporal_only: str, tmp_path):
    trained = VideoTransformer(temporal_only, **TINY).eval()
    with torch.no_grad():
        for param in trained.parameters():
            param.normal_(std=0.2)
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    reloaded = VideoTransformer(temporal_only, **TINY).eval()
    reloaded.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    video = torch.randn(2, 3, FRAMES, 32, 32)
    with torch.no_grad():
        assert torch.equal(reloaded(video), trained(video))


def test_a_scheme_defined_here_is_counted_by_hand(temporal_only: str):
    """Per block: norm, qkv and proj on the PATCHES groups of a cls copy and T patches, each group's q·kᵀ and
    attn·v; the MLP on the clip sequence. The stem, the final norm on the one cls token and the head."""
    tokens, grouped = 1 + FRAMES * PATCHES, PATCHES * (1 + FRAMES)
    attention = 5 * grouped * DIM + grouped * DIM * 4 * DIM + PATCHES * (1 + FRAMES) ** 2 * DIM * 2
    mlp = 5 * tokens * DIM + 2 * tokens * DIM * 4 * DIM
    stem_and_head = FRAMES * PATCHES * 3 * 8 * 8 * DIM + 5 * DIM + DIM * CLASSES
    gflops, _ = flops.count(VideoTransformer(temporal_only, **TINY))
    assert gflops == (TINY["depth"] * (attention + mlp) + stem_and_head) / 1e9


class AcrossFrames(Scheme):
    """Patches attend across frames through an extra attention of a name no shipped scheme uses (the cls token sits
    out), then the whole clip through the image attention."""

    extra_attentions = ("across_frames",)

    def attend(self, block: Block, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        cls, patches = split_cls(x)
        patches = block.attend_groups(patches, locations(block.grid), "across_frames")
        return block.attend_sequence(torch.cat([cls, patches], dim=1), cls_only)


def test_declared_extra_attentions_start_as_the_image_model():
    """Init and image-weight loading follow the declaration: the extra attention's `_fc` starts at zero and its norm
    and attention are copied from the image block's, so the model computes what joint attention does."""
    image = VideoTransformer("space", **TINY)
    with torch.no_grad():
        for param in image.parameters():
            param.normal_(std=0.2)
    model, joint = VideoTransformer(AcrossFrames(), **TINY).eval(), VideoTransformer("joint", **TINY).eval()
    assert all(torch.equal(block.across_frames_fc.weight, torch.zeros(DIM, DIM)) for block in model.blocks)
    report = load_pretrained(model, image.state_dict())
    load_pretrained(joint, image.state_dict())
    assert report.adapted["blocks.1.across_frames_attn.qkv.weight"].startswith("copied from blocks.1.attn.qkv.weight")
    assert "blocks.0.across_frames_fc.weight" in report.skipped and not report.missing and not report.unexpected
    video = torch.randn(2, 3, FRAMES, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(video), joint(video))


def test_a_scheme_object_and_its_name_with_options_build_the_same_model():
    torch.manual_seed(0)
    by_object = VideoTransformer(XViT(mix="k", temporal="ta"), **TINY)
    torch.manual_seed(0)
    by_name = VideoTransformer("xvit", **TINY, attention_options={"mix": "k", "temporal": "ta"})
    assert (by_object.attention, by_object.scheme.options()) == (by_name.attention, by_name.scheme.options())
    assert by_object.state_dict().keys() == by_name.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(by_object.state_dict().values(), by_name.state_dict().values()))
    with pytest.raises(ValueError, match="give mix to it instead"):
        VideoTransformer(XViT(), **TINY, attention_options={"mix": "k"})


XVIT_OPTIONS = "mix, shift_div, window, mix_layers, temporal, temporal_layers, segment_frames"


@pytest.mark.parametrize(("attention", "valid"),
                         [("divided", "none"), ("temporal_only", "none"), ("xvit", XVIT_OPTIONS)])
def test_an_unknown_option_of_a_named_scheme_is_refused_with_the_valid_ones(temporal_only: str, attention: str,
                                                                            valid: str):
    with pytest.raises(ValueError, match=f"{attention}' has no option bogus; valid attention_options: {valid}$"):
        VideoTransformer(attention, **TINY, attention_options={"bogus": 1})


CONFIG = ["fit", "--print_config",
          "--model.backbone.init_args.attention", "XViT"]


def test_print_config_lists_every_xvit_option_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*CONFIG, "--model.backbone.init_args.attention.shift_div", "8"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert ("      attention:\n        class_path: lightning_video.models.xvit.XViT\n        init_args:\n"
            "          mix: kv\n          shift_div: 8\n          window: 1\n          mix_layers: all\n"
            "          temporal: mean\n          temporal_layers: 1\n") in printed


def test_a_wrong_xvit_option_is_refused_by_the_parser_with_the_accepted_ones(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([*CONFIG, "--model.backbone.init_args.attention.mixx", "k"])
    assert exit_.value.code == 2
    assert f"Option 'mixx' is not accepted; accepted: {XVIT_OPTIONS}" in capsys.readouterr().err


def test_help_documents_every_xvit_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit", "--model.backbone.init_args.attention.help", "XViT"])
    assert exit_.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())  # argparse wraps the text
    documented = {"mix": "what is shifted between neighbour frames", "shift_div": "4 mixes ρ = 50%",
                  "window": "the temporal window t_w", "mix_layers": "which layers mix",
                  "temporal": "how the clip is read out", "temporal_layers": 'blocks in the "ta" head',
                  "segment_frames": "the official `NUM_SEGMENTS`"}
    for option, documentation in documented.items():
        assert f"--attention.{option} " in printed and documentation in printed, option
