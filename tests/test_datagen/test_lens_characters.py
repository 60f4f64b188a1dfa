"""Lens characters in the data (the ``lens:`` section): drawn per sample, recorded, rendered, declared."""

import dataclasses

import numpy as np
import pyarrow as pa
import pytest

from datagen.character import CHARACTERS, LensConfig, draw_character, lens_columns
from datagen.config import BuildConfig
from manifests.schemas import LENS_COLUMNS, sample_json_type


def _fields(value, kind):
    if pa.types.is_struct(kind):
        assert set(value) == {kind.field(i).name for i in range(kind.num_fields)}


def test_each_character_is_drawn_recorded_and_rendered(assets):
    from datagen.assets import usable
    from datagen.scenes import SceneConfig, draw_scene, make_sample

    fgs, bgs = usable(assets, "foreground", "train"), usable(assets, "background", "train")
    by_id = {a.id: a for a in assets}
    spec = draw_scene(0, 2, fgs, bgs, SceneConfig(k_range=(12.0, 12.0)), size=96)
    plain = make_sample(dataclasses.replace(spec), by_id)
    for name in CHARACTERS:
        lens = draw_character(spec, LensConfig(characters=[name]))
        (a_lo, a_hi), (c_lo, c_hi), swirl = CHARACTERS[name]
        assert lens["character"] == name and a_lo <= lens["loca"][0] <= a_hi and c_lo <= lens["cateye"] <= c_hi
        assert lens == draw_character(spec, LensConfig(characters=[name]))  # from (seed, index) alone
        sample = make_sample(dataclasses.replace(spec), by_id, lens=lens)
        assert sample["json"]["lens"] == lens
        assert set(lens_columns(lens)) == {n for n, _ in LENS_COLUMNS}
        assert np.array_equal(sample["aif"], plain["aif"]) and np.array_equal(sample["lq"], plain["lq"])
        same = np.array_equal(sample["bokeh"], plain["bokeh"])
        assert same == (name == "ideal"), name  # only the ideal lens renders the plain bokeh
    kind = sample_json_type({}, lens=True).field("lens").type
    _fields(sample["json"]["lens"], kind)


def test_the_lens_section_is_checked_and_leaves_other_builds_hash_alone():
    assert BuildConfig.load(None, []).digest() == BuildConfig.load(None, ["lens.characters=[]"]).digest()
    on = BuildConfig.load(None, ["lens.characters=[ideal, fringing, swirly]", "lens.weights=[2, 1, 1]"])
    assert on.lens.enabled and on.digest() != BuildConfig.load(None, []).digest()
    with pytest.raises(ValueError, match="'soap_bubble' is not a lens character; characters: ideal, apochromat"):
        BuildConfig.load(None, ["lens.characters=[soap_bubble]"])
    with pytest.raises(ValueError, match="weights: 1 non-negative weights"):
        BuildConfig.load(None, ["lens.characters=[ideal]", "lens.weights=[1, 2]"])


def test_a_build_with_characters_records_them_and_the_synthetic_evaluation_groups_by_them(tmp_path):
    import pyarrow.parquet as pq

    from datagen.build import build_shard, scan_assets
    from model.evaluation.protocols import synthetic_items

    cfg = BuildConfig.load(
        None, ["size=96", "min_asset_size=96", "val_fraction=0", "lens.characters=[fringing, swirly]"]
    )
    build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0, 1, 2], str(tmp_path))
    table = pq.read_table(tmp_path / "train-000000.parquet")
    assert {n for n, _ in LENS_COLUMNS} <= set(table.column_names)
    names = table.column("lens_character").to_pylist()
    assert set(names) <= {"fringing", "swirly"} and len(names) == 3
    items = list(synthetic_items(str(tmp_path / "train-000000.tar")))
    assert [i.group for i in items] == names  # PSNR by character in the synthetic evaluation's summary


def test_a_clip_takes_its_character_in_every_frame(tmp_path):
    """One recipe for images and clips: a clip build draws a character per clip, renders every frame's bokeh with
    it (the all-in-focus frames are the ideal build's), and records it as an image's (JSON, lens_* columns)."""
    import json

    import pyarrow.parquet as pq
    import webdataset as wds

    from datagen.build import build_shard, scan_assets
    from manifests.schemas import clip_json_type

    base = ["size=96", "min_asset_size=96", "val_fraction=0", "sequence.frames=2", "scene.k_range=[16, 16]"]
    decoded = {}
    for name, extra in (("ideal", []), ("fringing", ["lens.characters=[fringing]"])):
        cfg = BuildConfig.load(None, base + extra)
        (tmp_path / name).mkdir()
        build_shard(cfg, scan_assets(cfg, progress=False), "train", 0, [0], str(tmp_path / name))
        decoded[name] = next(iter(wds.WebDataset(str(tmp_path / name / "train-000000.tar"), shardshuffle=False)))
    plain, fringed = decoded["ideal"], decoded["fringing"]
    meta = json.loads(fringed["json"])
    assert meta["lens"]["character"] == "fringing" and "lens" not in json.loads(plain["json"])
    kind = clip_json_type({}, lens=True)
    assert set(meta) == {kind.field(i).name for i in range(kind.num_fields)}
    for k in range(2):
        assert fringed[f"aif.{k:03d}.png"] == plain[f"aif.{k:03d}.png"]
        assert fringed[f"bokeh.{k:03d}.png"] != plain[f"bokeh.{k:03d}.png"]
    row = pq.read_table(tmp_path / "fringing" / "train-000000.parquet").to_pylist()[0]
    assert row["lens_character"] == "fringing" and row["frames"] == 2
