"""FLOP counting: fvcore's count of ViT-B/16 8×224 against hand counts of its matrix products and against torch's
FlopCounterMode, and the guards."""
from __future__ import annotations

import contextlib
import re

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from lightning_video import flops
from lightning_video.models import VideoTransformer, explicit_attention, head_groups

# The paper configuration: ViT-B/16 on 8 frames at 224, with the SSv2 head of TimeSformer Table 1.
FRAMES, PATCHES, DIM, DEPTH, PATCH, CLASSES = 8, (224 // 16) ** 2, 768, 12, 16, 174

# Hand counts in FLOPs (one multiply-add each). fvcore counts matrix products without their bias adds, and each
# LayerNorm as 5 FLOPs per element; it skips the other elementwise ops (residual adds, softmax, GELU, scaling).


def layer_norm(tokens: int) -> int:
    return 5 * tokens * DIM


def attention_branch(sequences: int, length: int) -> int:
    """norm, qkv, q·kᵀ and attn·v over all heads, proj; each of `sequences` attends within its `length` tokens."""
    tokens = sequences * length
    return layer_norm(tokens) + tokens * DIM * 3 * DIM + sequences * length * length * DIM * 2 + tokens * DIM * DIM


def mlp_branch(tokens: int) -> int:
    return layer_norm(tokens) + 2 * tokens * DIM * 4 * DIM


def stem_and_head() -> int:
    """Patch embedding of every frame; the final norm and the head on the (frame-averaged) cls token."""
    return FRAMES * PATCHES * (3 * PATCH * PATCH) * DIM + layer_norm(1) + DIM * CLASSES


def joint_gflops() -> float:
    """Every block attends over the whole clip: one cls token and T·S patches."""
    tokens = 1 + FRAMES * PATCHES
    return (DEPTH * (attention_branch(1, tokens) + mlp_branch(tokens)) + stem_and_head()) / 1e9


def space_gflops() -> float:
    """Each frame is a ViT sequence with its own cls token; the cls tokens are averaged before the final norm."""
    tokens = 1 + PATCHES
    return (DEPTH * (attention_branch(FRAMES, tokens) + mlp_branch(FRAMES * tokens)) + stem_and_head()) / 1e9


def divided_gflops() -> float:
    """Temporal attention across T frames at each location (no cls), `temporal_fc`, then spatial attention within
    each frame and a copy of the cls token, then the MLP over the clip sequence."""
    tokens = 1 + FRAMES * PATCHES
    temporal = attention_branch(PATCHES, FRAMES) + FRAMES * PATCHES * DIM * DIM
    spatial = attention_branch(FRAMES, 1 + PATCHES)
    return (DEPTH * (temporal + spatial + mlp_branch(tokens)) + stem_and_head()) / 1e9


def local_global_gflops() -> float:
    """Local attention in four T × H/2 × W/2 windows, each with a copy of the cls token; strided global attention
    in eight groups of T/2 × H/2 × W/2 patches (no cls) and `global_fc`; the MLP over the clip sequence."""
    tokens = 1 + FRAMES * PATCHES
    local = attention_branch(4, 1 + FRAMES * PATCHES // 4)
    strided = attention_branch(8, FRAMES * PATCHES // 8) + FRAMES * PATCHES * DIM * DIM
    return (DEPTH * (local + strided + mlp_branch(tokens)) + stem_and_head()) / 1e9


def axial_gflops() -> float:
    """Temporal attention per location and `temporal_fc`; width attention per row of each frame and `width_fc`;
    height attention per column of each frame with a copy of the cls token; the MLP over the clip sequence."""
    tokens, side = 1 + FRAMES * PATCHES, round(PATCHES ** 0.5)
    temporal = attention_branch(PATCHES, FRAMES) + FRAMES * PATCHES * DIM * DIM
    width = attention_branch(FRAMES * side, side) + FRAMES * PATCHES * DIM * DIM
    height = attention_branch(FRAMES * side, 1 + side)
    return (DEPTH * (temporal + width + height + mlp_branch(tokens)) + stem_and_head()) / 1e9


def xvit_gflops() -> float:
    """The space-only blocks (the shift of key and value channels between frames is free); the final norm on the T
    per-frame cls tokens, whose average the head reads."""
    per_frame = 1 + PATCHES
    blocks = DEPTH * (attention_branch(FRAMES, per_frame) + mlp_branch(FRAMES * per_frame))
    return (blocks + FRAMES * PATCHES * (3 * PATCH * PATCH) * DIM + layer_norm(FRAMES) + DIM * CLASSES) / 1e9


HAND_COUNTS = {"joint": joint_gflops, "space": space_gflops, "divided": divided_gflops,
               "local_global": local_global_gflops, "axial": axial_gflops, "xvit": xvit_gflops}


def zero_model(attention: str, **kwargs) -> VideoTransformer:
    """A bfloat16 model with zero weights: counts depend on neither, and skipping the init and tracing in bfloat16
    save seconds per ViT-B on CPU."""
    with torch.device("meta"):
        model = VideoTransformer(attention, **kwargs)
    model.to_empty(device="cpu").to(torch.bfloat16)
    for tensor in (*model.parameters(), *model.buffers()):
        tensor.detach().zero_()
    return model


@pytest.fixture(scope="module")
def vit_b16_counts():
    """`count()` of ViT-B/16 8×224 by scheme, each traced once (a forward pass of ~150-200 GFLOPs)."""
    counts = {}

    def get(attention: str) -> tuple[float, float]:
        if attention not in counts:
            counts[attention] = flops.count(zero_model(attention, num_classes=CLASSES))
        return counts[attention]

    return get


@pytest.mark.parametrize("attention", list(HAND_COUNTS))
def test_count_equals_the_hand_count(vit_b16_counts, attention: str):
    gflops, _ = vit_b16_counts(attention)
    assert gflops == HAND_COUNTS[attention]()


def test_divided_count_matches_timesformer_paper(vit_b16_counts):
    """TimeSformer: 0.59 TFLOPs for 3 views of 8×224; 121.4M parameters with the SSv2 head (Table 1)."""
    gflops, params = vit_b16_counts("divided")
    assert gflops == pytest.approx(590 / 3, rel=0.005)
    assert params == pytest.approx(121.4, abs=0.1)


@pytest.mark.parametrize("temporal", ["mean", "ta", "summary"])
def test_xvit_costs_what_space_only_costs_within_a_few_percent(vit_b16_counts, temporal: str):
    """X-ViT's claim: video attention at the cost of a space-only model (paper: 425 GFLOPs for 3 views)."""
    space, _ = vit_b16_counts("space")
    xvit, _ = flops.count(zero_model("xvit", num_classes=CLASSES, attention_options={"temporal": temporal}))
    assert xvit == pytest.approx(space, rel=0.03)


TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=1, num_heads=4)


@pytest.mark.parametrize("attention", list(HAND_COUNTS))
def test_fused_attention_handle_counts_what_fvcore_counts_on_the_explicit_path(attention: str, monkeypatch):
    model = VideoTransformer(attention, **TINY)
    fused, _ = flops.count(model)
    monkeypatch.setattr(flops, "ATTENTION_HANDLES", {})  # fvcore's own matmul handles only
    with explicit_attention():
        explicit, _ = flops.count(model)
    assert explicit == fused


def flop_counter_total(model: VideoTransformer, device: str) -> int:
    """torch's `FlopCounterMode` count of one view's forward pass, the model as written (as `flops.count` counts it),
    on `device` ("meta": a model built there; shapes only, as Lightning's `measure_flops` counts)."""
    video = torch.zeros(1, 3, model.num_frames, model.img_size, model.img_size, device=device)
    with torch.no_grad(), model.as_written(), FlopCounterMode(display=False) as counter:
        model(video)
    return counter.get_total_flops()


def layer_norm_elements(model: VideoTransformer) -> int:
    """Elements normalised by the LayerNorms in one view's forward pass."""
    elements = []
    hooks = [module.register_forward_hook(lambda module, inputs, output: elements.append(inputs[0].numel()))
             for module in model.modules() if isinstance(module, nn.LayerNorm)]
    try:
        flop_counter_total(model, "cpu")
    finally:
        for hook in hooks:
            hook.remove()
    return sum(elements)


def flop_counter_expected(model: VideoTransformer) -> int:
    """What FlopCounterMode must count, from fvcore's count: 2 FLOPs per multiply-add (fvcore: 1), no norms (fvcore:
    5 per LayerNorm element)."""
    return 2 * (round(flops.count(model)[0] * 1e9) - 5 * layer_norm_elements(model))


@pytest.mark.parametrize("attention", list(HAND_COUNTS))
def test_flop_counter_mode_cross_checks_fvcore(attention: str, monkeypatch: pytest.MonkeyPatch):
    """An independent count: torch's FlopCounterMode is exactly 2 × (fvcore's count − 5 × the normalised elements).
    Attention: both count q·kᵀ and attn·v and neither the softmax; FlopCounterMode counts the fused kernels of CUDA
    (flash, memory-efficient, cuDNN) and, on the meta device, the matrix products SDPA runs as there, but has no
    formula for CPU's fused kernel (`_scaled_dot_product_flash_attention_for_cpu`): on a CPU it leaves attention out,
    where our fvcore handle counts it."""
    torch.manual_seed(0)
    model = VideoTransformer(attention, **TINY).eval()
    expected = flop_counter_expected(model)
    with torch.device("meta"):
        on_meta = VideoTransformer(attention, **TINY).eval()
    assert flop_counter_total(on_meta, "meta") == expected
    with explicit_attention():
        assert flop_counter_total(model, "cpu") == expected
    fvcore = flops.count(model)[0]
    monkeypatch.setattr(flops, "ATTENTION_HANDLES", {name: lambda inputs, outputs: 0
                                                     for name in flops.ATTENTION_HANDLES})
    attention_macs = round((fvcore - flops.count(model)[0]) * 1e9)
    assert attention_macs > 0
    assert flop_counter_total(model, "cpu") == expected - 2 * attention_macs  # CPU's fused kernel: uncounted


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FlopCounterMode's fused-attention formulas are CUDA's")
@pytest.mark.parametrize("attention", list(HAND_COUNTS))
def test_flop_counter_mode_counts_cudas_fused_attention_as_fvcore_does(attention: str):
    model = VideoTransformer(attention, **TINY).eval()
    expected = flop_counter_expected(model)
    assert flop_counter_total(model.cuda().to(torch.bfloat16), "cuda") == expected  # a dtype the fused kernels take


def test_uncounted_attention_is_an_error_not_zero(monkeypatch):
    monkeypatch.setattr(flops, "ATTENTION_HANDLES", {})
    with pytest.raises(RuntimeError, match="aten::scaled_dot_product_attention"):
        flops.count(VideoTransformer("divided", **TINY))


def test_bf16_on_cpu_is_counted_through_sdpa_and_an_opaque_attention_is_an_error(monkeypatch):
    monkeypatch.setattr(head_groups, "GROUP_ELEMENTS", 1)  # every bf16 attention on CPU through head_groups
    model = VideoTransformer("joint", **TINY)
    fp32 = flops.count(model)[0]
    assert flops.count(model.to(torch.bfloat16))[0] == pytest.approx(fp32, rel=1e-9)  # head_groups left for SDPA
    monkeypatch.setattr(flops, "fused_attention", contextlib.nullcontext)  # head_groups traced: a prim::PythonOp
    with pytest.raises(RuntimeError, match="prim::PythonOp"):
        flops.count(model)


def test_a_model_compiled_in_place_is_counted_like_the_eager_one():
    model = VideoTransformer("divided", **TINY)
    eager = flops.count(model)
    model.compile()  # lazy: nothing compiles unless the model is called through it
    assert flops.count(model) == eager


def test_count_restores_training_modes():
    model = VideoTransformer("divided", **TINY).train()
    model.blocks[0].mlp.eval()
    flops.count(model)
    assert model.training and model.blocks[0].attn.training and not model.blocks[0].mlp.training


def test_command_line_prints_gflops_and_params(capsys):
    flops.main(["--attention", "space", "--num_frames", "2", "--img_size", "32", "--patch_size", "16",
                "--embed_dim", "64", "--depth", "1", "--num_heads", "2"])
    assert re.fullmatch(r"space 2x32: [\d.e-]+ GFLOPs/view, [\d.]+M params\n", capsys.readouterr().out)
