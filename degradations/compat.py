"""Import basicsr 1.4.2 with current torchvision.

basicsr 1.4.2 (the latest release on PyPI) imports ``torchvision.transforms.functional_tensor``, a private module
that torchvision 0.17 removed; the fix exists only on basicsr's master branch. The one name basicsr takes from it,
``rgb_to_grayscale``, is public in ``torchvision.transforms.functional`` with the same signature and result, so
before the first import of basicsr we register a module of that old name that provides it. Nothing else of
torchvision or basicsr is touched, and nothing happens if torchvision still ships the old module.
"""

from __future__ import annotations

import importlib
import sys
import types

_OLD = "torchvision.transforms.functional_tensor"


def install_torchvision_shim() -> None:
    """Make ``import torchvision.transforms.functional_tensor`` work (idempotent)."""
    if _OLD in sys.modules:
        return
    try:
        importlib.import_module(_OLD)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    shim = types.ModuleType(_OLD)
    shim.__doc__ = "bokehgen shim: torchvision removed this module; basicsr 1.4.2 imports rgb_to_grayscale from it."
    shim.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[_OLD] = shim


def basicsr_modules():
    """(basicsr.data.degradations, basicsr.utils.img_process_util, basicsr.utils.diffjpeg), imported through the
    shim."""
    install_torchvision_shim()
    from basicsr.data import degradations
    from basicsr.utils import diffjpeg, img_process_util

    return degradations, img_process_util, diffjpeg
