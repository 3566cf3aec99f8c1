"""Synthetic camera frames and clips built from LFW photos, for the HD benchmark (bench/hd_frames.py), the stream
benchmarks and the stream tests: a face of a door camera's size on a room-like background, and short clips of one
person passing (augmented copies of one photo and other photos of the same person).

Never imported by the running service."""

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# A door camera about a metre from the face: ~260 px of face photo in a 1080p frame (an LFW photo of 250 px holds
# a face of ~110 px, so the photo is scaled to about 2.3x that).
FACE_PHOTO_SIDE = 260
FRAME_SIZES = {"640x480": (640, 480), "1280x720": (1280, 720), "1920x1080": (1920, 1080)}


def read_rgb(photo: Path) -> np.ndarray:
    bgr = cv2.imread(str(photo))
    if bgr is None:
        raise FileNotFoundError(photo)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def room(width: int, height: int, seed: int) -> np.ndarray:
    """A room-like background with no face in it: a wall with a soft light gradient, a floor, a door and a few
    shelves and frames in muted colours, plus sensor noise."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.75 + 0.25 * np.exp(-(((xs - width * 0.3) / width) ** 2 + ((ys - height * 0.2) / height) ** 2) * 3)
    wall = np.array(rng.uniform(150, 210, 3), np.float32)
    pixels = (light[..., None] * wall).astype(np.float32)
    floor = int(height * 0.78)
    pixels[floor:] = np.array(rng.uniform(60, 110, 3), np.float32) * light[floor:, :, None]
    for _ in range(6):  # furniture and frames: flat rectangles with a darker edge
        w, h = int(rng.uniform(0.05, 0.2) * width), int(rng.uniform(0.05, 0.3) * height)
        x, y = int(rng.uniform(0, width - w)), int(rng.uniform(0, floor - h))
        colour = rng.uniform(40, 220, 3)
        cv2.rectangle(pixels, (x, y), (x + w, y + h), colour.tolist(), -1)
        cv2.rectangle(pixels, (x, y), (x + w, y + h), (colour * 0.6).tolist(), max(2, width // 400))
    door_x = int(width * 0.72)
    cv2.rectangle(pixels, (door_x, int(height * 0.15)), (door_x + width // 8, floor), (120, 90, 60), -1)
    pixels += rng.normal(0, 3, pixels.shape).astype(np.float32)
    return np.clip(pixels, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Pose:
    """Where and how one photo appears in a frame: its centre as a fraction of the frame, its side in pixels, and a
    brightness factor."""

    cx: float = 0.5
    cy: float = 0.42
    side: int = FACE_PHOTO_SIDE
    brightness: float = 1.0


def place(background: np.ndarray, photo: np.ndarray, pose: Pose) -> np.ndarray:
    """The photo scaled to pose.side, its brightness changed, pasted on a copy of the background with a feathered
    edge (no hard square the detector could latch on to)."""
    height, width = background.shape[:2]
    side = pose.side
    face = cv2.resize(photo, (side, side), interpolation=cv2.INTER_AREA if side < photo.shape[0] else cv2.INTER_LINEAR)
    face = np.clip(face.astype(np.float32) * pose.brightness, 0, 255)
    x, y = round(pose.cx * width - side / 2), round(pose.cy * height - side / 2)
    x, y = min(max(x, 0), width - side), min(max(y, 0), height - side)
    edge = max(2, side // 12)
    ramp = np.minimum(np.arange(side) + 1, np.arange(side)[::-1] + 1).astype(np.float32) / edge
    alpha = np.clip(np.minimum(ramp[:, None], ramp[None, :]), 0, 1)[..., None]
    frame = background.copy()
    region = frame[y : y + side, x : x + side].astype(np.float32)
    frame[y : y + side, x : x + side] = (alpha * face + (1 - alpha) * region).astype(np.uint8)
    return frame


def door_frame(photo: Path, size: tuple[int, int], *, seed: int = 0, pose: Pose = Pose()) -> np.ndarray:
    """One RGB frame of the given (width, height): the photo at pose on a room background."""
    return place(room(*size, seed), read_rgb(photo), pose)


def encode_jpeg(pixels: np.ndarray, quality: int = 85) -> bytes:
    """What a browser or camera sends (quality 85, like the desk page's)."""
    bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def passing_clip(
    photos: list[Path], size: tuple[int, int], frames: int, *, seed: int = 0, side: int = FACE_PHOTO_SIDE
) -> list[np.ndarray]:
    """A person passing a camera: `frames` frames on one background, the face drifting across the frame, its size
    and brightness varying a little, the photo changing among `photos` (the first most often, as one pose held)."""
    rng = np.random.default_rng(seed)
    background = room(*size, seed)
    pixels = [read_rgb(p) for p in photos]
    clip = []
    for i in range(frames):
        t = i / max(frames - 1, 1)
        pose = Pose(
            cx=0.35 + 0.3 * t + rng.normal(0, 0.01),
            cy=0.42 + rng.normal(0, 0.01),
            side=round(side * (0.9 + 0.2 * t) * rng.uniform(0.97, 1.03)),
            brightness=float(rng.uniform(0.8, 1.2)),
        )
        photo = pixels[0] if len(pixels) == 1 or rng.random() < 0.5 else pixels[int(rng.integers(1, len(pixels)))]
        clip.append(place(background, photo, pose))
    return clip
