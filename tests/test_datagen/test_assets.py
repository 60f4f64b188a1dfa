"""Asset scanning: the public matting layouts, every image mode, broken files, stable leak-free splits."""

import hashlib
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from common.images import load_alpha, load_image
from datagen.assets import scan, split_of, usable
from manifests import assets_schema


def _photo(seed, size=64):
    rng = np.random.default_rng(seed)
    return (rng.random((size, size, 3)) * 255).astype(np.uint8)


def _matte(size=64, soft=True):
    ys, xs = np.mgrid[0:size, 0:size]
    d = np.hypot(ys - size / 2, xs - size / 2)
    a = np.clip((size * 0.35 - d) / (4.0 if soft else 1e-3), 0, 1)
    return (a * 255).astype(np.uint8)


@pytest.fixture
def sets(tmp_path):
    """Tiny folders laid out like PhotoMatte85, AIM-500, a generic folder and backgrounds, broken files included."""
    pm = tmp_path / "PhotoMatte85"
    pm.mkdir()
    for i in range(3):
        Image.fromarray(np.dstack([_photo(i), _matte()])).save(pm / f"p{i}.png")
    Image.fromarray(np.dstack([_photo(9), np.full((64, 64), 255, np.uint8)])).save(pm / "opaque.png")
    Image.fromarray(np.dstack([_photo(9), np.zeros((64, 64), np.uint8)])).save(pm / "empty.png")
    buf = io.BytesIO()
    Image.fromarray(np.dstack([_photo(5), _matte()])).save(buf, format="PNG")
    (pm / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    aim = tmp_path / "AIM-500"
    (aim / "original").mkdir(parents=True)
    (aim / "mask").mkdir()
    Image.fromarray(_photo(10)).save(aim / "original" / "a.jpg", quality=95)
    Image.fromarray(_matte()).save(aim / "mask" / "a.png")
    Image.fromarray(_photo(11)).save(aim / "original" / "b.jpg")
    Image.fromarray(_matte(32)).save(aim / "mask" / "b.png")  # size mismatch
    Image.fromarray(_photo(12)).save(aim / "original" / "c.jpg")  # no matte
    rwp = tmp_path / "RWP-636"
    (rwp / "image").mkdir(parents=True)
    (rwp / "alpha").mkdir()
    Image.fromarray(_photo(13)).save(rwp / "image" / "r.jpg")
    Image.fromarray(_matte()).save(rwp / "alpha" / "r.png")
    gen = tmp_path / "generic"
    gen.mkdir()
    Image.fromarray(_photo(20)).save(gen / "dog.jpg")
    Image.fromarray(_matte()).save(gen / "dog_alpha.png")
    Image.fromarray(np.dstack([_photo(0), _matte()])).save(gen / "cutout.png")  # an RGBA cut-out without a pair
    bg = tmp_path / "backgrounds"
    bg.mkdir()
    Image.fromarray(_photo(30, 80)).save(bg / "land.jpg")
    Image.fromarray(_photo(31, 16)).save(bg / "tiny.jpg")
    return tmp_path


def test_scan_layouts_and_records_every_skip_with_its_reason(sets, tmp_path):
    rows = scan(
        [
            ("photomatte85", sets / "PhotoMatte85"),
            ("aim500", sets / "AIM-500"),
            ("rwp636", sets / "RWP-636"),
            ("generic", sets / "generic"),
            ("backgrounds", sets / "backgrounds"),
        ],
        tmp_path / "assets.parquet",
        min_size=32,
        progress=False,
    )
    ok = {r.uri.split("/")[-1] for r in rows if r.ok}
    assert ok == {"p0.png", "p1.png", "p2.png", "a.jpg", "r.jpg", "dog.jpg", "cutout.png", "land.jpg"}
    reasons = {r.uri.split("/")[-1]: r.reason for r in rows if not r.ok}
    assert "all-opaque matte" in reasons["opaque.png"]
    assert "empty matte" in reasons["empty.png"]
    assert "unreadable or truncated" in reasons["truncated.png"] and "truncated.png" in reasons["truncated.png"]
    assert "does not match" in reasons["b.jpg"]
    assert "no matte" in reasons["c.jpg"]
    assert "too small" in reasons["tiny.jpg"]
    dog = next(r for r in rows if r.uri.endswith("dog.jpg"))
    assert dog.alpha_uri.endswith("dog_alpha.png") and dog.has_alpha and (dog.width, dog.height) == (64, 64)
    table = pq.read_table(tmp_path / "assets.parquet")
    assert table.schema.equals(assets_schema()) and table.num_rows == len(rows)


def test_split_is_stable_and_leak_free(sets):
    first = scan([("photomatte85", sets / "PhotoMatte85")], min_size=32, val_fraction=0.5, progress=False)
    again = scan([("photomatte85", sets / "PhotoMatte85")], min_size=32, val_fraction=0.5, progress=False)
    assert [(a.id, a.split) for a in first] == [(a.id, a.split) for a in again]
    # the same picture found twice (another folder, another name) gets the same id and the same split
    dup = sets / "dup"
    dup.mkdir()
    (dup / "renamed.png").write_bytes((sets / "PhotoMatte85" / "p1.png").read_bytes())
    both = scan(
        [("photomatte85", sets / "PhotoMatte85"), ("generic", dup)], min_size=32, val_fraction=0.5, progress=False
    )
    p1 = [a for a in both if a.uri.endswith(("p1.png", "renamed.png"))]
    assert p1[0].id == p1[1].id and p1[0].split == p1[1].split
    train, val = usable(both, "foreground", "train"), usable(both, "foreground", "val")
    assert not {a.id for a in train} & {a.id for a in val}
    # the split is a function of the id alone, with the requested fraction
    ids = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(4000)]
    assert np.mean([split_of(i, 0.05) == "val" for i in ids]) == pytest.approx(0.05, abs=0.015)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "PA", "RGB", "RGBA", "I;16", "CMYK", "1"])
def test_every_mode_is_converted_explicitly(tmp_path, mode):
    base = Image.fromarray(np.dstack([_photo(1), _matte()]))
    if mode == "I;16":
        im = Image.fromarray((np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16))
    elif mode == "P":
        im = base.convert("RGB").convert("P")
    elif mode == "PA":
        im = base.convert("P")  # keeps a transparency entry
        im.info["transparency"] = 0
    else:
        im = base.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(path)
    rgb, alpha = load_image(path)
    assert rgb.shape == (64, 64, 3) and rgb.dtype == np.float32 and 0.0 <= rgb.min() and rgb.max() <= 1.0
    assert (alpha is not None) == (mode in ("LA", "RGBA", "PA"))
    if mode == "I;16":
        assert rgb.max() == pytest.approx(4095 * 16 / 65535, abs=1e-6)  # 16-bit scaled, not clipped


def test_exif_orientation_is_applied(tmp_path):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = 255  # left half white, 40 wide × 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    Image.fromarray(img).save(tmp_path / "o.jpg", exif=exif, quality=100)
    rgb, _ = load_image(tmp_path / "o.jpg")
    assert rgb.shape[:2] == (40, 20)  # displayed upright: 20 wide × 40 high
    assert rgb[:20].mean() > 0.9 and rgb[20:].mean() < 0.1  # the white half is now on top


def test_sixteen_bit_matte(tmp_path):
    a = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    Image.fromarray(a).save(tmp_path / "m.png")
    m = load_alpha(tmp_path / "m.png")
    assert m.dtype == np.float32 and m.max() == pytest.approx(1.0) and m.min() == 0.0


def test_one_bad_file_never_stops_a_scan(tmp_path):
    """A PNG whose header claims 40000×40000 (a decompression bomb), a file name that is not UTF-8 and an orphan
    matte each become a skipped row that names the file; the good asset beside them is still scanned."""
    import os
    import struct
    import zlib

    gen = tmp_path / "generic"
    gen.mkdir()
    Image.fromarray(np.dstack([_photo(1), _matte()])).save(gen / "good.png")

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    (gen / "bomb.png").write_bytes(bomb)
    Image.fromarray(np.dstack([_photo(2), _matte()])).save(os.fsdecode(bytes(gen) + b"/caf\xe9.png"))
    Image.fromarray(_matte()).save(gen / "lonely_alpha.png")
    out = tmp_path / "assets.parquet"
    rows = scan([("generic", gen)], out, min_size=32)
    by_name = {r.uri.rsplit("/", 1)[-1]: r for r in rows}
    assert set(by_name) == {"good.png", "bomb.png", "caf\\xe9.png", "lonely_alpha.png"}
    assert by_name["good.png"].ok
    assert not by_name["bomb.png"].ok and "bomb.png: refused as a decompression bomb" in by_name["bomb.png"].reason
    assert not by_name["caf\\xe9.png"].ok and "not valid UTF-8" in by_name["caf\\xe9.png"].reason
    assert "caf\\xe9.png" in by_name["caf\\xe9.png"].reason
    assert not by_name["lonely_alpha.png"].ok and "orphan" in by_name["lonely_alpha.png"].reason
    assert pq.read_table(out).num_rows == 4  # every row, escaped name included, is storable


def _soft(seed, size=64):
    """A soft matte unlike any decoy: a blurred random field in (0, 1) with a solid centre."""
    rng = np.random.default_rng(seed)
    a = (_matte(size).astype(np.float64) / 255) * (0.5 + 0.5 * rng.random((size, size)))
    a[size // 2 - 4 : size // 2 + 4, size // 2 - 4 : size // 2 + 4] = 1.0
    return (a * 255).round().astype(np.uint8)


@pytest.mark.parametrize(
    "layout, image_dir, matte_dir, decoys",
    [
        ("rwp636", "image", "alpha", ("mask", "trimap", "detailmap")),
        ("aim500", "original", "mask", ("trimap", "usr")),
        ("am2k", "original", "mask", ("trimap",)),
        ("p3m10k", "blurred_image", "mask", ("trimap",)),
    ],
)
def test_matting_sets_are_read_with_their_ground_truth_matte(tmp_path, layout, image_dir, matte_dir, decoys):
    """Miniature copies of each published layout, with the coarse masks and trimaps the sets also ship as decoys
    (binary, same names): the loaded alpha is the GT soft matte, bit for bit."""
    root = tmp_path / layout
    for d in (image_dir, matte_dir, *decoys):
        (root / d).mkdir(parents=True)
    gts = {}
    for i, name in enumerate(("p1", "p2")):
        Image.fromarray(_photo(40 + i)).save(root / image_dir / f"{name}.jpg", quality=95)
        gts[name] = _soft(i)
        Image.fromarray(gts[name]).save(root / matte_dir / f"{name}.png")
        for d in decoys:
            Image.fromarray(np.where(gts[name] > 127, 255, 0).astype(np.uint8)).save(root / d / f"{name}.png")
    rows = scan([(layout, root)], min_size=32)
    assert [r.ok for r in rows] == [True, True], [r.reason for r in rows]
    for row in rows:
        name = row.uri.rsplit("/", 1)[-1].split(".")[0]
        assert row.alpha_uri.endswith(f"/{matte_dir}/{name}.png")
        from datagen.assets import load_asset

        _, alpha = load_asset(row)
        assert np.array_equal(np.round(alpha * 255).astype(np.uint8), gts[name])


def test_photomatte85_reads_the_alpha_channel(tmp_path):
    root = tmp_path / "PhotoMatte85"
    root.mkdir()
    gt = _soft(3)
    Image.fromarray(np.dstack([_photo(3), gt])).save(root / "a.png")
    from datagen.assets import load_asset

    (row,) = scan([("photomatte85", root)], min_size=32)
    assert np.array_equal(np.round(load_asset(row)[1] * 255).astype(np.uint8), gt)


def test_backgrounds_pair_with_their_disparity_maps(tmp_path):
    """NAME_disp.npy (float) or NAME_disp.png (16-bit) beside a photo is its depth; a map of another size, or one
    with no photo, is a skipped row with the reason."""
    from datagen.assets import load_disparity_map

    bg = tmp_path / "bg"
    bg.mkdir()
    ramp = np.linspace(0, 1, 80 * 80, dtype=np.float32).reshape(80, 80)
    for name in ("npy", "png", "plain", "wrong"):
        Image.fromarray(_photo(hash(name) % 100, 80)).save(bg / f"{name}.jpg")
    np.save(bg / "npy_disp.npy", ramp * 7.0)
    Image.fromarray((ramp * 65535).astype(np.uint16)).save(bg / "png_disp.png")
    np.save(bg / "wrong_disp.npy", np.ones((10, 10), np.float32) * np.arange(10))
    np.save(bg / "lonely_disp.npy", ramp)
    rows = {r.uri.rsplit("/", 1)[-1]: r for r in scan([("backgrounds", bg)], min_size=32)}
    assert rows["npy.jpg"].ok and rows["npy.jpg"].disp_uri.endswith("npy_disp.npy")
    assert rows["png.jpg"].ok and rows["png.jpg"].disp_uri.endswith("png_disp.png")
    assert rows["plain.jpg"].ok and rows["plain.jpg"].disp_uri == ""
    assert not rows["wrong.jpg"].ok and "disparity map size 10×10 does not match" in rows["wrong.jpg"].reason
    assert not rows["lonely_disp.npy"].ok and "orphan" in rows["lonely_disp.npy"].reason
    png = load_disparity_map(rows["png.jpg"].disp_uri)
    assert png.dtype == np.float32 and abs(float(png[-1, -1]) - 1.0) < 1e-4  # 16 bits kept, not squashed to 8


def test_a_file_missing_on_this_node_is_said_so_and_a_late_node_is_checked_before_its_first_shard(tmp_path):
    """Inside a task, a missing asset once read "unreadable or truncated image ([Errno 2] ...)"."""
    import pytest

    from datagen.assets import load_asset
    from datagen.build import BuildConfig, build_shard
    from datagen.sources import AssetUnavailable

    fg = tmp_path / "fg"
    fg.mkdir()
    Image.fromarray(np.dstack([_photo(1), _soft(1)])).save(fg / "a.png")
    (row,) = scan([("generic", fg)], min_size=32, progress=False)
    (fg / "a.png").unlink()  # as on a node that does not mount the folder
    with pytest.raises(AssetUnavailable, match=r"^node \S+: .*a.png: missing on this node") as e:
        load_asset(row)
    assert "unreadable or truncated" not in str(e.value)
    sample = [(str(fg), [row])]
    with pytest.raises(AssetUnavailable, match=f"cannot read {fg}: put the assets on storage every node mounts"):
        build_shard(BuildConfig(size=96, min_asset_size=32), [row], "train", 0, [0], str(tmp_path / "out"), sample)
    assert not (tmp_path / "out").exists()  # nothing rendered or written


def test_a_folder_that_cannot_be_listed_says_permission_denied(tmp_path, monkeypatch):
    """It was reported as "no usable foreground assets ... (0 skipped)". (The tests run as root, for whom no
    folder is unreadable, so the denial is the one the operating system gives another user, staged.)"""
    import os

    from common.errors import UserError

    Image.fromarray(np.zeros((300, 300, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "locked").mkdir()
    real = os.scandir

    def scandir(path="."):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(
        UserError,
        match=rf"^{tmp_path}/locked: permission denied: the asset folder .* cannot be "
        r"listed",
    ):
        scan([("generic", tmp_path)])
