"""Multi-head self-attention shared by every scheme, with one switch for the kernel.

The fused kernel (`scaled_dot_product_attention`) is the default: flash/memory-efficient on GPU, and
the fastest path on CPU in fp32. bf16 on CPU takes the explicit products (short sequences) or `head_groups.attention`
(long ones) instead, both about twice as fast as PyTorch's fused CPU kernel there (`cpu_bf16_path`). The explicit
softmax path exists for attention maps and for FLOP counters that cannot see
inside fused kernels; `explicit_attention()` turns it on for a block of code.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from lightning_video.models import head_groups

_use_fused = True
# bf16 on CPU through `cpu_bf16_path` (False: PyTorch's fused kernel, for A/B benchmarks: `--cpu-bf16-attention fused`)
cpu_bf16_own_paths = True


@contextlib.contextmanager
def explicit_attention() -> Iterator[None]:
    """Run attention as explicit `softmax(q k^T) v` inside this block (attention maps, FLOP counting)."""
    global _use_fused
    previous, _use_fused = _use_fused, False
    try:
        yield
    finally:
        _use_fused = previous


@contextlib.contextmanager
def fused_attention() -> Iterator[None]:
    """Run attention through `scaled_dot_product_attention` inside this block, bf16 on CPU included (FLOP counters
    have a formula for it, not for `head_groups`; probes of SDPA's own kernel choice)."""
    global cpu_bf16_own_paths
    previous, cpu_bf16_own_paths = cpu_bf16_own_paths, False
    try:
        yield
    finally:
        cpu_bf16_own_paths = previous


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
        path = cpu_bf16_path(q, k, dropout) if _use_fused and not self.keep_attention_map else "explicit"
        if path is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        elif path == "head_groups":
            out = head_groups.attention(q, k, v, self.scale)
        else:
            if k.shape[-2] > q.shape[-1]:  # more keys than channels: scaling the queries is less work than the logits
                weights = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            else:
                weights = (q @ k.transpose(-2, -1) * self.scale).softmax(dim=-1)
            if self.keep_attention_map:
                self.last_attention_map = weights.detach()
            out = F.dropout(weights, dropout, self.training) @ v
        return out.transpose(1, 2).flatten(2)


def cpu_bf16_path(q: torch.Tensor, k: torch.Tensor, dropout: float) -> str | None:
    """The path that beats PyTorch's fused kernel for bf16 on CPU, for queries `[..., queries, head_dim]` and keys:
    "explicit" products where every head's weights fit one head group (kept for the backward, they save
    `head_groups` recomputing them), "head_groups" beyond. None (the fused kernel) for other dtypes and devices, with
    dropout on the weights (which the fused kernel applies without materialising them), and under `torch.compile`
    (whose CPU kernels fuse attention themselves)."""
    if not (cpu_bf16_own_paths and k.device.type == "cpu" and k.dtype == torch.bfloat16 and not dropout
            and not torch.compiler.is_compiling()):
        return None
    return "explicit" if q.shape[:-1].numel() * k.shape[-2] <= head_groups.GROUP_ELEMENTS else "head_groups"
