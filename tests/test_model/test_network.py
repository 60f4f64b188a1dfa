"""The single-step model: pruning, the SD2.1 folder layout, ControlNet, adapters and training phases."""

import re

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors.torch import load_file

from model.config import ModelConfig
from model.network import PHASES, MagicBokeh, build_controlnet, load_components, load_trained, save_tiny_sd

TINY = ModelConfig.from_yaml("tiny")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MagicBokeh(TINY)


def _batch(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    lq = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    disp = torch.rand(b, 1, size, size, generator=g)
    defocus = (16 * (disp - 0.5).abs()) / 32
    mask = (defocus * 32 <= 1).float()
    return lq, defocus, mask


def _randomise_zero_inits(m: MagicBokeh, scale=0.02):
    """LoRA B and the ControlNet's zero convolutions start at 0: give them values, as training would."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if ".lora_B." in name or "controlnet_down_blocks" in name or "controlnet_mid_block" in name:
                p.copy_(torch.randn(p.shape, generator=g) * scale)


def test_forward_shapes_and_values(model):
    lq, defocus, mask = _batch()
    with torch.no_grad():
        out = model(lq, defocus, mask)
    assert out.shape == lq.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="multiples of 8"):
        model(lq[..., :60, :60])
    with pytest.raises(ValueError, match="defocus"):
        model(lq, defocus[..., :32, :32])


def test_fresh_model_ignores_the_defocus_map_until_trained(model):
    """ControlNet's zero convolutions and LoRA's zero B make the untrained model exactly the pruned SD step."""
    lq, defocus, _ = _batch(seed=3)
    with torch.no_grad():
        a = model(lq, defocus)
        b = model(lq, None)
    assert torch.equal(a, b)


def test_pruned_unet_has_no_mid_block_and_no_cross_attention(model):
    assert model.unet.mid_block is None
    blocks = [m for m in model.unet.modules() if type(m).__name__ == "BasicTransformerBlock"]
    assert blocks and all(b.attn2 is None and b.norm2 is None for b in blocks)
    assert all(b.attn2 is None for b in model.controlnet.modules() if type(b).__name__ == "BasicTransformerBlock")
    assert type(model.controlnet.mid_block).__name__ == "UNetMidBlock2D"
    assert model.controlnet.controlnet_cond_embedding.conv_in.in_channels == 1


def test_builder_loads_the_sd21_folder_layout(tmp_path):
    save_tiny_sd(tmp_path / "sd", seed=5)
    for sub in (
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json",
        "scheduler/scheduler_config.json",
        "model_index.json",
    ):
        assert (tmp_path / "sd" / sub).is_file()
    full = UNet2DConditionModel.from_pretrained(tmp_path / "sd", subfolder="unet")
    assert full.mid_block is not None
    unet, vae, scheduler = load_components(tmp_path / "sd")
    assert unet.mid_block is None
    saved = load_file(str(tmp_path / "sd" / "unet" / "diffusion_pytorch_model.safetensors"))
    pruned = unet.state_dict()
    dropped = {
        k
        for k in saved
        if k.startswith("mid_block.") or ".attn2." in k or re.search(r"transformer_blocks\.\d+\.norm2\.", k)
    }
    assert dropped and any(k.startswith("mid_block.") for k in dropped)
    assert set(pruned) == set(saved) - dropped  # only the mid-block and cross-attention keys are unused
    assert all(torch.equal(pruned[k], saved[k]) for k in pruned)
    vae_saved = load_file(str(tmp_path / "sd" / "vae" / "diffusion_pytorch_model.safetensors"))
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in vae_saved.items())
    assert scheduler.config.prediction_type == "epsilon"
    mem, mem_vae, _ = load_components(None, seed=5)  # the in-memory tiny model is the saved folder's
    assert all(torch.equal(v, pruned[k]) for k, v in mem.state_dict().items())
    assert all(torch.equal(v, vae.state_dict()[k]) for k, v in mem_vae.state_dict().items())
    # the whole model from that folder
    m = MagicBokeh(ModelConfig(base=str(tmp_path / "sd"), resolution=64))
    assert torch.equal(
        m.unet.conv_in.base_layer.weight if hasattr(m.unet.conv_in, "base_layer") else m.unet.conv_in.weight,
        saved["conv_in.weight"],
    )


def test_builder_names_a_missing_folder(tmp_path):
    (tmp_path / "sd" / "unet").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"missing \['unet', 'vae', 'scheduler'\]"):
        load_components(tmp_path / "sd")


def test_controlnet_encoder_is_the_unets():
    unet, _, _ = load_components(None, seed=2)
    cn = build_controlnet(unet)
    u, c = unet.state_dict(), cn.state_dict()
    keys = [k for k in u if k.split(".")[0] in ("conv_in", "time_embedding", "down_blocks")]
    assert keys and all(torch.equal(u[k], c[k]) for k in keys)
    zero = [
        n
        for n, _ in cn.named_parameters()
        if n.startswith(("controlnet_down_blocks", "controlnet_mid_block", "controlnet_cond_embedding.conv_out"))
    ]
    assert zero and all((cn.get_parameter(n) == 0).all() for n in zero)  # zero convolutions


@pytest.mark.parametrize("phase", list(PHASES))
def test_each_phase_gets_gradients_exactly_where_it_trains(phase):
    m = MagicBokeh(TINY)
    _randomise_zero_inits(m)
    trainable = set(m.set_phase(phase))
    lq, defocus, mask = _batch(b=1, seed=4)
    if phase == "bokeh":
        out = m(lq, defocus, mask)
    else:  # ISR phases: all in focus (defocus 0, M = 0)
        out = m(lq)
    (out**2).mean().backward()
    expect = {
        "isr1": lambda n: ".lora_A.vae." in n or ".lora_B.vae." in n or ".lora_A.sr." in n or ".lora_B.sr." in n,
        "bokeh": lambda n: n.startswith("controlnet.") or ".lora_A.bokeh." in n or ".lora_B.bokeh." in n,
        "isr": lambda n: ".lora_A.sr." in n or ".lora_B.sr." in n,
    }[phase]
    for name, p in m.named_parameters():
        if expect(name):
            assert name in trainable and p.grad is not None, name
        else:
            assert not p.requires_grad and p.grad is None, name
    with_grad = [n for n, p in m.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    # every trained group receives a signal (ControlNet's mid-block only through its own zero conv)
    groups = {
        "isr1": ["lora_A.vae", "lora_B.vae", "lora_A.sr", "lora_B.sr"],
        "bokeh": ["controlnet.controlnet_cond_embedding", "controlnet.down_blocks", "lora_A.bokeh", "lora_B.bokeh"],
        "isr": ["lora_A.sr", "lora_B.sr"],
    }[phase]
    for g in groups:
        assert any(g in n for n in with_grad), g
    with pytest.raises(ValueError, match="phase"):
        m.set_phase("sr")


def test_adapters_save_load_round_trip_and_fuse(tmp_path):
    m = MagicBokeh(TINY)
    _randomise_zero_inits(m, scale=0.05)
    lq, defocus, mask = _batch(b=1, seed=6)
    with torch.no_grad():
        ref = m(lq, defocus, mask)
    m.save_weights(tmp_path / "w")
    for f in (
        "model.yaml",
        "lora_vae.safetensors",
        "lora_sr.safetensors",
        "lora_bokeh.safetensors",
        "controlnet.safetensors",
        "base/unet/config.json",
    ):
        assert (tmp_path / "w" / f).is_file(), f
    sr = load_file(str(tmp_path / "w" / "lora_sr.safetensors"))
    assert sr and all("lora_" in k for k in sr) and not any(".bokeh" in k or ".vae" in k for k in sr)
    m2 = load_trained(tmp_path / "w")
    with torch.no_grad():
        out = m2(lq, defocus, mask)
    # the same weights (state dicts equal bit for bit, checked below); the outputs agree to float rounding only,
    # since loaded tensors may take another convolution path (9e-6 seen with torch 2.14)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
    assert all(torch.equal(v, m2.state_dict()[k]) for k, v in m.state_dict().items())
    for name in ("vae", "sr", "bokeh"):
        a, b = m.adapter_state_dict(name), m2.adapter_state_dict(name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fresh = MagicBokeh(TINY)  # another adapter's file refuses to load under the wrong name
    with pytest.raises((ValueError, RuntimeError)):
        fresh.load_adapter("vae", tmp_path / "w" / "lora_sr.safetensors")
    m2.fuse()
    with torch.no_grad():
        fused = m2(lq, defocus, mask)
    assert torch.allclose(fused, ref, atol=1e-4)


def _phase_grads(m: MagicBokeh, phase: str) -> dict:
    m.set_phase(phase)
    m.train()
    m.zero_grad(set_to_none=True)
    m(*_batch(seed=3)).square().mean().backward()
    return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


def test_gradient_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = MagicBokeh(TINY)
    _randomise_zero_inits(plain)
    ckpt = MagicBokeh(TINY)
    ckpt.load_state_dict(plain.state_dict())
    ckpt.enable_gradient_checkpointing()
    assert ckpt.unet.is_gradient_checkpointing and ckpt.controlnet.is_gradient_checkpointing
    for phase in ("bokeh", "isr1"):
        a, b = _phase_grads(plain, phase), _phase_grads(ckpt, phase)
        assert a.keys() == b.keys() and a
        assert all(torch.allclose(a[k], b[k], atol=1e-6, rtol=1e-4) for k in a), phase


def test_bf16_autocast_stays_close_to_fp32(model):
    from model.train import autocast

    lq, defocus, mask = _batch()
    model.eval()
    with torch.no_grad():
        ref = model(lq, defocus, mask)
        with autocast(torch.device("cpu"), "bf16"):
            low = model(lq, defocus, mask)
    assert low.dtype == torch.bfloat16 and torch.isfinite(low.float()).all()
    assert (low.float() - ref).abs().mean() < 0.02, (low.float() - ref).abs().mean()


def test_building_the_model_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = MagicBokeh(TINY)
    assert torch.equal(torch.rand(3), expected)
    second = MagicBokeh(TINY)  # and the same config gives the same weights, whatever the caller's state
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


def test_model_commands_print_no_bitsandbytes_kernel_notice():
    """Every model command once printed "Failed to load CPU gemm_4bit_forward from kernels-community"."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", "import model.network, model.evaluate, peft, diffusers"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0 and "gemm_4bit_forward" not in proc.stderr, proc.stderr
