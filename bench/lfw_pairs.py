"""What the studies that alter LFW photos start from (bench/face_size_study.py, bench/cut_face_study.py): the LFW
pairs of some folds whose photos are both in ../shared, and each photo's subject as the service's own pipeline finds
it."""

from dataclasses import dataclass

import numpy as np

from bench.run import REPO
from services.evaluation.verification import Pair, central_face, read_lfw_pairs
from services.faces.pipeline import AnalyzedFace, FacePipeline

LFW = REPO.parent / "shared" / "data" / "lfw"


def subject(pipeline: FacePipeline, image: np.ndarray) -> AnalyzedFace | None:
    """The face nearest the photo's centre (LFW photos are centred on their subject); None when none was found."""
    faces = pipeline.analyze(image)
    index = central_face([f.detection for f in faces], image.shape)
    return None if index is None else faces[index]


@dataclass
class PairPhotos:
    pairs: list[Pair]
    names: list[str]  # every photo of the pairs
    images: dict[str, np.ndarray]  # the photos whose subject was found, decoded
    subjects: dict[str, AnalyzedFace]


def pair_photos(pipeline: FacePipeline, folds: list[int]) -> PairPhotos:
    pairs = [
        p
        for p in read_lfw_pairs(LFW / "pairs.txt", folds)
        if (LFW / "images" / p.left).exists() and (LFW / "images" / p.right).exists()
    ]
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    images, subjects = {}, {}
    for name in names:
        image = pipeline.decode((LFW / "images" / name).read_bytes())
        face = subject(pipeline, image)
        if face is not None:
            images[name], subjects[name] = image, face
    return PairPhotos(pairs, names, images, subjects)
