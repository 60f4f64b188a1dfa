"""manifests owns every Parquet schema; the row types of the packages above must write exactly its columns."""

import dataclasses

import pyarrow as pa

from manifests import assets_schema, checked_table, degradation_schema, samples_schema, scene_schema


def test_asset_rows_match_the_assets_schema():
    from datagen.assets import Asset

    row = Asset("id", "uri", "", "foreground", "generic", 1, 2, True, "sha", "train", True, "")
    table = checked_table([dataclasses.asdict(row)], assets_schema())
    assert table.column_names == [f.name for f in dataclasses.fields(Asset)]
    assert table.to_pylist()[0] == dataclasses.asdict(row)


def test_degradation_records_match_the_degradation_schema():
    from degradations import DegradationConfig, draw

    cols = draw(7, DegradationConfig()).columns()
    assert list(cols) == degradation_schema().names
    table = pa.Table.from_pylist([cols], schema=degradation_schema())  # every value fits its column's type
    back = table.to_pylist()[0]
    assert all(back[k] == v or (v != v and back[k] != back[k]) for k, v in cols.items())  # NaN: not drawn


def test_scene_columns_match_the_scene_schema():
    from datagen.scenes import ForegroundSpec, SceneSpec

    fg = ForegroundSpec("a", 0.8, 0.5, (0.5, 0.5), False)
    spec = SceneSpec(1, 2, 96, "bg", (0.0, 0.0, 1.0), False, (0.1, 0.0, 0.0), [fg, fg], 8.0, "fg0", (0.2, 0.3), 5)
    cols = spec.columns()
    assert set(cols) == set(scene_schema().names)
    pa.Table.from_pylist([cols], schema=scene_schema())
    assert set(scene_schema().names) <= set(samples_schema().names)
