"""The decode stage: OpenCV's fast path for plain JPEGs gives Pillow's pixels to the bit."""

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
