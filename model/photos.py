"""The natural-photo stream of the Real-ISR phases and of depth distillation: HQ photographs degraded online.

``train.isr_data`` (or ``distill.isr_data``) lists sources with weights, e.g.
``[{path: /data/LSDIR, weight: 1.0}, {path: /data/FFHQ10k, weight: 0.2}]``. A source is a folder (searched
recursively; any image PIL reads) or WebDataset shards of images (a brace pattern or glob of ``.tar`` files; the
first image member of each sample is used). Global sample g (see :class:`model.data.GlobalBatches`) is a pure
function of (run seed, g): a source drawn by weight, a photo drawn uniformly in it, a random crop, a random
horizontal flip and bokehgen's own Real-ESRGAN degradation with the seed ``derive_seed(seed, "photo", g)`` — so any
rank, worker or resumed run serves exactly the same LQ for the same g, and the ranks' slices differ.

Crop: a patch of P = max(crop, 84) px (84 = 4 × the largest blur kernel, the smallest image the degradation takes;
a multiple of 4) is degraded, then a ``crop``-sized window aligned on the LQ grid is kept, as for the shards. A
photo whose short side is under P is upscaled (bicubic) to P first: nothing is thrown away. A file that cannot be
read is skipped, its name and the reason logged once, and another photo drawn in its place.
"""

from __future__ import annotations

import io
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common.errors import UserError

from .data import GlobalBatches, derive_seed, image_tensor, upsampled

MIN_PATCH = 84


@dataclass
class PhotoSource:
    path: str
    weight: float = 1.0

    def __post_init__(self):
        if not self.weight > 0:
            raise ValueError(f"weight: must be > 0, got {self.weight:g}")


def check_online(crop: int | None, degradation: str) -> None:
    """The ``crop`` and ``degradation`` options of a training config (train, distill): a ValueError naming them."""
    if crop is not None and (crop % 8 or crop < 16):
        raise ValueError(f"crop: a multiple of 8 and >= 16 (or null), got {crop}")
    from degradations import DegradationConfig

    try:
        DegradationConfig.preset(degradation)
    except ValueError as e:
        raise ValueError(f"degradation: {e}") from None


def parse_sources(value, where: str = "isr_data") -> list[PhotoSource]:
    """A list of {path, weight} (or plain paths) -> sources, each checked: the folder exists and holds images,
    or the shard pattern matches files; weights > 0."""
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{where}: a list of {{path: DIR, weight: W}} expected, got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or "path" not in item:
            raise ValueError(f"{where}[{i}]: {{path: DIR, weight: W}} expected, got {item!r}")
        unknown = set(item) - {"path", "weight"}
        if unknown:
            raise ValueError(f"{where}[{i}]: unknown keys {sorted(unknown)} (path, weight)")
        try:
            weight = float(item.get("weight", 1.0))
        except (TypeError, ValueError):
            raise ValueError(f"{where}[{i}].weight: a number expected, got {item.get('weight')!r}") from None
        if not weight > 0:
            raise ValueError(f"{where}[{i}].weight: must be > 0, got {weight:g}")
        out.append(PhotoSource(str(item["path"]), weight))
    return out


def check_run_inputs(shard_specs, sources, where: str) -> None:
    """The inputs of a training or distillation run, before any model is built: every shard pattern names existing
    tars (brace ranges included), and every photo source holds a readable photo; UserError with one line
    otherwise."""
    from .data import check_shards, expand_urls

    try:
        for spec in shard_specs:
            if spec:
                check_shards(expand_urls(spec))
        for src in sources or []:
            list_source(src, where)
    except ValueError as e:
        raise UserError(str(e)) from None


def _open_tar(url: str):
    """A tar shard, local or on object storage (pyarrow.fs, within the storage bounds)."""
    import tarfile

    if "://" in url:
        from manifests.storage import cached_filesystem

        fs, path = cached_filesystem(url)
        return tarfile.open(fileobj=fs.open_input_file(path), mode="r:")
    return tarfile.open(url, "r:")


def _is_shards(path: str) -> bool:
    return path.endswith(".tar") or any(c in path for c in "{*?[")


def list_source(src: PhotoSource, where: str) -> list:
    """A folder's photos (sorted paths) or a shard set's (url, key) pairs."""
    if _is_shards(src.path):
        from .data import expand_urls

        try:
            urls = expand_urls(src.path)
        except (FileNotFoundError, ValueError) as e:
            raise ValueError(f"{where}: {e}") from None
        items = []
        for url in urls:
            with _open_tar(url) as tar:
                keys = {}
                for m in tar.getmembers():
                    base = m.name.rsplit("/", 1)[-1]
                    ext = base.split(".", 1)[-1].lower() if "." in base else ""
                    if m.isfile() and ext in ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff"):
                        keys.setdefault(m.name.split(".", 1)[0], m.name)
            items += [(url, name) for name in sorted(keys.values())]
        if not items:
            raise ValueError(f"{where}: {src.path}: no image members in the shards")
        return items
    from common.images import list_images

    if "://" in src.path:
        from manifests.storage import cached_filesystem, check_location

        fs, path = cached_filesystem(src.path)
        check_location(fs, path, src.path)  # unreachable, refused, no bucket: one line within the bounds
        raise ValueError(
            f"{where}: {src.path}: photo folders are read from a local disk; on object storage, "
            f"give .tar shards of photos ({src.path.rstrip('/')}/photos-{{000..009}}.tar)"
        )
    folder = Path(src.path)
    if not folder.is_dir():
        raise ValueError(f"{where}: {folder}: no such folder (or a .tar shard pattern)")
    photos = [p for p in list_images(folder)]
    if not photos:
        raise ValueError(f"{where}: {folder}: no images in it")
    first_error = None
    for p in photos:  # at least one must open (the stream skips bad ones, but a folder of none would never serve)
        try:
            with Image.open(p) as im:
                im.verify()
            break
        except Exception as e:  # PIL raises many types for a bad file
            first_error = first_error or f"{p.name}: {e}"
    else:
        raise ValueError(f"{where}: {folder}: none of its {len(photos)} images can be read (e.g. {first_error})")
    return photos


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class PhotoStream(GlobalBatches):
    """Batches of {"key", "lq" (upsampled to the crop), "aif" (the HQ crop)} in [-1, 1], from natural photos
    degraded online (module doc)."""

    def __init__(
        self,
        sources: list[PhotoSource],
        crop: int,
        batch_size: int,
        seed: int = 0,
        degradation: str = "realesrgan_x4plus",
        hflip: bool = True,
        skip_batches: int = 0,
        rank=None,
        world=None,
        log=None,
    ):
        super().__init__(batch_size, skip_batches, rank, world)
        if not sources:
            raise ValueError("isr_data: no sources")
        self.sources = sources
        self.items = [list_source(s, f"isr_data[{i}] ({s.path})") for i, s in enumerate(sources)]
        self.crop, self.seed, self.hflip = int(crop), seed, hflip
        self.patch = max(MIN_PATCH, -(-self.crop // 4) * 4)
        self.degradation = degradation
        self._cfg = None
        self.log = log or _to_stderr
        self.bad: dict[str, str] = {}
        weights = np.array([s.weight for s in sources], np.float64)
        self.cum = np.cumsum(weights / weights.sum())

    def describe(self) -> str:
        return ", ".join(
            f"{s.path} ({len(items)} photos, weight {s.weight:g})" for s, items in zip(self.sources, self.items)
        )

    def _read(self, item) -> np.ndarray:
        from common.images import load_image, on_white, to_uint8

        if isinstance(item, tuple):  # (shard, member)
            url, name = item
            with _open_tar(url) as tar:
                data = tar.extractfile(name).read()
            try:
                with Image.open(io.BytesIO(data)) as im:
                    return np.asarray(im.convert("RGB"))
            except Exception as e:
                raise ValueError(f"{url}:{name}: not a readable image ({type(e).__name__}: {e})") from None
        rgb, alpha = load_image(item)  # names the file on bad input
        return to_uint8(on_white(rgb, alpha) if alpha is not None else rgb)

    def sample(self, index: int) -> dict:
        from degradations import DegradationConfig, degrade

        if self._cfg is None:
            self._cfg = DegradationConfig.preset(self.degradation)
        rng = random.Random(f"{self.seed}:photo:{index}")
        for _ in range(100):
            s = int(np.searchsorted(self.cum, rng.random(), side="right").clip(0, len(self.items) - 1))
            item = self.items[s][rng.randrange(len(self.items[s]))]
            name = str(item if not isinstance(item, tuple) else f"{item[0]}:{item[1]}")
            if name in self.bad:
                continue
            try:
                rgb = self._read(item)
            except (ValueError, OSError) as e:
                self.bad[name] = str(e)
                self.log(f"photo stream: skipped {name}: {e}")
                continue
            break
        else:
            raise ValueError(f"isr_data: 100 draws in a row hit unreadable photos, e.g. {list(self.bad.items())[:3]}")
        P, h, w = self.patch, rgb.shape[0], rgb.shape[1]
        if min(h, w) < P:  # upscale a small photo so that its short side is P
            s = P / min(h, w)
            rgb = np.asarray(Image.fromarray(rgb).resize((max(P, round(w * s)), max(P, round(h * s))), Image.BICUBIC))
            h, w = rgb.shape[:2]
        y, x = rng.randrange(h - P + 1), rng.randrange(w - P + 1)
        hq = rgb[y : y + P, x : x + P]
        if self.hflip and rng.random() < 0.5:
            hq = hq[:, ::-1]
        hq = np.ascontiguousarray(hq)
        lq, _ = degrade(hq, derive_seed(self.seed, "photo", index), self._cfg)
        sc = P // lq.shape[0]
        c = self.crop
        yy, xx = rng.randrange(0, (P - c) // sc + 1) * sc, rng.randrange(0, (P - c) // sc + 1) * sc
        hq, lq = hq[yy : yy + c, xx : xx + c], lq[yy // sc : (yy + c) // sc, xx // sc : (xx + c) // sc]
        return {"key": f"photo:{index}:{Path(name).name}", "lq": upsampled(lq, (c, c)), "aif": image_tensor(hq)}


def photo_loader(stream: PhotoStream, num_workers: int = 0) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        stream,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )
