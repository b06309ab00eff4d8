"""bf16 autocast (Lightning's `bf16-mixed`): every scheme's logits and gradients stay within bf16 rounding of fp32,
and the attention kernel chosen for short bf16 sequences on CPU computes what the fused kernel does."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_video.models import ATTENTIONS, VideoTransformer
from lightning_video.models.attention import EXPLICIT_CPU_BF16_MAX_KEYS, Attention, explicit_is_faster

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


@pytest.mark.parametrize("keys", [8, 197, EXPLICIT_CPU_BF16_MAX_KEYS])
def test_short_bf16_sequences_on_cpu_take_the_explicit_products_and_match_the_fused_kernel(keys: int):
    torch.manual_seed(0)
    attention = Attention(64, num_heads=4)
    tokens = torch.randn(3, keys, 64, dtype=torch.bfloat16)
    q, k, v = (t.transpose(1, 2) for t in attention.qkv.bfloat16()(tokens).unflatten(-1, (3, 4, -1)).unbind(2))
    assert explicit_is_faster(k)
    fused = F.scaled_dot_product_attention(q.float(), k.float(), v.float()).transpose(1, 2).flatten(2)
    assert relative_error(attention._attend(q, k, v), fused) < BF16_TOLERANCE


def test_fp32_long_or_gpu_sequences_keep_the_fused_kernel():
    assert not explicit_is_faster(torch.empty(1, 4, 8, 16))  # fp32
    assert not explicit_is_faster(torch.empty(1, 4, EXPLICIT_CPU_BF16_MAX_KEYS + 1, 16, dtype=torch.bfloat16))
    assert not explicit_is_faster(torch.empty(1, 4, 8, 16, dtype=torch.bfloat16, device="meta"))
