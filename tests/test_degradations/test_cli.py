"""End to end: degrade a folder with the real CLI, bad files included."""

import numpy as np
import pyarrow.parquet as pq
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
    rows, skipped = main(parse_args(["--input", str(src), "--out", str(tmp_path / "pairs"), "--seed", "3",
                                     "--set", "final_sinc_prob=1.0"]))
    table = pq.read_table(tmp_path / "pairs" / "pairs.parquet")
    assert table.schema.equals(pairs_schema())
    assert table.num_rows == 2 and sorted(table["name"].to_pylist()) == ["astronaut", "sub__gray_alpha"]
    assert all(table["final_sinc"].to_pylist())
    hq = np.asarray(Image.open(tmp_path / "pairs" / "hq" / "astronaut.png"))
    lq = np.asarray(Image.open(tmp_path / "pairs" / "lq" / "astronaut.png"))
    assert hq.shape == (128, 148, 3) and lq.shape == (32, 37, 3)
    reasons = {p.split("/")[-1]: r for p, r in
               zip(pq.read_table(tmp_path / "pairs" / "skipped.parquet")["source"].to_pylist(),
                   pq.read_table(tmp_path / "pairs" / "skipped.parquet")["reason"].to_pylist())}
    assert "unreadable or truncated image" in reasons["broken.png"] and "broken.png" in reasons["broken.png"]
    assert "smaller than 84 px" in reasons["tiny.png"]
    # the same run again gives the same LQ bytes
    main(parse_args(["--input", str(src), "--out", str(tmp_path / "again"), "--seed", "3",
                     "--set", "final_sinc_prob=1.0"]))
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
