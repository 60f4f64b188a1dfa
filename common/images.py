"""Image files in, float arrays out: EXIF orientation applied, every PIL mode converted explicitly.

Colour comes back as H×W×3 float32 sRGB in [0, 1] (RGB order) and alpha, where the file has one, as H×W float32 in
[0, 1]. Errors are ``ValueError``s that name the file and the problem; callers that scan folders record them.
"""

from __future__ import annotations

import io
import os
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def list_images(folder) -> list[Path]:
    """Image files below ``folder`` (recursively), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def display_name(path) -> str:
    """``path`` as text that can always be stored (UTF-8): bytes of a file name that are not UTF-8 appear as
    ``\\xNN`` escapes. A :class:`FileBytes` shows its name."""
    if isinstance(path, FileBytes):
        return path.name
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


class FileBytes(io.BytesIO):
    """A file's bytes already read (from object storage, or checked against a hash), with the name that error
    messages show; every reader here takes one wherever it takes a path."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name.split("?", 1)[0]).suffix


def _source(path):
    """A path as a Path, a FileBytes as it is (rewound)."""
    if isinstance(path, FileBytes):
        path.seek(0)
        return path
    return Path(path)


def _open(path: Path) -> Image.Image:
    try:
        im = Image.open(path)
        im.load()  # decode now: truncated files fail here, not later
    except Image.DecompressionBombError as e:
        raise ValueError(f"{display_name(path)}: refused as a decompression bomb ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"{display_name(path)}: unreadable or truncated image ({e})") from None
    return ImageOps.exif_transpose(im)


def _channel(im: Image.Image) -> np.ndarray:
    """A single-channel image (L, I;16*, I, F, 1) as float32 in [0, 1]."""
    if im.mode == "1" or im.mode == "L":
        return np.asarray(im.convert("L"), np.float32) / 255.0
    if im.mode in _SIXTEEN_BIT:
        return np.asarray(im, np.float32) / 65535.0
    if im.mode == "I":
        arr = np.asarray(im, np.float32)
        return arr / (65535.0 if arr.max() > 255 else 255.0)
    if im.mode == "F":
        return np.clip(np.asarray(im, np.float32), 0.0, 1.0)
    raise ValueError(f"not a single-channel mode: {im.mode}")


def load_image(path) -> tuple[np.ndarray, np.ndarray | None]:
    """(rgb, alpha) of an image file: rgb H×W×3 float32 sRGB in [0, 1]; alpha H×W float32 or None.

    Modes: L / 1 / I;16 / I / F (grey, replicated to RGB), LA, P (with or without transparency), RGB, RGBA,
    CMYK and YCbCr (converted by PIL to RGB).
    """
    path = _source(path)
    im = _open(path)
    mode = im.mode
    if mode in ("1", "L", "I", "F") or mode in _SIXTEEN_BIT:
        grey = _channel(im)
        return np.repeat(grey[..., None], 3, axis=2), None
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif mode in ("LA", "PA", "La"):
        im = im.convert("RGBA")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        im = im.convert("RGB")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        raise ValueError(f"{display_name(path)}: unsupported image mode {mode}")
    arr = np.asarray(im, np.float32) / 255.0
    if im.mode == "RGBA":
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return arr, None


def load_alpha(path) -> np.ndarray:
    """A matte file as H×W float32 in [0, 1]: grey modes directly, colour mattes by their first channel,
    RGBA mattes by their alpha channel."""
    path = _source(path)
    im = _open(path)
    if im.mode in ("1", "L", "I", "F") or im.mode in _SIXTEEN_BIT:
        return _channel(im)
    rgb, alpha = load_image(path)
    return alpha if alpha is not None else rgb[..., 0]


def read_depth(path) -> np.ndarray:
    """A metric depth map as H×W float32 metres, 0 = invalid: ``.npy`` holds metres (NaN and ±inf read as
    invalid), a single-channel 16-bit PNG holds millimetres (as NYUv2 and KITTI store them). Errors name the file."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            d = np.load(path, allow_pickle=False)
        except Exception as e:
            raise ValueError(f"{path}: not a readable .npy ({e})") from None
        if d.ndim != 2 or d.dtype.kind not in "fiu":
            raise ValueError(f"{path}: a 2-D numeric depth map expected, got {d.dtype} {d.shape}")
        return np.nan_to_num(d.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    import cv2

    d = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if d is None or d.ndim != 2 or d.dtype != np.uint16:
        raise ValueError(f"{path}: a single-channel 16-bit PNG (millimetres) expected")
    return d.astype(np.float32) / 1000.0


def read_disparity(path) -> np.ndarray:
    """A disparity file as H×W float32 (larger = nearer, any scale): ``.npy`` (a numeric H×W or H×W×1 array) or a
    grey image (8- or 16-bit; a colour image only when its channels are equal). NaN or infinite values are
    refused; every error names the file."""
    path = _source(path)
    if path.suffix.lower() == ".npy":
        try:
            disp = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{display_name(path)}: unreadable disparity map ({e})") from None
        if disp.ndim == 3 and disp.shape[-1] == 1:
            disp = disp[..., 0]
        if disp.ndim != 2 or disp.dtype.kind not in "fiu":
            raise ValueError(f"{display_name(path)}: expected an H×W numeric array, got {disp.dtype} {disp.shape}")
        disp = disp.astype(np.float32)
    else:
        im = _open(path)
        if im.mode in ("1", "L", "I", "F") or im.mode in _SIXTEEN_BIT:
            disp = _channel(im)
        else:  # a colour picture is depth only when every channel holds the same value (a grey saved as RGB)
            rgb, _ = load_image(path)
            if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
                raise ValueError(
                    f"{display_name(path)}: a colour image ({im.mode}), not a disparity map: a "
                    f"colour-mapped depth picture cannot be read as depth; save the disparity as a "
                    f"grey 8- or 16-bit PNG or a float .npy"
                )
            disp = rgb[..., 0]
    if not np.isfinite(disp).all():
        raise ValueError(f"{display_name(path)}: disparity map has NaN or infinite values")
    return disp


def on_white(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """H×W×3 sRGB float in [0, 1] composited over white by its H×W alpha (``rgb`` itself when there is none)."""
    return rgb if alpha is None else rgb * alpha[..., None] + (1.0 - alpha[..., None])


def to_uint16(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 float in [0, 1] -> uint16 (rounded), for 16-bit PNGs."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 65535.0).astype(np.uint16)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """H×W×3 float in [0, 1] -> uint8 (rounded)."""
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_png(rgb: np.ndarray, compress_level: int = 3) -> bytes:
    """H×W×3 sRGB (RGB order) uint8 or uint16 -> PNG bytes of that bit depth (PIL writes 8-bit RGB; OpenCV writes
    16-bit RGB, which PIL cannot). Deterministic: the same array gives the same bytes."""
    if rgb.dtype == np.uint8:
        import io

        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG", compress_level=compress_level)
        return buf.getvalue()
    if rgb.dtype == np.uint16:
        import cv2

        ok, data = cv2.imencode(
            ".png", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, compress_level]
        )
        if not ok:
            raise ValueError("encode_png: OpenCV could not encode the 16-bit image")
        return data.tobytes()
    raise TypeError(f"encode_png: uint8 or uint16 H×W×3 expected, got {rgb.dtype}")


def decode_png(data: bytes, name: str = "png") -> np.ndarray:
    """PNG bytes -> H×W×3 RGB array, uint8 for an 8-bit file and uint16 for a 16-bit one (divide by 255 or 65535
    for [0, 1]); ``name`` is quoted in the error for unreadable bytes."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    if arr is None:
        raise ValueError(f"{name}: not a readable PNG")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[..., :3]
    return np.ascontiguousarray(arr[..., ::-1])
