"""Object storage fails fast: every way a store can be out of reach ends in one line naming the URI and the cause,
within the storage bounds, for every command's entry to storage (an output folder, an asset folder, a build to
verify, training shards); Ctrl-C ends a blocked call; a second writer of a folder is refused."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from manifests.storage import StorageError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3():
    from conftest import moto_s3

    with moto_s3("bokeh") as (uri, _):
        yield uri


@pytest.fixture
def closed_port():
    """A local port nobody listens on (connection refused at once)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent_port():
    """A local port that accepts connections and never answers (a store behind a network that drops replies)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield s.getsockname()[1]
    s.close()


def _entries():
    """Each command's first call on storage: (what, call(uri))."""
    from datagen.sources import Folder
    from manifests.outdir import claim
    from manifests.verify import verify
    from model.data import expand_urls
    from model.photos import PhotoSource, list_source

    return {
        "--out": lambda u: claim(u, "datagen.build", ["*.tar"], create=False),
        "--assets": lambda u: Folder(u).exists(),
        "verify": verify,
        "train shards": lambda u: expand_urls(u.replace("/ds?", "/ds/train-000000.tar?")),
        "isr_data": lambda u: list_source(PhotoSource(u.replace("/ds?", "/ds/photos-000.tar?")), "isr_data"),
    }


def _expect(call, uri, cause, bound):
    t0 = time.monotonic()
    with pytest.raises(StorageError) as err:
        call(uri)
    took = time.monotonic() - t0
    line = str(err.value)
    assert "\n" not in line and cause in line, line
    assert "testing:testing" not in line and "?" not in line.split(":", 2)[-1][:0]  # no credentials shown
    assert took < bound, f"{took:.1f} s > {bound} s: {line}"
    return took


@pytest.mark.parametrize("entry", ["--out", "--assets", "verify", "train shards", "isr_data"])
def test_no_bucket_wrong_credentials_and_an_unreachable_endpoint_fail_in_one_line(entry, s3, closed_port):
    from moto.core.authorization import enable_iam_authentication

    call = _entries()[entry]
    good = s3("ds")
    _expect(call, good.replace("@bokeh/", "@nobucket/"), "s3://nobucket/ds", 5)
    _expect(call, good.replace("@bokeh/", "@nobucket/"), "no such bucket 'nobucket'", 5)
    with enable_iam_authentication():  # moto checks keys now: these are not known to it
        _expect(call, good.replace("testing:testing@", "AKIAWRONGKEY:wrong@"), "credentials refused", 5)
    unreachable = f"s3://k:s@bokeh/ds?endpoint_override=http://127.0.0.1:{closed_port}&scheme=http&region=us-east-1"
    _expect(call, unreachable, "endpoint unreachable", 10)


def test_a_store_that_never_answers_is_given_up_within_the_bound(silent_port, monkeypatch):
    from manifests import Store

    monkeypatch.setenv("BOKEHGEN_STORAGE_TIMEOUT", "2")
    uri = f"s3://k:s@bokeh/ds?endpoint_override=http://127.0.0.1:{silent_port}&scheme=http&region=us-east-1"
    took = _expect(lambda u: Store(u).check_reachable(), uri, "no answer within 2 s", 4)
    assert took >= 2


def test_ctrl_c_ends_a_call_blocked_on_storage(silent_port):
    """The real CLI, blocked on a store that never answers (bounds set far away): SIGINT ends it at once."""
    env = dict(
        os.environ,
        BOKEHGEN_STORAGE_TIMEOUT="600",
        BOKEHGEN_STORAGE_REQUEST="600",
        BOKEHGEN_STORAGE_CONNECT="600",
        PYTHONPATH=str(REPO),
    )
    uri = f"s3://k:s@bokeh/ds?endpoint_override=http://127.0.0.1:{silent_port}&scheme=http&region=us-east-1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "manifests", "verify", uri],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)  # imported, and waiting on the store
    assert proc.poll() is None, proc.communicate()
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err


def test_hdfs_without_java_and_a_bad_uri_are_one_line(tmp_path):
    from manifests import Store

    if not os.environ.get("JAVA_HOME") and not Path("/usr/lib/jvm/default-java/lib/server/libjvm.so").exists():
        with pytest.raises(StorageError, match=r"^hdfs://localhost:9000/x: (Java|libhdfs) is missing for HDFS"):
            Store("hdfs://localhost:9000/x")
    with pytest.raises(StorageError, match=r"^gs://b/x: invalid URI: .*anonymous"):
        Store("gs://b/x?anonymous=true")
    with pytest.raises(StorageError, match=r"invalid URI"):
        Store("nosuchfs://b/x")


def test_the_bounds_are_read_from_the_environment_and_checked(monkeypatch):
    from common.errors import UserError
    from manifests.storage import open_filesystem, storage_bounds

    monkeypatch.setenv("BOKEHGEN_STORAGE_CONNECT", "1.5")
    monkeypatch.setenv("BOKEHGEN_STORAGE_RETRIES", "2")
    assert storage_bounds()["connect"] == 1.5 and storage_bounds()["retries"] == 2
    fs, _ = open_filesystem("s3://bokeh/x?region=us-east-1&request_timeout=4")
    options = fs.__reduce__()[1][0]
    assert options["connect_timeout"] == 1.5 and options["request_timeout"] == 4
    monkeypatch.setenv("BOKEHGEN_STORAGE_TIMEOUT", "forever")
    with pytest.raises(UserError, match="BOKEHGEN_STORAGE_TIMEOUT='forever'"):
        storage_bounds()
