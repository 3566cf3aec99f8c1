"""The decode stage: OpenCV's fast path for plain JPEGs gives Pillow's pixels to the bit; every format and pixel
mode gives the same picture."""

import io

import numpy as np
import pytest
from PIL import Image

from services.evaluation.camera_clips import FRAME_SIZES, door_frame, encode_jpeg
from services.faces.images import decode_image
from tests.support import LFW_IMAGES, jpeg

pytestmark = pytest.mark.data

MAX_PIXELS = 40_000_000


def pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_jpegs_decode_to_pillows_pixels():
    photos = sorted(LFW_IMAGES.glob("*/*.jpg"))[::5]
    frames = [encode_jpeg(door_frame(photos[0], size, seed=1)) for size in FRAME_SIZES.values()]
    grey = jpeg(np.full((60, 80, 3), 90, np.uint8).mean(axis=2).astype(np.uint8))  # mode L: Pillow's path
    for data in [p.read_bytes() for p in photos] + frames + [grey]:
        np.testing.assert_array_equal(decode_image(data, max_pixels=MAX_PIXELS), pillow(data))
    assert len(photos) > 400


def encoded(pixels: np.ndarray, fmt: str, mode: str | None = None, **save_args) -> bytes:
    out = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(out, format=fmt, **save_args)
    return out.getvalue()


def test_every_lossless_format_and_mode_decodes_to_the_same_picture():
    rgb = np.asarray(Image.open(sorted(LFW_IMAGES.glob("*/*.jpg"))[0]).convert("RGB"))
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    grey16 = grey.astype(np.uint16) * 257  # the same picture in 16 bits (PNG's own 8-to-16 scaling)
    colour = {
        "PNG": encoded(rgb, "PNG"),
        "PNG with alpha": encoded(rgb, "PNG", "RGBA"),
        "lossless WebP": encoded(rgb, "WEBP", lossless=True),
        "BMP": encoded(rgb, "BMP"),
    }
    greyscale = {"8-bit PNG": encoded(grey, "PNG"), "16-bit PNG": encoded(grey16, "PNG")}
    for name, data in colour.items():
        np.testing.assert_array_equal(decode_image(data, max_pixels=MAX_PIXELS), rgb, err_msg=name)
    for name, data in greyscale.items():
        np.testing.assert_array_equal(decode_image(data, max_pixels=MAX_PIXELS), np.dstack([grey] * 3), err_msg=name)
    assert Image.open(io.BytesIO(greyscale["16-bit PNG"])).mode == "I;16"
