"""Softmax attention a few heads at a time, into buffers reused across the groups: the fast bf16 attention on CPU.

PyTorch's fused CPU kernel runs bf16 at about half the bf16 matrix-product rate (slower than its own fp32), and the
explicit products materialise `[batch, heads, queries, keys]` weights: at joint's 1569 keys that is 118 MB per
block at batch 2, freshly allocated for every product, softmax and gradient. The operating system zeroes every
fresh page, and that (not the arithmetic) was most of the explicit path's time. Here the weights of `GROUP_ELEMENTS`
at a time live in one buffer (two in the backward) that every group reuses, and the backward recomputes them, so
only q, k and v are kept (the fused kernel's memory). Forward + backward of joint's `[2, 12, 1569, 64]` in bf16 on
two threads: 110 ms against the fused kernel's 225 and the explicit products' 218, 183 of them zeroing pages
(`python -m experiments.bench attention`). The arithmetic is the explicit products' (bf16 logits, softmax in fp32
inside the kernel), as HF's in bf16. Where every head's weights fit one group the explicit products are as fast and
skip the recomputation (`attention.cpu_bf16_path`).
"""
from __future__ import annotations

import torch

# Weights per group: two heads of joint's 1569 × 1569 (12 MiB of bf16 per buffer). One head per group was 15% slower
# (more, smaller products); four 5% (the buffers leave the cache).
GROUP_ELEMENTS = 6 * 2**20

_aten = torch.ops.aten


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """`softmax(scale · q kᵀ) v` over heads `[batch, heads, tokens, head_dim]` (queries and keys may differ in
    number): `[batch, heads, queries, head_dim]`."""
    return _HeadGroups.apply(q, k, v, scale)


class _HeadGroups(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
        batch, heads, queries, _ = q.shape
        q, k, v = (q * scale).flatten(0, 1), k.flatten(0, 1).contiguous(), v.flatten(0, 1).contiguous()
        out = q.new_empty(q.shape[:2] + v.shape[2:])
        weights = q.new_empty(group_size(q, k), queries, k.shape[1])
        for group in groups(q, k):
            buffer = weights[: group.stop - group.start]
            _softmax_weights(q[group], k[group], buffer)
            torch.bmm(buffer, v[group], out=out[group])
        ctx.save_for_backward(q, k, v)
        ctx.scale, ctx.batch_heads = scale, (batch, heads)
        return out.unflatten(0, (batch, heads))

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, v = ctx.saved_tensors  # q already scaled
        grad_out = grad_out.flatten(0, 1).contiguous()
        grad_q, grad_k, grad_v = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        weights = q.new_empty(group_size(q, k), q.shape[1], k.shape[1])
        grad_weights = torch.empty_like(weights)
        for group in groups(q, k):
            buffer, grad_buffer = weights[: group.stop - group.start], grad_weights[: group.stop - group.start]
            _softmax_weights(q[group], k[group], buffer)
            torch.bmm(buffer.transpose(1, 2), grad_out[group], out=grad_v[group])
            torch.bmm(grad_out[group], v[group].transpose(1, 2), out=grad_buffer)
            # the gradient of the logits, in place of the weights' gradient
            _aten._softmax_backward_data.out(grad_buffer, buffer, -1, buffer.dtype, grad_input=grad_buffer)
            torch.bmm(grad_buffer, k[group], out=grad_q[group])
            torch.bmm(grad_buffer.transpose(1, 2), q[group], out=grad_k[group])
        return (grad_q.mul_(ctx.scale).unflatten(0, ctx.batch_heads), grad_k.unflatten(0, ctx.batch_heads),
                grad_v.unflatten(0, ctx.batch_heads), None)


def group_size(q: torch.Tensor, k: torch.Tensor) -> int:
    """Heads per group for q `[heads, queries, head_dim]` and k: as many `[queries, keys]` weights as `GROUP_ELEMENTS`
    holds, at least one, at most all."""
    return min(len(q), max(1, GROUP_ELEMENTS // (q.shape[1] * k.shape[1])))


def groups(q: torch.Tensor, k: torch.Tensor) -> list[slice]:
    """The heads of each group, in order."""
    size = group_size(q, k)
    return [slice(start, min(start + size, len(q))) for start in range(0, len(q), size)]


def _softmax_weights(q: torch.Tensor, k: torch.Tensor, out: torch.Tensor) -> None:
    """`softmax(q kᵀ)` of a group into `out`, in place (q already scaled)."""
    torch.bmm(q, k.transpose(1, 2), out=out)
    _aten._softmax.out(out, -1, False, out=out)
