"""Training batches from bokehgen's WebDataset shards.

A deterministic, resumable stream: shards are shuffled per epoch from the seed, split by node (rank of
``torch.distributed`` when initialised) and by DataLoader worker, samples go through a seeded shuffle buffer,
and a resumed run skips the raw (undecoded) samples each worker had already produced. Each sample becomes:
LQ upsampled (bicubic) to the GT size, all-in-focus and bokeh targets, all in [-1, 1]; the disparity; the
defocus map K·|d − d_f| / K_max and the focus mask (K·|d − d_f| ≤ focus_radius) from the sample's own JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from dataclasses import dataclass
from itertools import count

import braceexpand
import numpy as np
import torch
import torch.nn.functional as F
import webdataset as wds

from common.errors import UserError
from common.limits import MAX_K
from datagen.shards import decode_sample

from .conditioning import defocus_and_mask

#: shard URIs read through pyarrow.fs (the build's own storage layer, with its timeouts): registered with
#: webdataset's gopen, whose own table has no s3:// and reads gs:// through gsutil
PYARROW_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss")


def _gopen_pyarrow(url, mode="rb", bufsize=8192, **kw):
    from manifests.storage import StorageError, cached_filesystem, describe_storage_error

    if mode != "rb":
        raise ValueError(f"{url}: shards on object storage are read here, never written (mode {mode!r})")
    fs, path = cached_filesystem(url)
    try:
        return fs.open_input_stream(path)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise StorageError(describe_storage_error(url, e)) from None


def _register_schemes() -> None:
    from webdataset.gopen import gopen_schemes

    for scheme in PYARROW_SCHEMES:
        gopen_schemes[scheme] = _gopen_pyarrow


_register_schemes()


def _is_storage_uri(url: str) -> bool:
    return url.split("://", 1)[0].lower() in PYARROW_SCHEMES if "://" in url else False


def data_max_k(urls: list[str]) -> float | None:
    """The ``max_K`` recorded in the ``dataset.json`` beside the shards (None when there is none, e.g. shards on
    object storage or copied alone)."""
    folder = os.path.dirname(urls[0]) or "."
    meta_path = os.path.join(folder, "dataset.json")
    if "://" in urls[0] or not os.path.isfile(meta_path):
        return None
    with open(meta_path) as f:
        data_max = json.load(f).get("max_K")
    return None if data_max is None else float(data_max)


def data_scale(urls: list[str], k_max: float) -> float:
    """How the loader maps a build's K onto the model's ``k_max`` (the defocus map r = K·|d − d_f| is divided by
    it): data built with max_K ≤ k_max is served as it is; data built with a larger max_K (a megapixel build with
    real-lens blur) is downscaled by k_max / max_K, every member alike (INTER_AREA), so that every blur radius, and
    K with it, shrinks by that factor and stays within k_max. 1.0 when the build records no max_K."""
    data_max = data_max_k(urls)
    return 1.0 if data_max is None or data_max <= k_max else float(k_max) / data_max


def check_max_k(urls: list[str], k_max: float) -> float:
    """The scale :func:`data_scale` serves these shards at, said on stderr when it is not 1."""
    import sys

    scale = data_scale(urls, k_max)
    if scale != 1.0:
        print(
            f"the data's max_K {data_max_k(urls):g} exceeds the model's k_max {k_max:g}: samples are downscaled by "
            f"{scale:.4g} as they are read (model.data.data_scale)",
            file=sys.stderr,
            flush=True,
        )
    return scale


def _remote_file(url: str) -> bool:
    """Whether a shard URI names a file, asked within the storage bounds (a StorageError in one line when the
    store cannot be reached, refuses the credentials or has no such bucket)."""
    import pyarrow.fs as pafs

    from manifests.storage import cached_filesystem, check_location

    fs, path = cached_filesystem(url)
    return check_location(fs, path, url).type == pafs.FileType.File


def check_shards(urls: list[str]) -> None:
    """Before any model is built: some shard can be read. Local shards are read up to their first member; a
    DataError in one line when none of them can be read at all. (A damaged sample further in is skipped while
    training; shards on object storage were checked to exist.) Image and clip builds are both read: a clip
    serves each of its frames as an image sample (:func:`frames_as_images`)."""
    import tarfile

    local = [u for u in urls if "://" not in u and not u.startswith("pipe:")]
    unreadable = []
    for url in local:
        try:
            with tarfile.open(url, "r:") as tar:
                first = tar.next()
        except (tarfile.TarError, OSError, EOFError) as e:
            unreadable.append(f"{url} ({type(e).__name__})")
            continue
        if first is None:
            unreadable.append(f"{url} (empty)")
            continue
        return
    if local and len(local) == len(urls):
        raise DataError(
            f"no readable sample in any of the {len(urls)} shards: {', '.join(unreadable[:3])}"
            f"{' ...' if len(unreadable) > 3 else ''}"
        )


def frames_as_images(samples):
    """A WebDataset stage: image samples pass through; a clip (a build with ``sequence.frames``) becomes its
    frames, in order, each an image sample keyed ``{clip}_f{k:03d}`` with the frame's own K and focus
    (datagen.shards.clip_frames). A clip whose JSON is damaged is passed on as it is, for the reader to skip."""
    from datagen.shards import clip_frames

    for sample in samples:
        try:
            frames = list(clip_frames(sample))
        except DAMAGE:
            frames = [sample]
        yield from frames


def expand_urls(spec) -> list[str]:
    """'DIR/train-{000000..000099}.tar', a glob, a list, or a comma-separated string -> shard list."""
    import glob

    items = spec if isinstance(spec, (list, tuple)) else str(spec).split(",")
    urls = []
    for item in items:
        named = []
        for u in braceexpand.braceexpand(str(item).strip()):
            local_glob = "://" not in u and any(c in u for c in "*?[")  # a URI's '?' starts its query
            matches = sorted(glob.glob(u)) if local_glob else [u]
            if not matches:
                raise ValueError(f"{u}: no shard matches")
            named.extend(matches)
        missing = [m for m in named if "://" not in m and not m.startswith("pipe:") and not os.path.isfile(m)]
        missing += [m for m in named if _is_storage_uri(m) and not _remote_file(m)]
        if missing:
            raise ValueError(
                f"{missing[0]}: no such shard file ({len(missing)} of the {len(named)} named by "
                f"{str(item).strip()!r} are missing)"
            )
        urls.extend(named)
    if not urls:
        raise ValueError(f"no shards in {spec!r}")
    return urls


def derive_seed(seed: int, stream: str, index: int) -> int:
    """The seed of one served sample: from the run's seed, the stream and the sample's global index (which encodes
    the step, the rank and the position in the batch), so a resumed or repeated run draws exactly the same."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}:{index}".encode()).digest()[:8], "big") % 2**63


def _degradation(name: str):
    from degradations import DegradationConfig

    return DegradationConfig.preset(name)


class DataError(UserError, ValueError):
    """Training data that cannot be used (no readable sample, too many damaged ones):
    one line naming the shard."""


#: what a damaged sample raises while it is decoded: skipped with its key and shard, never a crash
DAMAGE = (ValueError, KeyError, TypeError, OSError, EOFError, json.JSONDecodeError, IndexError)


def to_tensors(
    sample: dict,
    k_max: float = MAX_K,
    focus_radius: float = 1.0,
    crop: int | None = None,
    seed: int = 0,
    index: int | None = None,
    hflip: bool = False,
    redegrade: str | None = None,
    scale: float = 1.0,
) -> dict:
    """One raw WebDataset sample (member bytes) -> training tensors (see module doc). ``scale`` < 1: every member
    downscaled by it first, and K with it (:func:`data_scale`). ``index``: the sample's
    global position in its stream (seeds the crop, the flip and the degradation; None: from the key, the same at
    every serving); ``hflip``: flip LQ, all-in-focus, bokeh and disparity together with probability 1/2;
    ``redegrade``: a degradation preset name: a fresh LQ from the stored all-in-focus image instead of lq.png."""
    key = sample["__key__"]
    decoded = decode_sample(sample)  # a ValueError naming the sample and its shard when a member is damaged
    aif, bokeh, lq, disp, meta = (decoded[k] for k in ("aif", "bokeh", "lq", "disp", "json"))
    K, d_f = float(meta["render"]["K"]), float(meta["render"]["focus_disparity"])
    if scale < 1.0:
        aif, bokeh, lq, disp, K = downscaled(aif, bokeh, lq, disp, K, scale)
    rng = random.Random(f"{seed}:{key}" if index is None else f"{seed}:sample:{index}")
    if redegrade:
        from common.images import to_uint8
        from degradations import degrade

        aif8 = aif if aif.dtype == np.uint8 else to_uint8(aif.astype(np.float32) / 65535)  # as the build does
        lq, _ = degrade(
            aif8, derive_seed(seed, "redegrade", index if index is not None else hash(key)), _degradation(redegrade)
        )
    h, w = aif.shape[:2]
    if crop is not None and (h < crop or w < crop):  # not damage: every sample of the build is this size
        raise UserError(
            f"sample {key}: its {w}×{h} frame{f' (downscaled by {scale:.4g})' if scale < 1.0 else ''} is smaller than "
            f"the training crop {crop}; set train.crop at most {min(h, w)}"
        )
    if crop is not None and (h > crop or w > crop):
        s = h // lq.shape[0]  # LQ scale: crop on the LQ grid so LQ and HQ stay aligned
        y, x = rng.randrange(0, (h - crop) // s + 1) * s, rng.randrange(0, (w - crop) // s + 1) * s
        aif, bokeh, disp = (
            aif[y : y + crop, x : x + crop],
            bokeh[y : y + crop, x : x + crop],
            disp[y : y + crop, x : x + crop],
        )
        lq = lq[y // s : (y + crop) // s, x // s : (x + crop) // s]
        h = w = crop
    if hflip and rng.random() < 0.5:
        aif, bokeh, disp, lq = aif[:, ::-1], bokeh[:, ::-1], disp[:, ::-1], lq[:, ::-1]
    disp = np.ascontiguousarray(disp)
    lq_up = upsampled(lq, (h, w))
    defocus, mask = defocus_and_mask(disp, K, d_f, k_max, focus_radius)
    return {
        "key": key,
        "lq": lq_up,
        "aif": image_tensor(aif),
        "bokeh": image_tensor(bokeh),
        "disp": torch.from_numpy(disp)[None],
        "defocus": torch.from_numpy(defocus)[None],
        "mask": torch.from_numpy(mask)[None],
        "K": torch.tensor(K),
        "focus_disparity": torch.tensor(d_f),
    }


def downscaled(aif, bokeh, lq, disp, K: float, scale: float):
    """A sample's members downscaled by ``scale`` (area-averaged, as a camera with fewer pixels would see the scene):
    the HQ side to a multiple of the LQ's factor, the LQ with it, and K by the width's actual ratio."""
    import cv2

    h, w = aif.shape[:2]
    f = h // lq.shape[0]  # the LQ's factor (4)
    nh, nw = max(f, round(h * scale / f) * f), max(f, round(w * scale / f) * f)

    def area(a, hh, ww):
        return cv2.resize(a, (ww, hh), interpolation=cv2.INTER_AREA)

    return (
        area(aif, nh, nw),
        area(bokeh, nh, nw),
        area(lq, nh // f, nw // f),
        area(np.ascontiguousarray(disp), nh, nw),
        K * nw / w,
    )


def image_tensor(a: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 (/127.5) or uint16 (/32767.5) -> (3, H, W) in [-1, 1]."""
    return (
        torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).float() / (127.5 if a.dtype == np.uint8 else 32767.5)
        - 1
    )


def upsampled(lq: np.ndarray, size: tuple) -> torch.Tensor:
    return F.interpolate(image_tensor(lq)[None], size=size, mode="bicubic", align_corners=False)[0].clamp(-1, 1)


def collate(samples: list[dict]) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k not in ("key", "bad_samples")}
    out["key"] = [s["key"] for s in samples]
    return out


def batches(samples, cfg: "StreamConfig", partial: bool):
    """Raw samples -> collated batches of ``cfg.batch_size`` (a smaller last one when ``partial``); no flip, no
    re-degradation (validation). A damaged sample is skipped with its key and shard on stderr."""
    batch = []
    for sample in samples:
        try:
            batch.append(to_tensors(sample, cfg.k_max, cfg.focus_radius, cfg.crop, cfg.seed, scale=cfg.scale or 1.0))
        except DataError:
            raise
        except DAMAGE as e:
            _skipped_sample(sample, e)
            continue
        if len(batch) == cfg.batch_size:
            yield collate(batch)
            batch = []
    if batch and partial:
        yield collate(batch)


@dataclass
class StreamConfig:
    """How a shard stream serves batches; ``max_bad_fraction``: the share of damaged samples (missing or
    undecodable members) the stream skips before it gives up (``train.max_bad_fraction``)."""

    batch_size: int = 4
    shuffle_buffer: int = 256
    seed: int = 0
    k_max: float = MAX_K
    focus_radius: float = 1.0
    crop: int | None = None
    hflip: bool = False
    redegrade: str | None = None  # a degradation preset: a fresh LQ at every serving
    max_bad_fraction: float = 0.01
    scale: float | None = None  # None: the shards' own (data_scale), set by the stream


def dist_info() -> tuple[int, int]:
    """(rank, world size) of ``torch.distributed`` when initialised, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class GlobalBatches(torch.utils.data.IterableDataset):
    """Batches of one rank from a stream of samples with global indices 0, 1, 2, ...

    Global batch j holds samples [j·B·W, (j+1)·B·W) (B: per-rank batch size, W: world size); rank r takes the
    r-th slice of B of each, so the W ranks together see exactly what one process with batch B·W sees (hence
    the same gradients), and a resumed run (``skip_batches``) continues where it stopped. DataLoader worker w
    of a rank makes its local batches w, w + workers, ... (the DataLoader takes them round-robin)."""

    def __init__(self, batch_size: int, skip_batches: int = 0, rank: int | None = None, world: int | None = None):
        super().__init__()
        self.batch_size, self.skip_batches = batch_size, skip_batches
        self._rank, self._world = rank, world

    def ranks(self) -> tuple[int, int]:
        rank, world = dist_info()
        return (self._rank if self._rank is not None else rank), (self._world if self._world is not None else world)

    def my_indices(self):
        """(local batch number, [global indices]) of this rank and worker, endless."""
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rank, world = self.ranks()
        B = self.batch_size
        for j in count(self.skip_batches + worker, workers):
            first = (j * world + rank) * B
            yield j, list(range(first, first + B))

    def sample(self, index: int) -> dict:  # random-access streams (photos)
        raise NotImplementedError

    def __iter__(self):
        for _, indices in self.my_indices():
            yield collate([self.sample(i) for i in indices])


class ShardStream(GlobalBatches):
    """Endless batches from the shards (see module doc and :class:`GlobalBatches`). The global sample stream is
    the same in every process: shards shuffled per epoch from the seed, then a seeded shuffle buffer; each
    process reads it and decodes only its own samples (reading a tar member is cheap next to decoding it)."""

    def __init__(self, urls, cfg: StreamConfig, skip_batches: int = 0, rank=None, world=None):
        super().__init__(cfg.batch_size, skip_batches, rank, world)
        self.urls = expand_urls(urls)
        self.cfg = cfg if cfg.scale is not None else dataclasses.replace(cfg, scale=data_scale(self.urls, cfg.k_max))

    def epoch_length(self) -> int | None:
        """Image samples per epoch, from the tar headers of local shards (None for remote ones): one per key, or
        for a clip one per frame (its ``aif.NNN.png`` members)."""
        import os
        import tarfile
        from collections import Counter

        if any("://" in u or not os.path.isfile(u) for u in self.urls):
            return None
        keys = 0
        for u in self.urls:
            with tarfile.open(u, "r:") as tar:  # headers only: member data is seeked over
                frames = Counter()
                for m in tar.getmembers():
                    if m.isfile():
                        key, _, ext = m.name.rsplit("/", 1)[-1].partition(".")
                        frames[key] += int(ext.startswith("aif.") and ext[4:7].isdigit())
                keys += sum(max(n, 1) for n in frames.values())
        return keys

    def raw(self, first_epoch: int = 0):
        """Endless undecoded samples of the global stream, epoch after epoch. A damaged shard is read up to the
        damage and the rest of it skipped, with its name on stderr (every rank skips the same samples)."""
        for epoch in count(first_epoch):
            urls = list(self.urls)
            random.Random(f"{self.cfg.seed}:shards:{epoch}").shuffle(urls)
            samples = frames_as_images(
                wds.tarfile_to_samples(handler=_skip_damaged_shard)(iter({"url": u} for u in urls))
            )
            rng = random.Random(f"{self.cfg.seed}:buffer:{epoch}")
            served = 0
            for sample in wds.shuffle(self.cfg.shuffle_buffer, min(self.cfg.shuffle_buffer, 16), rng=rng)(samples):
                served += 1
                yield sample
            if not served:
                raise DataError(f"no readable sample in any of the {len(urls)} shards (first: {urls[0]})")

    def __iter__(self):
        """This rank's batches. A damaged sample (missing or undecodable members) is skipped with its key and
        shard on stderr, and the slot is filled by the next sample of the stream; every batch carries
        ``bad_samples``: (DataLoader worker id, the number it has skipped so far). More than
        ``max_bad_fraction`` of damaged samples (after 20 read) ends the stream with one line."""
        c = self.cfg
        stream = enumerate(self.raw())
        first = (self.skip_batches * self.ranks()[1]) * c.batch_size  # the first global index still to serve
        if first:  # resuming: skip whole epochs without reading them (every epoch is shuffled on its own)
            n = self.epoch_length()
            if n:
                stream = enumerate(self.raw(first // n), start=(first // n) * n)
        bad = good = 0
        for _, indices in self.my_indices():
            batch = []
            for g, sample in stream:
                if g < indices[len(batch)]:
                    continue
                try:
                    batch.append(
                        to_tensors(
                            sample,
                            c.k_max,
                            c.focus_radius,
                            c.crop,
                            c.seed,
                            index=g,
                            hflip=c.hflip,
                            redegrade=c.redegrade,
                            scale=c.scale,
                        )
                    )
                    good += 1
                except DataError:
                    raise
                except DAMAGE as e:  # the next sample of the stream takes its slot
                    bad += 1
                    _skipped_sample(sample, e)
                    if bad + good >= 20 and bad > c.max_bad_fraction * (bad + good):
                        raise DataError(
                            f"{bad} of the {bad + good} samples read are damaged, more than "
                            f"max_bad_fraction {c.max_bad_fraction:g} (the last: {sample.get('__key__')} "
                            f"in {sample.get('__url__', '?')}); run manifests verify on the build, "
                            f"or raise train.max_bad_fraction"
                        ) from None
                    continue
                if len(batch) == len(indices):
                    break
            out = collate(batch)
            info = torch.utils.data.get_worker_info()
            out["bad_samples"] = torch.tensor([info.id if info is not None else 0, bad])  # (reader, so far)
            yield out


def _skipped_sample(sample: dict, e: BaseException) -> None:
    import sys

    what = " ".join(str(e).split())
    print(
        f"skipped a damaged sample {sample.get('__key__', '?')} of {sample.get('__url__', '?')}: "
        f"{type(e).__name__}: {what[:200]}",
        file=sys.stderr,
        flush=True,
    )


def _skip_damaged_shard(exn: Exception) -> bool:
    """webdataset's handler for a tar that cannot be read on: say which (webdataset appends the url to the
    error's arguments) and go on with the next shard."""
    import sys

    url = next((a for a in reversed(exn.args) if isinstance(a, str) and a.endswith(".tar")), None)
    if url is None:  # the same error passing the inner stage, which does not know the url: said once, below
        return True
    print(
        f"skipped the rest of a damaged shard {url}: {type(exn).__name__}: {exn.args[0] if exn.args else ''}",
        file=sys.stderr,
        flush=True,
    )
    return True


def loader(
    urls_or_dataset, cfg: StreamConfig | None = None, skip_batches: int = 0, num_workers: int = 0
) -> torch.utils.data.DataLoader:
    """A DataLoader over shards (``urls`` and ``cfg``) or over a :class:`GlobalBatches` stream."""
    ds = (
        urls_or_dataset
        if isinstance(urls_or_dataset, GlobalBatches)
        else ShardStream(urls_or_dataset, cfg, skip_batches)
    )
    return torch.utils.data.DataLoader(
        ds,
        batch_size=None,
        num_workers=num_workers,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )


def val_batches(urls, cfg: StreamConfig):
    """Every validation sample once, in shard order, in batches (the last may be smaller), at the shards' scale."""
    urls = expand_urls(urls)
    if cfg.scale is None:
        cfg = dataclasses.replace(cfg, scale=data_scale(urls, cfg.k_max))
    samples = frames_as_images(wds.tarfile_to_samples(handler=_skip_damaged_shard)(iter({"url": u} for u in urls)))
    yield from batches(samples, cfg, partial=True)
