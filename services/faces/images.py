"""Decode stage: uploaded bytes -> upright RGB pixels, with limits on size and type."""

import io
import struct
import warnings

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import FaceRejectedError, InvalidImageError, PayloadTooLargeError, UnsupportedImageTypeError

# MPO: what many phone cameras write, a JPEG with further frames after it; the first frame is the photo.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "BMP"}
MIN_SIDE = 20  # pixels; MTCNN finds no face in less
MAX_ASPECT_RATIO = 20  # longer side / shorter side; beyond it no face fits and MTCNN's pyramid degenerates
# What Pillow raises on malformed headers and chunks (a PNG text chunk that inflates too far is a ValueError).
_CORRUPT = (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}  # how files of those formats are named

# We enforce our own pixel limit before decoding; Pillow's bomb check would raise a less useful error.
Image.MAX_IMAGE_PIXELS = None
EXIF_ORIENTATION = 0x0112


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Return the image as an HxWx3 uint8 RGB array, rotated as its EXIF orientation says."""
    if not data:
        raise InvalidImageError("The uploaded file is empty.", code="empty_file")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedImageTypeError(
            "The file is not an image in a supported format.", supported=sorted(SUPPORTED_FORMATS)
        ) from None
    except _CORRUPT as exc:  # recognised, but cut off or damaged within its header
        raise InvalidImageError(f"The image header is corrupt: {exc}", code="corrupt_image") from None
    if image.format not in SUPPORTED_FORMATS:
        raise UnsupportedImageTypeError(
            f"{image.format} images are not supported.", format=image.format, supported=sorted(SUPPORTED_FORMATS)
        )
    width, height = image.size
    if width * height > max_pixels:
        raise PayloadTooLargeError(
            f"The image has {width}x{height} pixels, more than the {max_pixels} allowed.",
            code="image_too_large",
            width=width,
            height=height,
            max_pixels=max_pixels,
        )
    if min(width, height) < MIN_SIDE:
        raise FaceRejectedError(
            f"The image is {width}x{height} pixels; a face needs at least {MIN_SIDE} on each side.",
            code="image_too_small", width=width, height=height, min_side=MIN_SIDE,
        )  # fmt: skip
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise FaceRejectedError(
            f"The image is {width}x{height} pixels: too narrow to hold a face (at most {MAX_ASPECT_RATIO}:1).",
            code="bad_aspect_ratio", width=width, height=height, max_aspect_ratio=MAX_ASPECT_RATIO,
        )  # fmt: skip
    if image.format == "JPEG" and image.mode == "RGB" and image.getexif().get(EXIF_ORIENTATION, 1) == 1:
        # OpenCV's decode gives Pillow's pixels to the bit, faster on HD frames (docs/performance.md).
        # A JPEG OpenCV cannot decode whole (cut off, damaged) goes on to Pillow, which says what is wrong.
        flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        if bgr is not None:
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd EXIF data it then ignores
            image.load()
            upright = ImageOps.exif_transpose(image)
    except _CORRUPT as exc:
        raise InvalidImageError(f"The image data is truncated or corrupt: {exc}", code="corrupt_image") from None
    return rgb_pixels(upright)


def rgb_pixels(image: Image.Image) -> np.ndarray:
    """HxWx3 uint8 RGB. 16-bit greyscale (PNG) keeps its top 8 bits, as Pillow does for 16-bit colour: its own
    conversion clips every value above 255 to white, which would leave no face to find."""
    if image.mode == "RGB":
        return np.asarray(image)
    if image.mode.startswith("I"):  # I;16, I;16B and I: 16-bit samples
        grey = (np.asarray(image).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
        return cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return np.asarray(image.convert("RGB"))
