"""Helpers for tests: where the shared data is, and ways to build uploads from LFW photos and pixels."""

import io
import os
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("FACEGATE_SHARED_DIR", REPO.parent / "shared"))
LFW = SHARED / "data" / "lfw"
LFW_IMAGES = LFW / "images"


def lfw_photo(person: str, number: int) -> bytes:
    return (LFW_IMAGES / person / f"{person}_{number:04d}.jpg").read_bytes()


def jpeg(pixels: np.ndarray, **save_args) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=92, **save_args)
    return out.getvalue()


def lfw_pixels(person: str, number: int) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(lfw_photo(person, number))).convert("RGB"))


def upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> dict:
    return {"file": (name, data, content_type)}


def client_with_key(app, key: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})
