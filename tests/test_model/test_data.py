"""The model's sample decoder reads 8-bit and 16-bit builds alike."""

import io
import json

import numpy as np
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


def test_the_model_refuses_data_built_for_another_max_k(tmp_path):
    """dataset.json carries max_K; training on it with another model.k_max would mis-scale every defocus map."""
    import pytest

    from model.data import check_max_k

    (tmp_path / "train-000000.tar").write_bytes(b"")
    urls = [str(tmp_path / "train-000000.tar")]
    assert check_max_k(urls, 32.0) is None  # no dataset.json beside the shards: nothing to check
    (tmp_path / "dataset.json").write_text(json.dumps({"max_K": 32.0}))
    assert check_max_k(urls, 32.0) == 32.0
    with pytest.raises(ValueError, match="model.k_max is 16 but the data .* was built with max_K 32"):
        check_max_k(urls, 16.0)
