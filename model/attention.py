"""Focus-aware mask attention: self-attention in which a position attends only to positions of its own region of
the binarised focus mask (M = 0 inside the region, −∞ across). Installed on ``attn1`` of every transformer block;
the mask arrives through ``cross_attention_kwargs={"focus_mask": mask}`` and is resized to each attention
resolution. Without a mask (M = 0 everywhere: the ISR phase) it is plain scaled-dot-product attention."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention


def region_labels(focus_mask: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(B, 1, H, W) mask in [0, 1] -> (B, n_tokens) bool region labels at the attention grid whose size is
    ``n_tokens``. The grid is found by halving H and W (rounding up, as stride-2 convolutions with padding do)
    from the mask's size until it has ``n_tokens`` cells; the mask is area-averaged onto it and thresholded at ½."""
    if focus_mask.ndim != 4 or focus_mask.shape[1] != 1:
        raise ValueError(f"focus_mask: (B, 1, H, W) expected, got {tuple(focus_mask.shape)}")
    h, w = focus_mask.shape[-2:]
    while h * w > n_tokens and (h > 1 or w > 1):
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    if h * w != n_tokens:
        raise ValueError(f"focus_mask of size {tuple(focus_mask.shape[-2:])} does not map onto {n_tokens} tokens")
    m = F.adaptive_avg_pool2d(focus_mask.float(), (h, w))
    return (m > 0.5).flatten(1)


class FocusMaskAttnProcessor:
    """Self-attention with the focus-aware mask (an ``attn1`` processor). Mirrors diffusers' ``AttnProcessor2_0``
    for the self-attention case and adds the region mask to ``attention_mask``."""

    def __init__(self):
        self.last_allowed = None  # the boolean mask of the last call, kept only when ``record`` is set (tests)
        self.record = False

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states=None,
        attention_mask=None,
        temb=None,
        focus_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if encoder_hidden_states is not None:
            raise ValueError("FocusMaskAttnProcessor is for self-attention (attn1) only")
        residual = hidden_states
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, n, _ = hidden_states.shape
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)

        mask = None
        if attention_mask is not None:
            mask = attn.prepare_attention_mask(attention_mask, n, batch).view(batch, attn.heads, -1, n)
        if focus_mask is not None:
            labels = region_labels(focus_mask.to(hidden_states.device), n)
            if labels.shape[0] == 1 and batch > 1:
                labels = labels.expand(batch, -1)
            if labels.shape[0] != batch:
                raise ValueError(f"focus_mask batch {labels.shape[0]} != hidden states batch {batch}")
            allowed = (labels[:, :, None] == labels[:, None, :])[:, None]  # (B, 1, N, N), True = attend
            if self.record:
                self.last_allowed = allowed
            region = torch.zeros(allowed.shape, dtype=hidden_states.dtype, device=hidden_states.device)
            region.masked_fill_(~allowed, float("-inf"))
            mask = region if mask is None else mask + region

        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        hidden_states = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=0.0, is_causal=False
        )
        hidden_states = hidden_states.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(module: torch.nn.Module) -> list[FocusMaskAttnProcessor]:
    """Put a FocusMaskAttnProcessor on ``attn1`` of every transformer block of ``module``; returns them."""
    from diffusers.models.attention import BasicTransformerBlock

    procs = []
    for block in module.modules():
        if isinstance(block, BasicTransformerBlock):
            proc = FocusMaskAttnProcessor()
            block.attn1.set_processor(proc)
            procs.append(proc)
    if not procs:
        raise ValueError("no transformer blocks found to install the focus-aware mask attention on")
    return procs
