"""Helpers for tests: where the shared data is, and ways to build uploads from LFW photos and pixels."""

import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"  # screenshots and measurements the browser tests leave (git-ignored)
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


def embed_passes() -> float:
    """How many times the embedding network has run in this process (facegate_model_stage_seconds counts them)."""
    return REGISTRY.get_sample_value("facegate_model_stage_seconds_count", {"stage": "embed"}) or 0


def client_with_key(app, key: str) -> TestClient:
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


# The desk camera's frame size (api/pages/static/desk/desk.js sends at most 640 wide).
FRAME_WIDTH, FRAME_HEIGHT = 640, 480


def camera_frame(*people: tuple[str, int], face_width: int = 300, blur: float = 0) -> np.ndarray:
    """RGB pixels a desk camera could see: LFW photos of `people` side by side on a grey background, each scaled
    to `face_width` (a 250 px LFW photo has a face of about 110 px), optionally blurred."""
    frame = np.full((FRAME_HEIGHT, FRAME_WIDTH, 3), 128, np.uint8)
    slot = FRAME_WIDTH // max(len(people), 1)
    for i, person in enumerate(people):
        photo = cv2.resize(lfw_pixels(*person), (face_width, face_width), interpolation=cv2.INTER_AREA)
        x, y = i * slot + (slot - face_width) // 2, (FRAME_HEIGHT - face_width) // 2
        frame[y : y + face_width, x : x + face_width] = photo
    return cv2.GaussianBlur(frame, (0, 0), blur) if blur else frame


def sign_in(client: TestClient, key: str, area: str = "/admin"):
    """Sign a browser-like client in to the pages under `area` (/admin or /desk) as a person would."""
    page = client.get(f"{area}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(f"{area}/login", data={"api_key": key, "csrf_token": token}, follow_redirects=False)
