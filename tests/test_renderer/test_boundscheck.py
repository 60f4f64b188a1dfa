"""The Numba kernels index without bounds checks in production; under NUMBA_BOUNDSCHECK=1 every index is checked.
This renders the kernels' edge cases (boundscheck_scenes.py) in a subprocess with its own Numba cache folder (so
nothing compiled without checks is reused) and fails on any IndexError."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("boundscheck_scenes.py")


@pytest.mark.slow
def test_kernels_stay_in_bounds_on_their_edge_cases(tmp_path):
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=Path(__file__).parents[2],
    )
    assert "IndexError" not in proc.stderr, proc.stderr[-3000:]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "boundscheck renders: 76 ok" in proc.stdout


def test_bounds_checking_is_on_in_that_subprocess(tmp_path):
    """The check itself works: a cached njit kernel that reads past its array raises IndexError there."""
    code = (
        "import numpy as np\nfrom numba import njit\n@njit(cache=True)\ndef f(a):\n    return a[a.size]\n"
        "f(np.zeros(3))\n"
    )
    (tmp_path / "oob.py").write_text(code)
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "oob.py")], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode != 0 and "IndexError" in proc.stderr
