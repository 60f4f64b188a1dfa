"""The training streams: natural photos degraded online, shards re-degraded at each serving, joint flips, and the
global-index split between ranks that makes N processes see what one process with N times the batch sees."""

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from model.data import ShardStream, StreamConfig, to_tensors
from model.photos import PhotoStream, parse_sources


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "sub").mkdir()
    Image.fromarray(skdata.astronaut()).save(root / "astronaut.png")
    Image.fromarray(skdata.coffee()).save(root / "sub" / "coffee.jpg")
    Image.fromarray(skdata.chelsea()[:60, :70]).save(root / "small_chelsea.png")  # under the patch: upscaled
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """One shard of 4 demo scenes at 96², written by the build's own shard function (no Ray)."""
    from datagen.build import BuildConfig, build_shard, scan_assets

    out = tmp_path_factory.mktemp("shard")
    cfg = BuildConfig.load(None, ["size=96", "min_asset_size=96", "val_fraction=0"])
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0, 1, 2, 3], str(out))
    return str(out / "train-000000.tar")


def first(stream, n=1):
    it = iter(stream)
    return [next(it) for _ in range(n)]


def test_photo_stream_is_reproducible_split_by_rank_resumable_and_skips_bad_files(photo_dir):
    sources = parse_sources([{"path": str(photo_dir), "weight": 1.0}])
    messages = []
    make = lambda **k: PhotoStream(sources, 48, 3, seed=5, log=messages.append, **k)  # noqa: E731
    a, b = first(make(rank=0, world=1), 3), first(make(rank=0, world=1), 3)
    for x, y in zip(a, b):
        assert x["key"] == y["key"] and torch.equal(x["lq"], y["lq"]) and torch.equal(x["aif"], y["aif"])
    assert a[0]["lq"].shape == a[0]["aif"].shape == (3, 3, 48, 48)
    assert a[0]["aif"].min() >= -1 and a[0]["aif"].max() <= 1
    # two ranks: rank r's batch j holds global samples (2j + r)·3 ...: disjoint, and together one batch of 6
    r0, r1 = first(make(rank=0, world=2), 2), first(make(rank=1, world=2), 2)
    one = first(PhotoStream(sources, 48, 6, seed=5, rank=0, world=1, log=messages.append), 2)
    for j in range(2):
        assert r0[j]["key"] + r1[j]["key"] == one[j]["key"]
        assert torch.equal(torch.cat([r0[j]["lq"], r1[j]["lq"]]), one[j]["lq"])
    assert not set(r0[0]["key"]) & set(r1[0]["key"])
    # resumed after 2 batches: the third batch of an uninterrupted stream
    resumed = first(make(rank=0, world=1, skip_batches=2), 1)[0]
    assert resumed["key"] == a[2]["key"] and torch.equal(resumed["lq"], a[2]["lq"])
    # the broken file was drawn at some point, named once, and replaced
    keys = [k for batch in a + first(make(rank=0, world=1, skip_batches=3), 2) for k in batch["key"]]
    assert any("broken.png" in m for m in messages) and not any("broken" in k for k in keys)
    assert {k.split(":")[-1] for k in keys} >= {"astronaut.png", "coffee.jpg", "small_chelsea.png"}


def test_photo_stream_flips_and_degrades_online_with_the_seed(photo_dir):
    sources = parse_sources([{"path": str(photo_dir / "sub")}])  # coffee alone
    flipped = PhotoStream(sources, 64, 8, seed=1, hflip=True, rank=0, world=1).sample(0)
    # the LQ is the degraded HQ crop: it is close to it at low frequencies, not equal
    lq, hq = flipped["lq"], flipped["aif"]
    assert 0.001 < (lq - hq).abs().mean() < 0.3
    seeds = [PhotoStream(sources, 64, 1, seed=s, rank=0, world=1).sample(0)["lq"] for s in (1, 2)]
    assert not torch.equal(seeds[0], seeds[1])


def test_photo_sources_are_checked(tmp_path, photo_dir):
    with pytest.raises(ValueError, match="weight: must be > 0"):
        parse_sources([{"path": str(photo_dir), "weight": 0}])
    with pytest.raises(ValueError, match="unknown keys"):
        parse_sources([{"path": str(photo_dir), "wieght": 1}])
    with pytest.raises(ValueError, match="no such folder"):
        PhotoStream(parse_sources([{"path": str(tmp_path / "nope")}]), 48, 2)
    from model.train import load_configs

    with pytest.raises(ValueError, match=r"train.isr_data\[0\].weight"):
        load_configs("tiny", [f"train.isr_data=[{{path: {photo_dir}, weight: heavy}}]"])
    cfg = load_configs("tiny", [f"train.isr_data=[{{path: {photo_dir}, weight: 0.2}}]"])[1]
    assert cfg.isr_data[0].path == str(photo_dir) and cfg.isr_data[0].weight == 0.2


def test_redegrade_gives_a_new_lq_at_every_serving_and_the_same_in_every_run(shard):
    cfg = StreamConfig(batch_size=4, shuffle_buffer=1, seed=3, redegrade="realesrgan_x4plus")
    epochs = first(ShardStream([shard], cfg, rank=0, world=1), 2)  # one shard of 4: two servings of each sample
    assert epochs[0]["key"] == epochs[1]["key"]
    assert torch.equal(epochs[0]["aif"], epochs[1]["aif"])
    assert not torch.equal(epochs[0]["lq"], epochs[1]["lq"])
    again = first(ShardStream([shard], cfg, rank=0, world=1), 2)
    assert all(torch.equal(x["lq"], y["lq"]) for x, y in zip(epochs, again))
    stored = first(ShardStream([shard], StreamConfig(batch_size=4, shuffle_buffer=1, seed=3), rank=0, world=1), 1)
    assert not torch.equal(stored[0]["lq"], epochs[0]["lq"])  # not the lq.png of the shard


def test_hflip_flips_every_member_of_a_sample_together(shard):
    import webdataset as wds

    sample = next(iter(wds.WebDataset(shard, shardshuffle=False, empty_check=False)))
    plain = to_tensors(sample, seed=0, index=0)
    flips = 0
    for index in range(8):
        t = to_tensors(sample, seed=0, index=index, hflip=True)
        if torch.equal(t["aif"], plain["aif"]):
            continue
        flips += 1
        for key in ("aif", "bokeh", "disp", "defocus", "mask"):
            assert torch.equal(t[key], plain[key].flip(-1)), key
        assert torch.allclose(t["lq"], plain["lq"].flip(-1), atol=1e-6)
    assert 0 < flips < 8


def test_shard_stream_ranks_together_serve_the_one_process_batches(shard):
    cfg = StreamConfig(batch_size=2, shuffle_buffer=4, seed=0)
    one = first(ShardStream([shard], StreamConfig(batch_size=4, shuffle_buffer=4, seed=0), rank=0, world=1), 3)
    r0, r1 = first(ShardStream([shard], cfg, rank=0, world=2), 3), first(ShardStream([shard], cfg, rank=1, world=2), 3)
    for j in range(3):
        assert r0[j]["key"] + r1[j]["key"] == one[j]["key"]
    resumed = first(ShardStream([shard], cfg, skip_batches=2, rank=1, world=2), 1)[0]
    assert resumed["key"] == r1[2]["key"] and torch.equal(resumed["lq"], r1[2]["lq"])


def test_a_photo_source_can_be_webdataset_shards_of_images(tmp_path):
    import io

    from webdataset import TarWriter

    for shard, names in enumerate((("astronaut", "coffee"), ("chelsea",))):
        with TarWriter(str(tmp_path / f"photos-{shard:06d}.tar")) as w:
            for name in names:
                buf = io.BytesIO()
                Image.fromarray(getattr(skdata, name)()).save(buf, format="JPEG", quality=95)
                w.write({"__key__": name, "jpg": buf.getvalue(), "txt": b"caption"})
    stream = PhotoStream(
        parse_sources([{"path": str(tmp_path / "photos-{000000..000001}.tar")}]), 64, 6, seed=0, rank=0, world=1
    )
    assert stream.describe().endswith("(3 photos, weight 1)")
    batch = first(stream, 1)[0]
    assert batch["aif"].shape == (6, 3, 64, 64)
    assert {k.split(":")[-1] for k in batch["key"]} <= {"astronaut.jpg", "coffee.jpg", "chelsea.jpg"}


def test_a_damaged_shard_is_skipped_with_its_name_and_none_readable_is_one_error(tmp_path, capsys):
    """A corrupt tar met during training ended the run with a webdataset traceback."""
    import tarfile

    good = tmp_path / "good.tar"
    with tarfile.open(good, "w") as tar:
        for i in range(4):
            for ext in ("a", "b"):
                data = f"{i}{ext}".encode() * 1000
                info = tarfile.TarInfo(f"s{i:03d}.{ext}")
                info.size = len(data)
                tar.addfile(info, __import__("io").BytesIO(data))
    whole = good.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[:6000])  # cut inside the second sample's first member
    cfg = StreamConfig(2, 4, 0, 32, 1.0, 96)
    served = [s["__key__"] for s, _ in zip(ShardStream([str(good), str(cut)], cfg).raw(), range(12))]
    assert len(served) == 12  # the stream goes on, epoch after epoch
    err = capsys.readouterr().err
    assert f"skipped the rest of a damaged shard {cut}" in err and "Traceback" not in err
    (tmp_path / "bad.tar").write_bytes(b"\xff" * 5000)
    with pytest.raises(ValueError, match="no readable sample in any of the 1 shards"):
        next(iter(ShardStream([str(tmp_path / "bad.tar")], cfg).raw()))


def test_a_photo_folder_of_unreadable_files_is_refused_when_the_config_loads(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "b.png").write_bytes(b"not a png")
    from model.photos import list_source

    with pytest.raises(ValueError, match=r"isr_data: .*none of its 2 images can be read \(e.g. a.jpg: "):
        list_source(parse_sources([str(tmp_path)])[0], "isr_data")
    with pytest.raises(ValueError, match="no such folder"):
        list_source(parse_sources([str(tmp_path / "nope")])[0], "isr_data")


def _rewrite(src, dst, change):
    """A copy of the shard ``src`` with each member passed through change(name, data) -> data or None (dropped)."""
    import io
    import tarfile

    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for m in tin:
            data = change(m.name, tin.extractfile(m).read())
            if data is not None:
                info = tarfile.TarInfo(m.name)
                info.size = len(data)
                tout.addfile(info, io.BytesIO(data))
    return str(dst)


def test_damaged_samples_are_skipped_named_and_counted_and_too_many_end_the_run_in_one_line(shard, tmp_path, capsys):
    """A sample missing members (a truncated tar) and one with an undecodable member: training goes on without
    them, naming each; past max_bad_fraction it stops in one line, also from a DataLoader worker."""
    import tarfile

    from common.cli import run
    from model.data import loader

    keys = sorted({m.name.split(".")[0] for m in tarfile.open(shard)})
    damaged = _rewrite(
        shard,
        tmp_path / "damaged.tar",
        lambda name, data: (
            None
            if name.startswith(keys[1]) and name.endswith("lq.png")
            else b"{not json"
            if name.startswith(keys[2]) and name.endswith(".json")
            else data
        ),
    )
    cfg = StreamConfig(2, 4, 0, 32, 1.0, 96, max_bad_fraction=0.6)
    batches = first(ShardStream([damaged], cfg), 6)
    assert all(len(b["key"]) == 2 for b in batches)
    served = {k for b in batches for k in b["key"]}
    assert served == {keys[0], keys[3]}
    assert int(batches[-1]["bad_samples"][1]) >= 4  # (reader, skipped so far)
    err = capsys.readouterr().err
    assert f"skipped a damaged sample {keys[1]} of {damaged}: ValueError: " in err and "missing members" in err
    assert f"skipped a damaged sample {keys[2]} of {damaged}: JSONDecodeError" in err and "Traceback" not in err
    strict = StreamConfig(2, 4, 0, 32, 1.0, 96, max_bad_fraction=0.1)
    with pytest.raises(ValueError, match=r"of the 2\d samples read are damaged, more than max_bad_fraction 0.1"):
        first(ShardStream([damaged], strict), 20)
    with pytest.raises(SystemExit) as end:  # the same line from a DataLoader worker, under the common runner
        run(lambda _: first(loader([damaged], strict, num_workers=1), 20), None)
    assert str(end.value.code).startswith("error: ") and "\n" not in str(end.value.code)
    assert "more than max_bad_fraction 0.1" in str(end.value.code)


def test_a_clip_build_trains_as_images_one_per_frame_with_the_frames_own_focus(tmp_path):
    """A clip build's frames are served as image samples (and scored so): each frame's own members and its own K
    and focus disparity (a focus pull changes them per frame), counted per frame for resuming; the unreadable is
    refused."""
    import numpy as np

    from common.errors import UserError
    from datagen.build import BuildConfig, build_shard, scan_assets
    from datagen.shards import decode_clip
    from model.data import check_shards, frames_as_images
    from model.photos import check_run_inputs

    cfg = BuildConfig.load(None, ["size=96", "min_asset_size=96", "val_fraction=0", "sequence.frames=3"])
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0, 1], str(tmp_path))
    url = str(tmp_path / "train-000000.tar")
    check_shards([url])
    check_run_inputs((url, None), None, "train.isr_data")
    import webdataset as wds

    clips = {s["__key__"]: decode_clip(s) for s in wds.WebDataset(url, shardshuffle=False)}
    stream = ShardStream([url], StreamConfig(batch_size=6, shuffle_buffer=1, seed=0, k_max=32, crop=None))
    assert stream.epoch_length() == 6
    batch = first(stream)[0]
    assert sorted(batch["key"]) == sorted(f"{k}_f{f:03d}" for k in clips for f in range(3))
    focus = set()
    for i, key in enumerate(batch["key"]):
        clip, f = clips[key[:-5]], int(key[-3:])
        frame = clip["json"]["frames"][f]
        assert float(batch["K"][i]) == pytest.approx(frame["K"])
        assert float(batch["focus_disparity"][i]) == pytest.approx(frame["focus_disparity"])
        assert np.array_equal(batch["disp"][i, 0].numpy(), clip["disp"][f])
        aif = ((batch["aif"][i] + 1) * 127.5).round().permute(1, 2, 0).numpy().astype(np.uint8)
        assert np.array_equal(aif, clip["aif"][f])
        focus.add(round(frame["focus_disparity"], 6))
    assert len(focus) > 1  # the frames differ in focus: each is read with its own
    from model.evaluation.protocols import synthetic_items

    items = list(synthetic_items(url))  # the evaluation scores a clip build frame by frame, the same way
    assert sorted(i.name for i in items) == sorted(batch["key"])
    image = {"__key__": "k", "aif.png": b""}
    assert list(frames_as_images([image])) == [image]  # an image sample passes through
    (tmp_path / "noise.tar").write_bytes(b"\x13" * 4096)
    with pytest.raises(UserError, match=r"^no readable sample in any of the 1 shards: .*noise.tar"):
        check_run_inputs((str(tmp_path / "noise.tar"), None), None, "train.isr_data")
