"""Training batches from bokehgen's WebDataset shards.

A deterministic, resumable stream: shards are shuffled per epoch from the seed, split by node (rank of
``torch.distributed`` when initialised) and by DataLoader worker, samples go through a seeded shuffle buffer,
and a resumed run skips the raw (undecoded) samples each worker had already produced. Each sample becomes:
LQ upsampled (bicubic) to the GT size, all-in-focus and bokeh targets, all in [-1, 1]; the disparity; the
defocus map K·|d − d_f| / K_max and the focus mask (K·|d − d_f| ≤ focus_radius) from the sample's own JSON.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from itertools import count

import braceexpand
import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds

from common.images import decode_png
from common.limits import MAX_K
from .conditioning import defocus_and_mask


def check_max_k(urls: list[str], k_max: float) -> float | None:
    """The ``max_K`` recorded in the ``dataset.json`` beside the shards (None when there is none, e.g. shards on
    object storage or copied alone); the model's ``k_max`` normalises the defocus map and must be the data's."""
    import os

    folder = os.path.dirname(urls[0]) or "."
    meta_path = os.path.join(folder, "dataset.json")
    if "://" in urls[0] or not os.path.isfile(meta_path):
        return None
    with open(meta_path) as f:
        data_max = json.load(f).get("max_K")
    if data_max is not None and float(data_max) != float(k_max):
        raise ValueError(f"model.k_max is {k_max:g} but the data in {folder} was built with max_K {data_max:g} "
                         f"({meta_path}); set model.k_max={data_max:g}")
    return None if data_max is None else float(data_max)


def expand_urls(spec) -> list[str]:
    """'DIR/train-{000000..000099}.tar', a glob, a list, or a comma-separated string -> shard list."""
    import glob

    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(",")
    urls = []
    for item in items:
        for u in braceexpand.braceexpand(str(item).strip()):
            matches = sorted(glob.glob(u)) if any(c in u for c in "*?[") else [u]
            if not matches:
                raise FileNotFoundError(f"{u}: no shard matches")
            urls.extend(matches)
    if not urls:
        raise ValueError(f"no shards in {spec!r}")
    return urls


def _png(data: bytes, key: str, name: str) -> np.ndarray:
    """A member PNG as H×W×3 uint8 or (a 16-bit build's aif/bokeh) uint16."""
    return decode_png(data, f"sample {key}: {name}")


def to_tensors(sample: dict, k_max: float = MAX_K, focus_radius: float = 1.0, crop: int | None = None,
               seed: int = 0) -> dict:
    """One raw WebDataset sample (member bytes) -> training tensors (see module doc)."""
    key = sample["__key__"]
    missing = [m for m in ("aif.png", "bokeh.png", "lq.png", "disp.npy", "json") if m not in sample]
    if missing:
        raise ValueError(f"sample {key} ({sample.get('__url__', '?')}): missing members {missing}")
    aif, bokeh, lq = (_png(sample[f"{n}.png"], key, f"{n}.png") for n in ("aif", "bokeh", "lq"))
    disp = np.load(io.BytesIO(sample["disp.npy"]), allow_pickle=False).astype(np.float32)
    meta = json.loads(sample["json"])
    K, d_f = float(meta["render"]["K"]), float(meta["render"]["focus_disparity"])
    h, w = aif.shape[:2]
    if crop is not None and (h > crop or w > crop):
        rng = random.Random(f"{seed}:{key}")
        s = h // lq.shape[0]  # LQ scale: crop on the LQ grid so LQ and HQ stay aligned
        y, x = rng.randrange(0, (h - crop) // s + 1) * s, rng.randrange(0, (w - crop) // s + 1) * s
        aif, bokeh, disp = aif[y:y + crop, x:x + crop], bokeh[y:y + crop, x:x + crop], disp[y:y + crop, x:x + crop]
        lq = lq[y // s:(y + crop) // s, x // s:(x + crop) // s]
        h = w = crop
    # [-1, 1] from 8-bit (/127.5) or 16-bit (/32767.5) values
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / (  # noqa: E731
        127.5 if a.dtype == np.uint8 else 32767.5) - 1
    lq_up = F.interpolate(t(lq)[None], size=(h, w), mode="bicubic", align_corners=False)[0].clamp(-1, 1)
    defocus, mask = defocus_and_mask(disp, K, d_f, k_max, focus_radius)
    return {"key": key, "lq": lq_up, "aif": t(aif), "bokeh": t(bokeh), "disp": torch.from_numpy(disp)[None],
            "defocus": torch.from_numpy(defocus)[None], "mask": torch.from_numpy(mask)[None],
            "K": torch.tensor(K), "focus_disparity": torch.tensor(d_f)}


def collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k != "key"}
    out["key"] = [s["key"] for s in samples]
    return out


def batches(samples, cfg: "StreamConfig", partial: bool):
    """Raw samples -> collated batches of ``cfg.batch_size`` (a smaller last one when ``partial``)."""
    batch = []
    for sample in samples:
        batch.append(to_tensors(sample, cfg.k_max, cfg.focus_radius, cfg.crop, cfg.seed))
        if len(batch) == cfg.batch_size:
            yield collate(batch)
            batch = []
    if batch and partial:
        yield collate(batch)


@dataclass
class StreamConfig:
    batch_size: int = 4
    shuffle_buffer: int = 256
    seed: int = 0
    k_max: float = MAX_K
    focus_radius: float = 1.0
    crop: int | None = None


class ShardStream(torch.utils.data.IterableDataset):
    """Endless batches from the shards (see module doc); ``skip_batches`` resumes after that many batches of
    the same stream (same shards, config and number of workers)."""

    def __init__(self, urls, cfg: StreamConfig, skip_batches: int = 0):
        super().__init__()
        self.urls = expand_urls(urls)
        self.cfg = cfg
        self.skip_batches = skip_batches

    def _split(self, epoch: int, worker: int, workers: int) -> list[str]:
        urls = list(self.urls)
        random.Random(f"{self.cfg.seed}:shards:{epoch}").shuffle(urls)
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        return urls[rank::world][worker::workers]

    def raw(self, worker: int, workers: int):
        """Endless undecoded samples of this worker, epoch after epoch."""
        if len(self.urls) < workers:
            raise ValueError(f"{len(self.urls)} shard(s) for {workers} loader workers: each worker needs one")
        for epoch in count():
            mine = self._split(epoch, worker, workers)
            samples = wds.tarfile_to_samples()(iter({"url": u} for u in mine))
            rng = random.Random(f"{self.cfg.seed}:buffer:{epoch}:{worker}")
            yield from wds.shuffle(self.cfg.shuffle_buffer, min(self.cfg.shuffle_buffer, 16), rng=rng)(samples)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        # the DataLoader takes batches round-robin from its workers: batch i came from worker i % workers
        done = len(range(worker, self.skip_batches, workers))
        stream = self.raw(worker, workers)
        for _ in range(done * self.cfg.batch_size):
            next(stream)
        yield from batches(stream, self.cfg, partial=False)


def loader(urls, cfg: StreamConfig, skip_batches: int = 0, num_workers: int = 0) -> torch.utils.data.DataLoader:
    ds = ShardStream(urls, cfg, skip_batches)
    return torch.utils.data.DataLoader(ds, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False, prefetch_factor=2 if num_workers else None)


def val_batches(urls, cfg: StreamConfig):
    """Every validation sample once, in shard order, in batches (the last may be smaller)."""
    samples = wds.tarfile_to_samples()(iter({"url": u} for u in expand_urls(urls)))
    yield from batches(samples, cfg, partial=True)
