"""Focus-aware mask attention: plain attention when M = 0, never across regions otherwise."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from model.attention import FocusMaskAttnProcessor, region_labels


def _attn():
    torch.manual_seed(0)
    return Attention(query_dim=16, heads=2, dim_head=8).eval()


def test_equals_plain_attention_when_m_is_zero():
    attn = _attn()
    x = torch.randn(2, 64, 16)
    attn.set_processor(AttnProcessor2_0())
    plain = attn(x)
    attn.set_processor(FocusMaskAttnProcessor())
    assert torch.allclose(attn(x), plain, atol=1e-6)  # no mask: M = 0
    one_region = torch.ones(2, 1, 64, 64)  # a single region: M = 0 everywhere
    assert torch.allclose(attn(x, focus_mask=one_region), plain, atol=1e-6)


def test_never_attends_across_regions():
    attn = _attn()
    proc = FocusMaskAttnProcessor()
    proc.record = True
    attn.set_processor(proc)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 4:20] = 1  # in-focus region
    labels = region_labels(mask, 64)[0]  # 8×8 attention grid
    assert labels.sum() == 16
    x = torch.randn(1, 64, 16)
    out = attn(x, focus_mask=mask)
    allowed = proc.last_allowed[0, 0]
    assert torch.equal(allowed, labels[:, None] == labels[None, :])
    # changing every out-of-focus token changes nothing in focus, and vice versa
    y = x.clone()
    y[0, ~labels] = torch.randn(int((~labels).sum()), 16)
    out2 = attn(y, focus_mask=mask)
    assert torch.allclose(out[0, labels], out2[0, labels], atol=1e-6)
    assert not torch.allclose(out[0, ~labels], out2[0, ~labels])
    z = x.clone()
    z[0, labels] = torch.randn(int(labels.sum()), 16)
    assert torch.allclose(attn(z, focus_mask=mask)[0, ~labels], out[0, ~labels], atol=1e-6)


def test_mask_follows_each_attention_resolution():
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., :64, :] = 1
    for n in (16 * 16, 8 * 8, 4 * 4):
        lab = region_labels(mask, n)
        side = int(n**0.5)
        assert lab.view(side, side)[: side // 2].all() and not lab.view(side, side)[side // 2 :].any()
    with pytest.raises(ValueError, match="does not map"):
        region_labels(mask, 17)


def test_unet_forward_routes_the_mask_to_self_attention_only():
    from model.config import ModelConfig
    from model.network import MagicBokeh

    m = MagicBokeh(ModelConfig.from_yaml("tiny"))
    for p in m.mask_processors:
        p.record = True
    lq = torch.rand(1, 3, 64, 64) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., :, :32] = 1
    with torch.no_grad():
        m(lq, torch.zeros(1, 1, 64, 64), mask)
    seen = [p.last_allowed for p in m.mask_processors]
    assert all(a is not None for a in seen)
    assert all(not a.all() for a in seen)  # two regions at every resolution
