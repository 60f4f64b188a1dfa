"""End to end: degrade a folder with the real CLI, bad files included."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from degradations.cli import main, parse_args
from manifests import pairs_schema


def test_cli_degrades_folder_into_pairs_and_records_bad_files(tmp_path):
    from skimage import data

    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(data.astronaut()[:130, :150]).save(src / "astronaut.png")  # cropped to 128×148
    Image.fromarray(data.coffee()[:100, :100]).convert("LA").save(src / "sub" / "gray_alpha.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.fromarray(data.camera()[:40, :40]).save(src / "tiny.png")
    Image.fromarray(data.camera()[:3, :3]).save(src / "three.png")  # once "image 0×0"
    rows, skipped = main(
        parse_args(
            ["--input", str(src), "--out", str(tmp_path / "pairs"), "--seed", "3", "--set", "final_sinc_prob=1.0"]
        )
    )
    table = pq.read_table(tmp_path / "pairs" / "pairs.parquet")
    assert table.schema.equals(pairs_schema())
    assert table.num_rows == 2 and sorted(table["name"].to_pylist()) == ["astronaut", "sub__gray_alpha"]
    assert all(table["final_sinc"].to_pylist())
    hq = np.asarray(Image.open(tmp_path / "pairs" / "hq" / "astronaut.png"))
    lq = np.asarray(Image.open(tmp_path / "pairs" / "lq" / "astronaut.png"))
    assert hq.shape == (128, 148, 3) and lq.shape == (32, 37, 3)
    reasons = {
        p.split("/")[-1]: r
        for p, r in zip(
            pq.read_table(tmp_path / "pairs" / "skipped.parquet")["source"].to_pylist(),
            pq.read_table(tmp_path / "pairs" / "skipped.parquet")["reason"].to_pylist(),
        )
    }
    assert "unreadable or truncated image" in reasons["broken.png"] and "broken.png" in reasons["broken.png"]
    assert "three.png: 3×3 is smaller than the minimum of 84 px" in reasons["three.png"]
    assert "tiny.png: 40×40 is smaller than the minimum of 84 px" in reasons["tiny.png"]
    # the same run again gives the same LQ bytes
    main(
        parse_args(
            ["--input", str(src), "--out", str(tmp_path / "again"), "--seed", "3", "--set", "final_sinc_prob=1.0"]
        )
    )
    assert np.array_equal(lq, np.asarray(Image.open(tmp_path / "again" / "lq" / "astronaut.png")))


def test_config_errors_name_the_file_and_key(tmp_path):
    import pytest

    from degradations.cli import main, parse_args

    bad = tmp_path / "deg.yaml"
    bad.write_text("jpeg_range: [30, \n")
    with pytest.raises(SystemExit, match="deg.yaml: invalid YAML"):
        main(parse_args(["--input", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(bad)]))
    with pytest.raises(SystemExit, match="sinc_prob: expected a number, got 'often'"):
        main(parse_args(["--input", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "sinc_prob=often"]))


def test_a_rerun_leaves_exactly_the_pairs_it_lists_and_never_reads_its_own_output(tmp_path):
    """Files of an earlier run once stayed in hq/ and lq/ beside a pairs.parquet that listed fewer; an --out inside
    --input read its own output back as new pairs."""
    from skimage import data

    src = tmp_path / "photos"
    src.mkdir()
    for name in ("astronaut", "coffee"):
        Image.fromarray(getattr(data, name)()[:96, :96]).save(src / f"{name}.png")
    out = tmp_path / "pairs"
    main(parse_args(["--input", str(src), "--out", str(out)]))
    (src / "coffee.png").unlink()
    rows, _ = main(parse_args(["--input", str(src), "--out", str(out)]))
    listed = sorted(pq.read_table(out / "pairs.parquet")["hq"].to_pylist())
    assert listed == ["hq/astronaut.png"] and sorted(p.name for p in (out / "hq").iterdir()) == ["astronaut.png"]
    assert sorted(p.name for p in (out / "lq").iterdir()) == ["astronaut.png"]
    with pytest.raises(SystemExit, match="lies inside the input"):
        main(parse_args(["--input", str(src), "--out", str(src / "pairs")]))
    mine = tmp_path / "mine"
    (mine / "hq").mkdir(parents=True)
    (mine / "hq" / "holiday.png").write_bytes(b"a photo of mine")
    with pytest.raises(SystemExit, match=r"did not write \(hq/holiday.png\)"):
        main(parse_args(["--input", str(src), "--out", str(mine)]))
    assert (mine / "hq" / "holiday.png").read_bytes() == b"a photo of mine"
    with pytest.raises(SystemExit, match="--input .*nope: no such folder"):
        main(parse_args(["--input", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]))
