"""The model's sample decoder reads 8-bit and 16-bit builds alike."""

import io
import json

import numpy as np
import pytest
import torch

from common.images import encode_png, to_uint8, to_uint16
from model.data import to_tensors


def _sample(depth: int) -> dict:
    rng = np.random.default_rng(0)
    rgb = rng.random((64, 64, 3)).astype(np.float32)
    enc = to_uint16 if depth == 16 else to_uint8
    disp = io.BytesIO()
    np.save(disp, np.full((64, 64), 0.5, np.float32))
    meta = {"render": {"K": 8.0, "focus_disparity": 0.5}}
    return {
        "__key__": "k",
        "aif.png": encode_png(enc(rgb)),
        "bokeh.png": encode_png(enc(rgb)),
        "lq.png": encode_png(to_uint8(rgb[::4, ::4])),
        "disp.npy": disp.getvalue(),
        "json": json.dumps(meta).encode(),
    }, rgb


def test_sixteen_bit_members_decode_to_the_same_range_with_more_precision():
    s8, rgb = _sample(8)
    s16, _ = _sample(16)
    t8, t16 = to_tensors(s8), to_tensors(s16)
    exact = torch.from_numpy(rgb).permute(2, 0, 1) * 2 - 1
    assert t16["aif"].shape == t8["aif"].shape == (3, 64, 64)
    assert (t16["aif"] - exact).abs().max() < 1e-4 < (t8["aif"] - exact).abs().max() < 5e-3
    assert torch.equal(t8["lq"], t16["lq"])


def test_data_built_past_the_models_k_max_is_downscaled_onto_it_as_it_is_read(tmp_path):
    """dataset.json carries max_K. Data built with max_K ≤ k_max is served as it is (its defocus maps stay in
    pixels / k_max); data built with more (megapixel, real-lens blur) is downscaled by k_max / max_K, every member
    alike, and K with it, so every blur radius and the defocus map stay the model's."""
    import cv2
    import webdataset as wds

    from datagen.build import BuildConfig, build_shard, scan_assets
    from datagen.shards import decode_sample
    from model.data import ShardStream, StreamConfig, check_max_k, data_scale, to_tensors

    cfg = BuildConfig.load(None, ["size=192", "min_asset_size=96", "val_fraction=0", "scene.k_range=[40,64]"])
    assert cfg.max_k() == 64.0
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0, 1], str(tmp_path))
    urls = [str(tmp_path / "train-000000.tar")]
    assert data_scale(urls, 32.0) == 1.0  # no dataset.json beside the shards: served as it is
    (tmp_path / "dataset.json").write_text(json.dumps({"max_K": cfg.max_k()}))
    assert data_scale(urls, 64.0) == data_scale(urls, 128.0) == 1.0
    assert check_max_k(urls, 32.0) == data_scale(urls, 32.0) == 0.5
    raw = next(iter(wds.WebDataset(urls, shardshuffle=False)))
    sample = decode_sample(raw)
    K = sample["json"]["render"]["K"]
    assert 40 <= K <= 64
    batch = next(iter(ShardStream(urls, StreamConfig(batch_size=2, shuffle_buffer=1, k_max=32.0))))
    i = batch["key"].index(raw["__key__"])
    assert batch["aif"].shape[-2:] == (96, 96) and float(batch["K"][i]) == pytest.approx(K / 2)
    assert float(batch["defocus"].max()) <= 1.0
    half = cv2.resize(sample["aif"], (96, 96), interpolation=cv2.INTER_AREA)
    assert torch.equal(batch["aif"][i], torch.from_numpy(half).float().permute(2, 0, 1) / 127.5 - 1)
    assert to_tensors(raw, k_max=64.0)["aif"].shape[-2:] == (192, 192)
    with pytest.raises(ValueError, match=r"K: in \[0, 32.0\]"):  # unscaled, such a sample is refused, not mis-scaled
        to_tensors(raw, k_max=32.0)


def test_the_model_trains_from_frames_of_any_aspect_by_the_stated_mapping(tmp_path):
    """A 3:2-class build past k_max (the megapixel recipe in miniature): every sample is downscaled by k_max/max_K,
    keeping its aspect, then cropped square on the LQ grid; a crop larger than the frame is one clear error."""
    import webdataset as wds

    from common.errors import UserError
    from datagen.build import BuildConfig, build_shard, scan_assets
    from model.data import ShardStream, StreamConfig, to_tensors

    cfg = BuildConfig.load(None, ["size=[288, 192]", "min_asset_size=96", "val_fraction=0", "scene.k_range=[40,64]"])
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0, 1], str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps({"max_K": cfg.max_k()}))
    urls = [str(tmp_path / "train-000000.tar")]
    whole = next(iter(ShardStream(urls, StreamConfig(batch_size=2, shuffle_buffer=1, k_max=32.0))))
    assert whole["aif"].shape[-2:] == whole["lq"].shape[-2:] == whole["defocus"].shape[-2:] == (96, 144)
    crops = next(iter(ShardStream(urls, StreamConfig(batch_size=2, shuffle_buffer=1, k_max=32.0, crop=48))))
    assert crops["aif"].shape == (2, 3, 48, 48) and crops["mask"].shape == (2, 1, 48, 48)
    assert float(crops["defocus"].max()) <= 1.0
    raw = next(iter(wds.WebDataset(urls, shardshuffle=False)))
    with pytest.raises(UserError, match=r"144×96 frame \(downscaled by 0.5\) is smaller than the training crop 128"):
        to_tensors(raw, k_max=32.0, crop=128, scale=0.5)
