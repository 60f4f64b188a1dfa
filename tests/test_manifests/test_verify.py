"""manifests.verify and shard_problem on a damaged dataset: every problem named, none fatal."""

import hashlib
import io
import json
import tarfile

import numpy as np
import pyarrow as pa
import pytest
from webdataset import TarWriter

from manifests import Store, samples_schema, shard_problem, verify


def _members(i: int) -> dict[str, bytes]:
    return {
        "aif.png": b"a%d" % i,
        "bokeh.png": b"b%d" % i,
        "lq.png": b"l%d" % i,
        "disp.npy": np.float32(i).tobytes(),
        "json": json.dumps({"i": i}).encode(),
    }


def _write(store: Store, name: str, keys: list[str], record_digest: bool = True) -> None:
    buf = io.BytesIO()
    writer = TarWriter(buf, encoder=False, mtime=0.0)
    rows = []
    for n, key in enumerate(keys):
        members = _members(n)
        writer.write({"__key__": key, **members})
        row = {f.name: None for f in samples_schema()}
        row.update(key=key, shard=f"{name}.tar", split="train")
        for m, data in members.items():
            row[f"{m.replace('.', '_')}_sha256"] = hashlib.sha256(data).hexdigest()
            row[f"{m.replace('.', '_')}_bytes"] = len(data)
        rows.append(row)
    writer.close()
    store.write_bytes(f"{name}.tar", buf.getvalue())
    table = pa.Table.from_pylist(rows, schema=samples_schema())
    if record_digest:
        table = table.replace_schema_metadata(
            {"shard_bytes": str(len(buf.getvalue())), "shard_sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
        )
    store.write_table(table, f"{name}.parquet")


@pytest.fixture
def dataset(tmp_path):
    store = Store(tmp_path / "ds")
    store.makedirs()
    _write(store, "train-000000", ["000000_000000", "000000_000001"])
    _write(store, "train-000001", ["000001_000002"])
    _write(store, "train-000002", ["000002_000003"], record_digest=False)  # a manifest from before the digest
    tables = [store.read_table(n) for n in store.names("train-*.parquet")]
    store.write_table(pa.concat_tables(tables).replace_schema_metadata(None), "samples.parquet")
    return store


def test_an_intact_dataset_has_no_problems(dataset):
    assert verify(dataset) == []
    assert all(shard_problem(dataset, f"train-00000{i}.tar") is None for i in range(3))


def test_truncated_and_altered_shards_are_named_and_the_check_goes_on(dataset):
    path = dataset.local_path("train-000000.tar")
    path.write_bytes(path.read_bytes()[:700])  # cut mid-member
    altered = bytearray(dataset.read_bytes("train-000002.tar"))
    with tarfile.open(fileobj=io.BytesIO(bytes(altered))) as tar:
        altered[tar.getmember("000002_000003.aif.png").offset_data] ^= 0xFF  # one byte of a member's data
    dataset.local_path("train-000002.tar").write_bytes(bytes(altered))
    problems = verify(dataset)
    assert any(p.startswith("train-000000.tar: unreadable tar") for p in problems), problems
    assert any(p.startswith("train-000002.tar: 000002_000003.aif.png checksum differs") for p in problems), problems
    assert not any(p.startswith("train-000001.tar") for p in problems)  # the intact shard was still checked
    assert "truncated or replaced" in shard_problem(dataset, "train-000000.tar")
    assert "checksum differs" in shard_problem(dataset, "train-000002.tar")
    dataset.delete("train-000001.tar")
    assert "missing" in shard_problem(dataset, "train-000001.tar")


def test_verify_and_stats_on_a_missing_folder_or_one_that_is_not_a_build_are_one_line(tmp_path):
    """Both raised a FileNotFoundError traceback."""
    import subprocess
    import sys
    from pathlib import Path

    from common.errors import UserError
    from manifests import stats, verify

    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"x")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "dataset.json").write_text("{}")
    for folder, message in (
        (tmp_path / "nothing", "no such folder"),
        (tmp_path / "photos", "not a folder written by datagen.build"),
        (tmp_path / "half", "the build has not finished"),
    ):
        for call in (verify, stats):
            with pytest.raises(UserError, match=message):
                call(folder)
    done = subprocess.run(
        [sys.executable, "-m", "manifests", "verify", str(tmp_path / "nothing")],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        done.returncode == 1
        and done.stderr.strip() == f"error: {tmp_path / 'nothing'}: no such folder (or an empty one), not a build"
    ), done.stderr
