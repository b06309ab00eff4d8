"""bf16 autocast (Lightning's `bf16-mixed`): every scheme's logits and gradients stay within bf16 rounding of fp32,
and the attention bf16 takes on CPU (explicit products, or `head_groups` for long sequences) computes softmax attention
and its gradients exactly."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from lightning_video.models import ATTENTIONS, VideoTransformer
from lightning_video.models import head_groups
from lightning_video.models.attention import Attention, cpu_bf16_path

TINY = dict(num_classes=5, img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4,
            drop_path_rate=0.0)
BF16_TOLERANCE = 2e-2  # bf16 keeps 8 significant bits (relative step 2**-8 ≈ 4e-3); a few roundings add up


def relative_error(value: torch.Tensor, reference: torch.Tensor) -> float:
    """|value - reference| / |reference| (Frobenius norms); 0 where both are zero (a parameter no logit uses)."""
    return ((value.float() - reference).norm() / reference.norm().clamp_min(1e-30)).item()


@pytest.mark.parametrize("attention", list(ATTENTIONS))
def test_bf16_autocast_logits_and_gradients_stay_within_bf16_rounding_of_fp32(attention: str):
    torch.manual_seed(0)
    model = VideoTransformer(attention, **TINY)
    with torch.no_grad():  # the fresh model's zero tensors (`time_embed`, `*_fc`, biases) would hide their paths
        for parameter in model.parameters():
            parameter.normal_(std=0.2)
    video = torch.randn(2, 3, 4, 32, 32)
    results = []
    for enabled in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            logits = model(video)
        F.cross_entropy(logits.float(), torch.tensor([1, 3])).backward()
        results.append((logits, [parameter.grad.clone() for parameter in model.parameters()]))
    (fp32_logits, fp32_grads), (bf16_logits, bf16_grads) = results
    assert bf16_logits.dtype == torch.bfloat16
    assert relative_error(bf16_logits, fp32_logits) < BF16_TOLERANCE
    gradient_errors = [relative_error(bf16, fp32) for bf16, fp32 in zip(bf16_grads, fp32_grads)]
    assert max(gradient_errors) < 5 * BF16_TOLERANCE  # a gradient is the sum of many rounded products
    assert sum(gradient_errors) / len(gradient_errors) < BF16_TOLERANCE


def textbook_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    return ((q @ k.transpose(-2, -1)) * scale).softmax(dim=-1) @ v


@pytest.mark.parametrize("group_elements", [10**9, 2 * 9 * 40, 9 * 40 - 1])  # all heads, two per group, one
@pytest.mark.parametrize("queries", [40, 1])  # every token; the last block's cls query alone
def test_head_groups_equal_textbook_attention_and_its_gradients_in_float64(monkeypatch, group_elements: int,
                                                                           queries: int):
    monkeypatch.setattr(head_groups, "GROUP_ELEMENTS", group_elements)
    torch.manual_seed(0)
    layout = torch.randn(2, 40, 3, 5, 16, dtype=torch.float64)  # [batch, tokens, q/k/v, heads, head_dim] as `qkv`
    q, k, v = (t.transpose(1, 2) for t in layout.requires_grad_().unbind(2))  # the strided views the model passes
    q = q[:, :, :queries]
    upstream = torch.randn(2, 5, queries, 16, dtype=torch.float64)
    results = []
    for kernel in (textbook_attention, head_groups.attention):
        out = kernel(q, k, v, 0.3)
        (gradient,) = torch.autograd.grad(out, layout, upstream)
        results.append((out, gradient))
    (expected, expected_gradient), (out, gradient) = results
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gradient, expected_gradient, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("keys, path", [(8, "explicit"), (197, "head_groups"), (1569, "head_groups")])
def test_bf16_attention_on_cpu_takes_its_own_path_and_matches_the_fused_kernel_in_fp32(monkeypatch, keys: int,
                                                                                        path: str):
    monkeypatch.setattr(head_groups, "GROUP_ELEMENTS", 4 * 197 * 197 - 1)  # 197 keys: weights beyond one group
    torch.manual_seed(0)
    attention = Attention(64, num_heads=4)
    tokens = torch.randn(3, keys, 64, dtype=torch.bfloat16)
    q, k, v = (t.transpose(1, 2) for t in attention.qkv.bfloat16()(tokens).unflatten(-1, (3, 4, -1)).unbind(2))
    assert cpu_bf16_path(q, k, dropout=0.0) == path
    fused = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).transpose(1, 2).flatten(2)
    assert relative_error(attention._attend(q, k, v), fused) < BF16_TOLERANCE


def test_fp32_gpu_dropout_or_compiled_attention_keeps_the_fused_kernel():
    bf16 = torch.empty(1, 4, 8, 16, dtype=torch.bfloat16)
    assert cpu_bf16_path(bf16, bf16, dropout=0.0) == "explicit"
    assert cpu_bf16_path(bf16.float(), bf16.float(), dropout=0.0) is None
    assert cpu_bf16_path(bf16.to("meta"), bf16.to("meta"), dropout=0.0) is None  # not on CPU
    assert cpu_bf16_path(bf16, bf16, dropout=0.1) is None
    compiled = torch.compile(lambda keys: torch.tensor(cpu_bf16_path(keys, keys, dropout=0.0) is None), backend="eager")
    assert compiled(bf16).item()


@pytest.mark.parametrize("native", [True, False])
def test_bf16_training_on_a_cpu_without_bf16_instructions_warns_and_names_the_fix(monkeypatch, native: bool):
    from pytorch_lightning import Trainer

    from lightning_video.cli import _warn_if_bf16_is_emulated

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    trainer = Trainer(accelerator="cpu", precision="bf16-mixed", logger=False, enable_checkpointing=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_bf16_is_emulated(trainer)
        _warn_if_bf16_is_emulated(Trainer(accelerator="cpu", logger=False, enable_checkpointing=False))  # fp32
    messages = [str(warning.message) for warning in caught]
    assert messages == ([] if native else [messages[0]])
    assert native or "--trainer.precision 32-true" in messages[0] and "emulated" in messages[0]
