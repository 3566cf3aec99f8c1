"""Decode stage: uploaded bytes -> upright RGB pixels, with limits on size and type."""

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import InvalidImageError, PayloadTooLargeError, UnsupportedImageTypeError

SUPPORTED_FORMATS = {"JPEG", "PNG", "WEBP", "BMP"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}  # how files of those formats are named

# We enforce our own pixel limit before decoding; Pillow's bomb check would raise a less useful error.
Image.MAX_IMAGE_PIXELS = None


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
    except (OSError, SyntaxError, ValueError) as exc:  # recognised, but cut off or damaged within its header
        raise InvalidImageError(f"The image data is truncated or corrupt: {exc}", code="corrupt_image") from None
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about odd EXIF data it then ignores
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidImageError(f"The image data is truncated or corrupt: {exc}", code="corrupt_image") from None
    return np.asarray(upright if upright.mode == "RGB" else upright.convert("RGB"))
