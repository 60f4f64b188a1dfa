"""Real-ESRGAN second-order degradation: determinism, ranges, frequencies, stages, equality, bad input."""

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch

from degradations import DegradationConfig, KernelDraw, degrade, draw
from degradations.config import RANGE_BOUNDS
from degradations.pipeline import apply, to_tensor
from degradations.reference import reference_apply


@pytest.fixture(scope="module")
def hq():
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[100:228, 150:278])  # 128×128 real photo


def test_same_seed_same_bits_and_no_global_rng_leak(hq):
    torch.manual_seed(123)
    np.random.seed(5)
    before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy())
    lq1, rec1 = degrade(hq, 7)
    lq2, rec2 = degrade(hq, 7)
    assert np.array_equal(lq1, lq2) and rec1 == rec2
    assert torch.equal(torch.get_rng_state(), before[0]) and np.array_equal(np.random.get_state()[1], before[1])
    assert not np.array_equal(lq1, degrade(hq, 8)[0])


def test_output_size_dtype_and_float_input(hq):
    lq, _ = degrade(hq, 1)
    assert lq.shape == (32, 32, 3) and lq.dtype == np.uint8
    lq_f, _ = degrade(hq.astype(np.float32) / 255.0, 1)
    assert np.array_equal(lq, lq_f)


def test_draws_within_ranges_and_frequencies_match_probabilities():
    cfg = DegradationConfig()
    recs = [draw(s, cfg) for s in range(3000)]
    k1 = Counter(r.kernel1.type for r in recs)
    n = len(recs)
    assert k1["sinc"] / n == pytest.approx(0.1, abs=0.02)
    for t, p in zip(cfg.kernel_list, cfg.kernel_prob):
        assert k1[t] / n == pytest.approx(0.9 * p, abs=0.025), t
    assert Counter(r.stage1.noise for r in recs)["gaussian"] / n == pytest.approx(0.5, abs=0.03)
    assert np.mean([r.stage1.noise_gray for r in recs]) == pytest.approx(0.4, abs=0.03)
    assert np.mean([r.blur2 for r in recs]) == pytest.approx(0.8, abs=0.03)
    assert np.mean([r.final_sinc for r in recs]) == pytest.approx(0.8, abs=0.03)
    assert Counter(r.stage1.resize for r in recs)["down"] / n == pytest.approx(0.7, abs=0.03)
    assert Counter(r.stage2.resize for r in recs)["keep"] / n == pytest.approx(0.3, abs=0.03)
    for r in recs:
        for k, sig in ((r.kernel1, cfg.blur_sigma), (r.kernel2, cfg.blur_sigma2)):
            assert k.size in cfg.kernel_range
            if k.type == "sinc":
                assert math.pi / 5 <= k.omega_c <= math.pi
            else:
                assert sig[0] <= k.sigma_x <= sig[1] and sig[0] <= k.sigma_y <= sig[1]
                assert -math.pi <= k.theta <= math.pi
        assert cfg.resize_range[0] <= r.stage1.resize_scale <= cfg.resize_range[1]
        assert cfg.resize_range2[0] <= r.stage2.resize_scale <= cfg.resize_range2[1]
        if r.stage1.noise == "gaussian":
            assert cfg.noise_range[0] <= r.stage1.noise_sigma <= cfg.noise_range[1]
        else:
            assert cfg.poisson_scale_range[0] <= r.stage1.noise_scale <= cfg.poisson_scale_range[1]
        assert cfg.jpeg_range[0] <= r.stage1.jpeg_quality <= cfg.jpeg_range[1]
        assert cfg.jpeg_range2[0] <= r.stage2.jpeg_quality <= cfg.jpeg_range2[1]


def _forced(seed, **cfg_values):
    return draw(seed, DegradationConfig(**cfg_values))


def test_each_stage_observable_when_forced(hq):
    x = to_tensor(hq, DegradationConfig())
    base = _forced(0, gaussian_noise_prob=1.0, gaussian_noise_prob2=1.0)
    quiet = replace(base, stage1=replace(base.stage1, noise_sigma=1e-6), stage2=replace(base.stage2, noise_sigma=1e-6))
    loud = replace(quiet, stage1=replace(quiet.stage1, noise_sigma=30.0))
    assert (apply(x, loud, 4) - apply(x, quiet, 4)).abs().mean() > 1e-3  # stage-1 noise shows
    sinc = _forced(0, sinc_prob=1.0)
    assert sinc.kernel1.type == "sinc"
    strong = KernelDraw("iso", 21, 1.5, 1.5, 0.0)
    no_blur2 = replace(quiet, blur2=False, kernel2=strong)
    assert not torch.equal(apply(x, no_blur2, 4), apply(x, replace(no_blur2, blur2=True), 4))
    with_sinc = replace(quiet, final_sinc=True, final_kernel=KernelDraw("sinc", 21, omega_c=1.0))
    assert not torch.equal(apply(x, replace(with_sinc, final_sinc=False), 4), apply(x, with_sinc, 4))
    jpeg_hi = replace(quiet, stage1=replace(quiet.stage1, jpeg_quality=95.0))
    assert not torch.equal(
        apply(x, replace(jpeg_hi, stage1=replace(jpeg_hi.stage1, jpeg_quality=30.0)), 4), apply(x, jpeg_hi, 4)
    )
    poisson = _forced(0, gaussian_noise_prob=0.0)
    assert poisson.stage1.noise == "poisson"


def test_equals_plain_basicsr_sequence_for_fixed_draws(hq):
    """Bit-identical to the plain sequence, including kernels with denormal taps (which apply flushes to zero for
    speed) and the depthwise form of basicsr.filter2D; the flush is off again afterwards."""
    from degradations.pipeline import build_kernel

    x = to_tensor(hq, DegradationConfig())
    tiny = np.finfo(np.float32).tiny
    with_denormals = 0
    for seed in range(40):
        rec = draw(seed, DegradationConfig())
        kernel = build_kernel(rec.kernel1)
        with_denormals += int(((kernel > 0) & (kernel < tiny)).any())
        assert torch.equal(apply(x, rec, 4), reference_apply(x, rec, 4)), seed
    assert with_denormals >= 3, with_denormals
    assert torch.tensor([1e-39]).mul(1.0).item() != 0.0  # denormals are back for the caller


def test_opencv_blur_backend_matches_up_to_rounding(hq):
    x = to_tensor(hq, DegradationConfig())
    exact = 0
    for seed in range(6):
        rec = draw(seed, DegradationConfig())
        diff = (apply(x, rec, 4, "opencv") - reference_apply(x, rec, 4)).abs() * 255
        exact += int(diff.max() == 0)
    assert exact >= 4


def test_usm_option_sharpens_before_the_blur(hq):
    rec = draw(3, DegradationConfig())
    x = to_tensor(hq, DegradationConfig())
    assert not torch.equal(apply(x, replace(rec, usm=True), 4), apply(x, rec, 4))


@pytest.mark.parametrize(
    "bad, err, match",
    [
        (np.zeros((128, 128), np.uint8), ValueError, "H×W×3"),
        (np.zeros((128, 128, 3), np.int32), TypeError, "uint8 or float"),
        (np.full((128, 128, 3), np.nan, np.float32), ValueError, "non-finite"),
        (np.full((128, 128, 3), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.zeros((64, 64, 3), np.uint8), ValueError, "smaller than 84 px"),
        (np.zeros((130, 128, 3), np.uint8), ValueError, "not divisible by the scale"),
    ],
)
def test_bad_input_is_rejected_clearly(bad, err, match):
    with pytest.raises(err, match=match):
        degrade(bad, 0)


def test_config_yaml_presets_and_overrides(tmp_path):
    assert DegradationConfig.preset("realesrgan_x4plus") == DegradationConfig()
    s3d = DegradationConfig.preset("s3diff")
    assert s3d.noise_range[1] < DegradationConfig().noise_range[1]
    bad = tmp_path / "bad.yaml"
    bad.write_text("scale: 4\nnoise_rnage: [1, 2]\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown key 'noise_rnage'; known: betag_range"):
        DegradationConfig.from_yaml(bad)
    assert DegradationConfig().override(["sinc_prob=5e-1"]).sinc_prob == 0.5  # YAML's string "5e-1" is a number
    with pytest.raises(ValueError, match="sinc_prob: expected a number, got 'often'"):
        DegradationConfig().override(["sinc_prob=often"])
    assert DegradationConfig().override(["sinc_prob=0.5"]).sinc_prob == 0.5
    with pytest.raises(ValueError, match="unknown key"):
        DegradationConfig().override(["sincprob=0.5"])
    with pytest.raises(ValueError, match="probabilities"):
        DegradationConfig(kernel_prob=[0.5, 0.5, 0, 0, 0, 0.5])


@pytest.mark.parametrize("seed", [-1, 2**63, 2**70, 1.5, "7", True])
def test_seed_must_fit_the_manifest(hq, seed):
    """A seed is stored as int64 in the manifests: 0 <= seed < 2**63, and the error names `seed`."""
    with pytest.raises(ValueError, match=r"seed: expected an integer in \[0, 2\*\*63\)"):
        degrade(hq, seed)
    assert degrade(hq, 2**63 - 1)[0].shape == (hq.shape[0] // 4, hq.shape[1] // 4, 3)


@pytest.mark.parametrize(
    "name,least,greatest,least_allowed", [(name, *bounds) for name, bounds in RANGE_BOUNDS.items()]
)
def test_every_range_is_bounded(name, least, greatest, least_allowed):
    """`jpeg_range: [40, 200]` once drew and recorded quality 138.7: every [low, high] range has its bounds."""
    ok = DegradationConfig().override([f"{name}=[{least if least_allowed else least + 0.01}, {greatest}]"])
    assert getattr(ok, name)[1] == greatest
    for bad in ([least - 1, greatest] if least_allowed else [least, greatest], [least + 0.01, greatest + 1]):
        if name.startswith(("betag", "betap")) and not bad[0] <= 1 <= bad[1]:
            continue  # refused by the beta rule first
        with pytest.raises(ValueError, match=rf"{name}: both ends in"):
            DegradationConfig().override([f"{name}=[{bad[0]}, {bad[1]}]"])


def test_jpeg_quality_above_100_is_refused():
    with pytest.raises(ValueError, match=r"jpeg_range: both ends in \[1, 100\], got \[40.0, 200.0\]"):
        DegradationConfig().override(["jpeg_range=[40, 200]"])
