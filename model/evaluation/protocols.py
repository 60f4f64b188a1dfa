"""The benchmark layouts, each read one :class:`Item` at a time (an image that fails is yielded as (name, why)
and skipped): ``pairs`` (EBB!-style originals, bokeh targets and focus), ``realsr`` (RealSR and DRealSR) and
``synthetic`` (bokehgen shards with exact ground truth). The depth protocol's reader is in :mod:`.depth`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from common.images import display_name, list_images, read_disparity, to_uint8
from renderer.options import MAX_COC_PX

from . import benchmarks
from .methods import Runner
from .shared import REALSR_SCALE, Item, LQCache, as_float, crop4, disparity_file, rgb_u8, stem_map


def pairs_items(data: Path, cache: LQCache, K_default: float | None, names: list | None = None):
    """The ``pairs`` layout, one :class:`Item` at a time (an image that fails is reported and skipped)."""
    originals, bokehs = stem_map(data / "original"), stem_map(data / "bokeh")
    if not originals:
        raise ValueError(
            f"--data {data}: no images in {data / 'original'} (pairs layout: original/, bokeh/, focus.json)"
        )
    focus = {}
    if (data / "focus.json").is_file():
        try:
            focus = json.loads((data / "focus.json").read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{data / 'focus.json'}: not valid JSON ({e})") from None
    for name in names or sorted(originals):
        if name not in bokehs:
            yield name, f"no bokeh/{name}.* beside original/{originals[name].name}"
            continue
        try:
            hq = crop4(rgb_u8(originals[name]))
            target = crop4(rgb_u8(bokehs[name]))
            if target.shape != hq.shape:
                raise ValueError(
                    f"{bokehs[name]}: {target.shape[1]}×{target.shape[0]}, the original {hq.shape[1]}×{hq.shape[0]}"
                )
            f = focus.get(name, {})
            K = f.get("K", K_default)
            if K is None:
                raise ValueError(f"{name}: no K in focus.json and no --K")
            if not 0 <= float(K) <= MAX_COC_PX:
                raise ValueError(f"{name}: K in [0, {MAX_COC_PX:g}], got {K}")
            mask_path = data / "focus" / f"{name}.png"
            xy = mask = None
            if "x" in f and "y" in f:
                xy = (int(f["x"]), int(f["y"]))
                if not (0 <= xy[0] < hq.shape[1] and 0 <= xy[1] < hq.shape[0]):
                    raise ValueError(
                        f"{data / 'focus.json'}: {name}: focus point {xy} outside the {hq.shape[1]}×{hq.shape[0]} image"
                    )
            elif mask_path.is_file():
                mask = crop4(np.asarray(Image.open(mask_path).convert("L")) > 127)
                if mask.shape != hq.shape[:2] or not mask.any():
                    raise ValueError(f"{mask_path}: must be the original's size and mark the focal region")
            else:
                raise ValueError(f"{name}: no focus point in focus.json and no focus/{name}.png")
            disp_path = disparity_file(data / "disparity", name)
            disp = None
            if disp_path is not None:
                disp = crop4(read_disparity(disp_path))
                if disp.shape != hq.shape[:2]:
                    raise ValueError(
                        f"{disp_path}: {disp.shape[1]}×{disp.shape[0]}, the original {hq.shape[1]}×{hq.shape[0]}"
                    )
            lq = cache.get(name, originals[name], hq)
        except ValueError as e:
            yield name, str(e)
            continue
        item = Item(
            name,
            lq,
            target,
            float(K),
            aif=hq,
            disp=disp,
            focus_xy=xy,
            focus_mask=mask,
            source=display_name(originals[name]),
        )
        if disp is not None:  # the focus disparity on the ground truth: classical-gt's and the strata's
            item.focus_disparity = Runner.focus(item, disp, exact=False)
        yield item


def realsr_pairs(data: Path) -> list[tuple[str, Path, Path]]:
    """(name, LR, HR) in any of the three layouts."""
    if (data / "LR").is_dir() and (data / "HR").is_dir():
        lr, hr = stem_map(data / "LR"), stem_map(data / "HR")
    elif (data / "test_LR").is_dir() and (data / "test_HR").is_dir():
        lr, hr = stem_map(data / "test_LR", ("_x4",)), stem_map(data / "test_HR", ("_x1",))
    else:
        lr = {p.stem[:-4]: p for p in list_images(data) if p.stem.endswith("_LR4")}
        hr = {p.stem[:-3]: p for p in list_images(data) if p.stem.endswith("_HR")}
    common = sorted(set(lr) & set(hr))
    if not common:
        raise ValueError(
            f"--data {data}: no LR/HR pairs (LR/ + HR/ with matching names, NAME_LR4.* + NAME_HR.*, "
            "or test_LR/NAME_x4.* + test_HR/NAME_x1.*)"
        )
    return [(n, lr[n], hr[n]) for n in common]


def realsr_items(data: Path, names=None):
    pairs = realsr_pairs(data)
    for name, lr_path, hr_path in pairs:
        if names and name not in names:
            continue
        try:
            lq, hr = rgb_u8(lr_path), rgb_u8(hr_path)
            want = (lq.shape[0] * REALSR_SCALE, lq.shape[1] * REALSR_SCALE)
            # the documented crop: the HR's bottom and right edges down to 4× the LR (at most 3 px each)
            if not all(w <= h < w + REALSR_SCALE for h, w in zip(hr.shape[:2], want)):
                raise ValueError(
                    f"{hr_path}: {hr.shape[1]}×{hr.shape[0]} is not {REALSR_SCALE}× its LR "
                    f"{lr_path.name} ({lq.shape[1]}×{lq.shape[0]} -> {want[1]}×{want[0]}, up to "
                    f"{REALSR_SCALE - 1} px more cropped); pair skipped"
                )
            hr = hr[: want[0], : want[1]]
        except ValueError as e:
            yield name, str(e)
            continue
        yield Item(name, lq, hr, 0.0, source=display_name(hr_path))


def synthetic_urls(data: str) -> list[str]:
    from ..data import expand_urls

    path = Path(data)
    if path.is_dir():
        if not (path / "dataset.json").is_file():
            raise ValueError(
                f"--data {data}: a folder without dataset.json: not a bokehgen build (give shards: "
                "'DIR/val-{000000..000003}.tar' or a glob)"
            )
        urls = sorted(str(p) for p in path.glob("val-*.tar"))
        if not urls:
            raise ValueError(f"--data {data}: the build has no val-*.tar shards")
        return urls
    return expand_urls(data)


def synthetic_items(data: str, names=None):
    import webdataset as wds

    from datagen.shards import decode_sample
    from model.data import frames_as_images

    samples = wds.WebDataset(synthetic_urls(data), shardshuffle=False, empty_check=False)
    for sample in frames_as_images(samples):  # a clip build is scored frame by frame
        key = sample["__key__"]
        if names and key not in names:
            continue
        try:
            s = decode_sample(sample)
            meta = s["json"]

            def dec(name, s=s):
                return to_uint8(as_float(s[name]))

            x, y = meta["focus"]["xy"]
            item = Item(
                key,
                dec("lq"),
                dec("bokeh"),
                float(meta["render"]["K"]),
                aif=dec("aif"),
                disp=s["disp"],
                focus_disparity=float(meta["render"]["focus_disparity"]),
                focus_xy=(int(x), int(y)),
                source=f"{Path(sample['__url__']).name}:{key}",
                f_number=(meta.get("camera") or {}).get("target", {}).get("f_number"),
                group=(meta.get("lens") or {}).get("character"),  # a set with lens characters: PSNR by character
            )
        except (ValueError, KeyError) as e:
            yield key, f"{e}"
            continue
        yield item


#: the image benchmarks' readers by protocol name (--protocol): (data, LQ cache, --K) -> Items (or (name, why) for
#: an item skipped); a new protocol is one entry. The depth protocol has its own evaluation (evaluation.depth).
READERS: dict = {
    "pairs": lambda data, cache, K: pairs_items(Path(data), cache, K),
    "realsr": lambda data, cache, K: realsr_items(Path(data)),
    "synthetic": lambda data, cache, K: synthetic_items(data),
    # the field's benchmarks, as downloaded (evaluation.benchmarks)
    "blb": lambda data, cache, K: benchmarks.blb_items(Path(data)),
    "ebb_val294": lambda data, cache, K: benchmarks.val294_items(Path(data), K),
    "ebb400": lambda data, cache, K: benchmarks.ebb400_items(Path(data), K),
    "ebb400_lq": lambda data, cache, K: benchmarks.ebb400_lq_items(Path(data), cache, K),
    "realbokeh": lambda data, cache, K: benchmarks.realbokeh_items(Path(data), K),
    "realbokeh_bin": lambda data, cache, K: benchmarks.realbokeh_items(Path(data), K, binary=True),
}
#: the field's benchmarks, scored as their papers score them: RGB (not luma)
FIELD_PROTOCOLS = ("blb", "ebb_val294", "ebb400", "ebb400_lq", "realbokeh", "realbokeh_bin")
