"""Loading line images as 8-bit grayscale, with one clear error for every way a file can be unusable."""

from __future__ import annotations

import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from htr.errors import ImageError

#: The file suffixes (lower case) htr takes for images: of a folder of line images or of image/``.gt.txt``
#: pairs, and of a PAGE/ALTO file's page image found by its name.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".pgm", ".ppm")

# Largest image accepted, in pixels. A text line is at most a few million pixels (30,000 x 60 = 1.8 M);
# anything far larger is a mistake (a whole page scan, a decompression bomb) and is refused before decoding.
MAX_PIXELS = 64_000_000

_WHITE = 255
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Modes that carry an alpha channel and are composited onto white.
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
# Modes whose transparency is a key (PNG tRNS, GIF): one palette entry, gray level or colour is see-through.
# Pillow keeps the key in ``info["transparency"]``; converting to RGBA applies it.
# Not applied: a key on 16-bit gray (mode I;16), and on 2- or 4-bit gray, where Pillow keeps the key on the
# file's scale but scales the pixels to 0..255. Both are rare in scans.
_KEYED_MODES = {"P", "L", "1", "RGB"}
# Modes converted through RGB (Pillow's ITU-R 601 luma) rather than straight to L.
_COLOR_MODES = {"RGB", "RGBX", "CMYK", "YCbCr", "HSV"}


def is_see_through(im: Image.Image) -> bool:
    """Whether ``im`` has transparent pixels to show as paper: an alpha channel or a transparency key."""
    return im.mode in _ALPHA_MODES or (im.mode in _KEYED_MODES and "transparency" in im.info)


def load_image(path: str | Path) -> Image.Image:
    """Load ``path`` as a fully decoded 8-bit grayscale ('L') image, EXIF orientation applied.

    Transparent pixels (alpha, or a transparency key on a palette, 8-bit gray, 1-bit or RGB image) become
    white; 16-bit images are scaled by their dtype's range (65535 -> 255);
    float images are scaled from 0..1, kept if already within 0..255, else stretched by their min/max.
    Raises :class:`ImageError` (naming ``path``) for a missing, empty, non-image, corrupt, truncated,
    zero-area or oversized file.
    """
    path = Path(path)
    _check_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow's own complaints (corrupt EXIF, skipped TIFF tags): the image decodes or an ImageError says why.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(path) as im:
                _check_size(im, path)
                im.load()
                im = ImageOps.exif_transpose(im)
                gray = _to_gray(im)
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageError(f"image is too large to decode safely ({e})", path) from e
    except UnidentifiedImageError as e:
        _check_area(_png_header_size(path), path)
        raise ImageError("file is not a recognized image format", path) from e
    except PermissionError as e:
        raise ImageError("image file cannot be read (permission denied)", path) from e
    except MemoryError as e:
        raise ImageError("not enough memory to decode the image", path) from e
    except (OSError, SyntaxError, ValueError, TypeError, EOFError, KeyError, IndexError) as e:
        raise ImageError(f"image is corrupt or truncated ({e})", path) from e
    _check_area(gray.size, path)
    return gray


def _check_file(path: Path) -> None:
    """Refuse paths that cannot hold an image before handing them to Pillow."""
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError("image file does not exist", path) from None
    except OSError as e:  # a name too long for the disk, a permission, an I/O error
        raise ImageError(f"image file cannot be read ({e.strerror})", path) from None
    except ValueError:
        raise ImageError("image path contains a NUL byte", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError("is a directory, not an image file", path)
    if st.st_size == 0:
        raise ImageError("image file is empty (0 bytes)", path)


def _check_size(im: Image.Image, path: Path) -> None:
    """Refuse zero-area and oversized images from the header alone, before decoding pixels."""
    _check_area(im.size, path)
    w, h = im.size
    if w * h > MAX_PIXELS:
        raise ImageError(f"image is too large ({w}x{h} = {w * h} pixels, limit {MAX_PIXELS})", path)


def _check_area(size: tuple[int, int], path: Path) -> None:
    """Refuse an image with no pixels."""
    w, h = size
    if w <= 0 or h <= 0:
        raise ImageError(f"image has zero area ({w}x{h})", path)


def _png_header_size(path: Path) -> tuple[int, int]:
    """Width and height in a PNG header (Pillow calls zero-area PNGs unidentified); (1, 1) if not a PNG."""
    try:
        with path.open("rb") as f:
            head = f.read(24)
    except OSError:
        return (1, 1)
    if len(head) < 24 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return (1, 1)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _to_gray(im: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to a new 'L' image."""
    mode = im.mode
    if is_see_through(im):  # a viewer shows these pixels as the page behind them
        return flatten_on_white(im)
    if mode == "L":
        return im.copy()
    if mode in ("1", "P"):
        return im.convert("L")
    if mode in _COLOR_MODES:
        return im.convert("RGB").convert("L")
    if mode == "LAB":
        return im.getchannel(0).copy()
    if mode == "F":
        return _float_to_gray(np.asarray(im, dtype=np.float64))
    if mode.startswith("I"):
        return _int_to_gray(np.asarray(im))
    return im.convert("L")


def flatten_on_white(im: Image.Image) -> Image.Image:
    """Flatten ``im`` (its alpha or transparency key applied) onto a white background and return its luma."""
    rgba = im.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (_WHITE, _WHITE, _WHITE, 255))
    return Image.alpha_composite(background, rgba).convert("L")


def _int_to_gray(a: np.ndarray) -> Image.Image:
    """Scale an integer image to 0..255 by the range of its dtype.

    Unsigned data (I;16, I;16B, ...) uses its dtype's full range. Pillow's 32-bit signed 'I' mode is how
    16-bit data often arrives, so values within 0..65535 are scaled as 16-bit; anything else is stretched
    by its min/max.
    """
    a = a.astype(a.dtype.newbyteorder("="), copy=False)
    if np.issubdtype(a.dtype, np.unsignedinteger):
        top = float(np.iinfo(a.dtype).max)
        return _from_float(a.astype(np.float64) * (255.0 / top))
    lo, hi = int(a.min()), int(a.max())
    if lo >= 0 and hi <= 65535:
        return _from_float(a.astype(np.float64) * (255.0 / 65535.0))
    return _from_float(_stretch(a.astype(np.float64), float(lo), float(hi)))


def _float_to_gray(a: np.ndarray) -> Image.Image:
    """Scale a float image to 0..255: 0..1 data is multiplied by 255, 0..255 data kept, else min/max.

    NaN and infinite values become white.
    """
    finite = np.isfinite(a)
    if not finite.any():
        return _from_float(np.full(a.shape, float(_WHITE)))
    lo, hi = float(a[finite].min()), float(a[finite].max())
    if lo >= 0.0 and hi <= 1.0:
        out = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        out = a
    else:
        out = _stretch(a, lo, hi)
    return _from_float(np.where(finite, out, float(_WHITE)))


def _stretch(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Map ``lo..hi`` linearly to 0..255 (a constant image becomes white)."""
    if hi <= lo:
        return np.full(a.shape, float(_WHITE))
    return (a - lo) * (255.0 / (hi - lo))


def _from_float(a: np.ndarray) -> Image.Image:
    """Round and clip a float array in 0..255 to an 'L' image."""
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
