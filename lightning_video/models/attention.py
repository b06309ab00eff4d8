"""Multi-head self-attention shared by every scheme, with one switch for the kernel.

The fused kernel (`scaled_dot_product_attention`) is the default: flash/memory-efficient on GPU, and
the fastest path on CPU in fp32. The explicit softmax path exists for attention maps and for FLOP counters
that cannot see inside fused kernels; `explicit_attention()` turns it on for a block of code. It is also taken for
short bf16 sequences on CPU, where PyTorch's fused CPU kernel is slower than the explicit products
(`explicit_is_faster`).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

_use_fused = True
# On CPU in bf16 the explicit products beat the fused kernel, forward + backward, 2.2× for divided's temporal step
# (8 keys), 2.3× for a 197-token frame and 1.2× for a 1569-token clip (one thread; docs/results/notes/
# bench_model_cpu.md). They keep the `[batch, heads, queries, keys]` weights for the backward, which beside the
# activations of a token (~10 × dim) stays small up to this many keys; longer sequences keep the fused kernel's memory.
EXPLICIT_CPU_BF16_MAX_KEYS = 256


@contextlib.contextmanager
def explicit_attention() -> Iterator[None]:
    """Run attention as explicit `softmax(q k^T) v` inside this block (attention maps, FLOP counting)."""
    global _use_fused
    previous, _use_fused = _use_fused, False
    try:
        yield
    finally:
        _use_fused = previous


class Attention(nn.Module):
    """timm-style attention: `qkv` and `proj` Linear layers, so ViT weights load by name.

    Attributes:
        last_attention_map: the `[batch, heads, queries, keys]` softmax of the latest forward, kept only
            when `keep_attention_map` is set (it forces the explicit path); in the backbone's last block only the
            cls query's row (see `VideoTransformer.cls_only_last_block`).
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.keep_attention_map = False
        self.last_attention_map: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """Attend over the token axis of `x` `[batch, tokens, dim]`; with `cls_only` only token 0 queries
        (`[batch, 1, dim]` out)."""
        return self.output(self.heads(x, cls_only))

    def heads(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """`forward` before `proj`: the heads' outputs side by side, `[batch, queries, dim]`; for a caller that
        applies `proj` merged with a Linear of its own (`Block.extra_attention_output`)."""
        # Unbinding q, k, v where they lie in `qkv`'s output makes the backward one stack into that layout (a
        # permute first would add a copy of the whole qkv gradient).
        q, k, v = (t.transpose(1, 2) for t in self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).unbind(2))
        return self._attend(q, k, v, cls_only)

    def output(self, heads: torch.Tensor) -> torch.Tensor:
        """`proj` and its dropout on what `heads` returns."""
        return self.proj_drop(self.proj(heads))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """The kernel the global switch picks: heads `[batch, heads, tokens, head_dim]` -> `[batch, queries, dim]`
        before `proj`, the queries all tokens or, with `cls_only`, token 0. Separate from `heads` so a subclass can
        change the keys and values between the two."""
        if cls_only:
            q = q[:, :, :1]
        dropout = self.attn_drop if self.training else 0.0
        if _use_fused and not self.keep_attention_map and not explicit_is_faster(k):
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:
            if k.shape[-2] > q.shape[-1]:  # more keys than channels: scaling the queries is less work than the logits
                weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            else:
                weights = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
            if self.keep_attention_map:
                self.last_attention_map = weights.detach()
            out = F.dropout(weights, dropout, self.training) @ v
        return out.transpose(1, 2).flatten(2)


def explicit_is_faster(keys: torch.Tensor) -> bool:
    """Whether the explicit products beat the fused kernel for these keys `[..., keys, head_dim]`: bf16 on CPU, up to
    `EXPLICIT_CPU_BF16_MAX_KEYS` keys."""
    return keys.device.type == "cpu" and keys.dtype == torch.bfloat16 and keys.shape[-2] <= EXPLICIT_CPU_BF16_MAX_KEYS
