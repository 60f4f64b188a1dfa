"""manifests.storage.Store: atomic writes, listings and the checks the build relies on."""

import pytest

from manifests import Store


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    store = Store(tmp_path / "ds")
    store.makedirs()
    with pytest.raises(RuntimeError):
        with store.open_atomic("train-000000.tar") as f:
            f.write(b"half a shard")
            raise RuntimeError("killed mid-write")
    assert store.entries() == [] and not store.exists("train-000000.tar")
    store.write_bytes("a.bin", b"abc")
    (tmp_path / "ds" / "sub").mkdir()
    assert store.entries() == [("a.bin", False), ("sub", True)] and store.size("a.bin") == 3
    assert store.size("missing") is None


def test_a_file_where_the_folder_should_be_is_detected(tmp_path):
    (tmp_path / "file").write_text("x")
    assert Store(tmp_path / "file").is_file_or_missing_parent()
    assert Store(tmp_path / "file" / "below").is_file_or_missing_parent()
    assert not Store(tmp_path / "new" / "folder").is_file_or_missing_parent()
