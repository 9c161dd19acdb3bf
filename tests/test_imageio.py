"""load_image: every Pillow mode becomes the right 8-bit grayscale, every bad file an ImageError naming it."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import htr.imageio
from htr.errors import ImageError
from htr.imageio import load_image


def pixels(path: Path) -> np.ndarray:
    """``load_image(path)`` as a uint8 array, checking it is an 'L' image."""
    im = load_image(path)
    assert im.mode == "L"
    return np.asarray(im)


def save(im: Image.Image, path: Path, **options: object) -> Path:
    """Save ``im`` at ``path`` and return ``path``."""
    im.save(path, **options)
    return path


def raises_naming(path: Path, match: str) -> pytest.RaisesExc[ImageError]:
    """``pytest.raises(ImageError)`` whose message starts with ``path`` and matches ``match`` after it."""
    return pytest.raises(ImageError, match=rf"^{re.escape(str(path))}: .*{match}")


# ----------------------------------------------------------------------------------------- conversions


def test_gray_is_kept(tmp_path: Path) -> None:
    a = np.array([[0, 17, 128, 255]], dtype=np.uint8)
    assert (pixels(save(Image.fromarray(a), tmp_path / "g.png")) == a).all()


def test_rgb_uses_luma(tmp_path: Path) -> None:
    im = Image.new("RGB", (3, 1))
    for x, rgb in enumerate([(0, 0, 0), (255, 255, 255), (255, 0, 0)]):
        im.putpixel((x, 0), rgb)
    assert pixels(save(im, tmp_path / "c.png")).tolist() == [[0, 255, 76]]


def test_rgba_composites_onto_white(tmp_path: Path) -> None:
    im = Image.new("RGBA", (3, 1))
    for x, rgba in enumerate([(0, 0, 0, 0), (0, 0, 0, 255), (0, 0, 0, 128)]):
        im.putpixel((x, 0), rgba)
    assert pixels(save(im, tmp_path / "a.png")).tolist() == [[255, 0, 127]]


def test_la_composites_onto_white(tmp_path: Path) -> None:
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (40, 255))
    assert pixels(save(im, tmp_path / "la.png")).tolist() == [[255, 40]]


def palette_image() -> Image.Image:
    """A 3-pixel palette image using entries white, black, mid-gray."""
    im = Image.new("P", (3, 1))
    im.putpalette([255, 255, 255, 0, 0, 0, 100, 100, 100] + [0] * (256 * 3 - 9))
    for x in range(3):
        im.putpixel((x, 0), x)
    return im


def test_palette(tmp_path: Path) -> None:
    assert pixels(save(palette_image(), tmp_path / "p.png")).tolist() == [[255, 0, 100]]


def test_palette_transparency_is_white(tmp_path: Path) -> None:
    path = save(palette_image(), tmp_path / "pt.png", transparency=1)
    assert Image.open(path).mode == "P"
    assert pixels(path).tolist() == [[255, 255, 100]]


@pytest.mark.parametrize(("mode", "key"), [("L", 0), ("RGB", (0, 0, 0))])
def test_colour_key_transparency_is_white(tmp_path: Path, mode: str, key: int | tuple[int, ...]) -> None:
    """A PNG tRNS key on a gray or RGB image: keyed pixels are background (white), the others as they are."""
    a = np.array([[0, 40, 200]], dtype=np.uint8)
    im = Image.fromarray(a if mode == "L" else np.stack([a] * 3, axis=-1), mode)
    path = save(im, tmp_path / f"key-{mode}.png", transparency=key)
    assert Image.open(path).mode == mode and "transparency" in Image.open(path).info
    assert pixels(path).tolist() == [[255, 40, 200]]


def test_gif_transparency_is_white(tmp_path: Path) -> None:
    assert pixels(save(palette_image(), tmp_path / "pt.gif", transparency=1)).tolist() == [[255, 255, 100]]


def test_cmyk(tmp_path: Path) -> None:
    im = Image.new("CMYK", (2, 1))
    im.putpixel((0, 0), (0, 0, 0, 0))
    im.putpixel((1, 0), (0, 0, 0, 255))
    assert pixels(save(im, tmp_path / "k.tif")).tolist() == [[255, 0]]


def test_one_bit(tmp_path: Path) -> None:
    im = Image.new("1", (2, 1))
    im.putpixel((1, 0), 1)
    path = save(im, tmp_path / "b.png")
    assert Image.open(path).mode == "1"
    assert pixels(path).tolist() == [[0, 255]]


SIXTEEN = np.array([[0, 257, 32768, 65535]], dtype=np.uint16)
SIXTEEN_AS_8 = [[0, 1, 128, 255]]


def test_16bit_png(tmp_path: Path) -> None:
    path = save(Image.fromarray(SIXTEEN), tmp_path / "s.png")
    assert Image.open(path).mode == "I;16"
    assert pixels(path).tolist() == SIXTEEN_AS_8


def test_16bit_big_endian_tiff(tmp_path: Path) -> None:
    im = Image.frombytes("I;16B", (4, 1), SIXTEEN.astype(">u2").tobytes())
    path = save(im, tmp_path / "s.tif")
    assert Image.open(path).mode == "I;16B"
    assert pixels(path).tolist() == SIXTEEN_AS_8


def test_32bit_int_holding_16bit_values(tmp_path: Path) -> None:
    path = save(Image.fromarray(SIXTEEN.astype(np.int32)), tmp_path / "i.tif")
    assert Image.open(path).mode == "I"
    assert pixels(path).tolist() == SIXTEEN_AS_8


def test_32bit_int_out_of_16bit_range_is_stretched(tmp_path: Path) -> None:
    a = np.array([[-100, 0, 100_000]], dtype=np.int32)
    assert pixels(save(Image.fromarray(a), tmp_path / "i.tif")).tolist() == [[0, 0, 255]]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # 0..1
        ([0.0, 100.0, 255.0], [0, 100, 255]),  # already 0..255
        ([-1.0, 0.0, 3.0], [0, 64, 255]),  # anything else: min/max
        ([0.0, float("nan"), 1.0], [0, 255, 255]),  # NaN -> white
    ],
)
def test_float_tiff(tmp_path: Path, values: list[float], expected: list[int]) -> None:
    path = save(Image.fromarray(np.array([values], dtype=np.float32)), tmp_path / "f.tif")
    assert Image.open(path).mode == "F"
    assert pixels(path).tolist() == [expected]


def test_exif_orientation_6_rotates(tmp_path: Path) -> None:
    im = Image.new("L", (4, 2), 255)
    im.putpixel((0, 0), 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    a = pixels(save(im, tmp_path / "o.png", exif=exif))
    assert a.shape == (4, 2)  # width and height swapped
    assert a[0].tolist() == [255, 0]  # the top-left mark is now top-right
    assert int(a.sum()) == 255 * 7


def test_exif_orientation_in_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    path = save(Image.new("RGB", (40, 10), (200, 200, 200)), tmp_path / "o.jpg", exif=exif)
    assert load_image(path).size == (10, 40)


def test_long_line_loads(tmp_path: Path) -> None:
    path = save(Image.new("L", (30_000, 60), 255), tmp_path / "long.png")
    assert load_image(path).size == (30_000, 60)


def test_result_outlives_the_file(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (5, 3), (0, 0, 0)), tmp_path / "x.png")
    im = load_image(str(path))
    path.unlink()
    assert np.asarray(im).sum() == 0


# ------------------------------------------------------------------------------------------- bad files


def png_bytes(im: Image.Image, tmp_path: Path) -> bytes:
    """The bytes of ``im`` saved as PNG."""
    return save(im, tmp_path / "src.png").read_bytes()


def test_missing_file(tmp_path: Path) -> None:
    with raises_naming(tmp_path / "nope.png", "does not exist"):
        load_image(tmp_path / "nope.png")


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with raises_naming(tmp_path / "d.png", "is a directory"):
        load_image(tmp_path / "d.png")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with raises_naming(tmp_path / "e.png", r"empty \(0 bytes\)"):
        load_image(tmp_path / "e.png")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "t.jpg").write_text("id\timage\ttext\n")
    with raises_naming(tmp_path / "t.jpg", "not a recognized image format"):
        load_image(tmp_path / "t.jpg")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_png(tmp_path: Path, keep: float) -> None:
    rng = np.random.default_rng(0)
    data = png_bytes(Image.fromarray(rng.integers(0, 256, (40, 200), dtype=np.uint8)), tmp_path)
    path = tmp_path / "cut.png"
    path.write_bytes(data[: int(len(data) * keep)])
    with raises_naming(path, "corrupt or truncated"):
        load_image(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    src = save(Image.fromarray(rng.integers(0, 256, (40, 200), dtype=np.uint8)), tmp_path / "src.jpg")
    path = tmp_path / "cut.jpg"
    path.write_bytes(src.read_bytes()[:600])
    with raises_naming(path, "corrupt or truncated"):
        load_image(path)


def test_corrupt_png_data(tmp_path: Path) -> None:
    data = bytearray(png_bytes(Image.new("L", (50, 20), 128), tmp_path))
    start = data.index(b"IDAT") + 4
    data[start : start + 8] = b"\xff" * 8
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with raises_naming(path, "corrupt or truncated"):
        load_image(path)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def test_zero_area(tmp_path: Path) -> None:
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 0, 0, 0, 0)
    path = tmp_path / "zero.png"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )
    with raises_naming(path, r"zero area \(0x10\)"):
        load_image(path)


def test_max_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htr.imageio, "MAX_PIXELS", 100)
    path = save(Image.new("L", (20, 20)), tmp_path / "big.png")
    with raises_naming(path, r"too large \(20x20 = 400 pixels, limit 100\)"):
        load_image(path)


def test_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)
    path = save(Image.new("L", (20, 20)), tmp_path / "bomb.png")
    with raises_naming(path, "too large to decode safely"):
        load_image(path)
