"""Runtime study: the ONNX Runtime path against the PyTorch path it replaced, on LFW fold-1 pairs.

Per photo, the old path (facenet-pytorch's MTCNN.detect, FaceNet with fused batch norm in channels-last,
mini-Xception, all in PyTorch) and the new one (services.faces on ONNX Runtime) run alternately, so both see the
same machine load. Reported: how far the results move (boxes, embeddings, pair distances, decisions at the match
threshold) and min / median ms of each stage, plus FaceNet per face in batches of 8 and an int8 FaceNet (static
quantisation calibrated on the study's own crops: a lever measured, not used).

Run: FACEGATE_WEIGHTS_DIR=../shared/models .venv/bin/python -m bench.runtime_study [--pairs 100]
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from torch.fx.experimental.optimization import fuse

from core.settings import Settings
from services.evaluation.verification import central_face, read_lfw_pairs
from services.faces.alignment import expression_crop, facenet_crop
from services.faces.detection import Box, DetectedFace
from services.faces.embedding import l2_normalise, prewhiten
from services.faces.pipeline import FacePipeline

REPO = Path(__file__).resolve().parent.parent


def timed(times: dict[str, list[float]], stage: str, fn: Callable, *args):
    start = time.perf_counter()
    out = fn(*args)
    times.setdefault(stage, []).append((time.perf_counter() - start) * 1000)
    return out


def torch_detect(mtcnn: MTCNN, pixels: np.ndarray) -> list[DetectedFace]:
    """The detect stage as it was: facenet-pytorch's own cascade."""
    boxes, scores, points = mtcnn.detect(pixels, landmarks=True)
    if boxes is None:
        return []
    faces = [DetectedFace(Box.from_corners(*b), float(s), p) for b, s, p in zip(boxes, scores, points, strict=True)]
    return sorted(faces, key=lambda face: face.score, reverse=True)


def int8_facenet(float_path: Path, crops: np.ndarray, out: Path, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """FaceNet quantised to int8 (QDQ, per-channel weights), activations calibrated on `crops`."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Crops(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(prewhiten(crops[i : i + 8]).transpose(0, 3, 1, 2) for i in range(0, len(crops), 8))

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {"input": np.ascontiguousarray(batch)}

    quantize_static(
        str(float_path), str(out), Crops(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    return lambda batch: l2_normalise(session.run(None, {"input": prewhiten(batch).transpose(0, 3, 1, 2)})[0])


def summary(times: list[float]) -> dict:
    return {"n": len(times), "min_ms": round(min(times), 2), "median_ms": round(statistics.median(times), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", type=Path, default=REPO.parent / "shared" / "data" / "lfw")
    parser.add_argument("--pairs", type=int, default=100, help="the first N pairs of fold 1 (N/2 same, N/2 not)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    fold = read_lfw_pairs(args.lfw / "pairs.txt", [1])
    pairs = fold[: args.pairs // 2] + fold[300 : 300 + args.pairs // 2]
    names = sorted({name for pair in pairs for name in (pair.left, pair.right)})
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="facegate-study-") as tmp:
        settings = Settings(data_dir=Path(tmp))
        threads = os.cpu_count() or 1
        new = FacePipeline(settings)
        new.load()
        torch.set_num_threads(threads)
        old_settings = settings.model_copy(update={"inference_runtime": "torch"})
        old_detector = MTCNN(min_face_size=settings.detector_min_face_size, keep_all=True, device="cpu")
        old_embedder = fuse(new.embedder.build().eval()).to(memory_format=torch.channels_last)
        old_expression = type(new.expression)(old_settings)
        old_expression.load()

        @torch.inference_mode()
        def old_embed(crops: np.ndarray) -> np.ndarray:
            return l2_normalise(old_embedder(torch.from_numpy(prewhiten(crops)).permute(0, 3, 1, 2)).numpy())

        times: dict[str, list[float]] = {}
        old_embeddings, new_embeddings, box_drift, all_crops = {}, {}, [], []
        for name in names:
            pixels = new.decode((args.lfw / "images" / name).read_bytes())
            old_faces = timed(times, "detect torch (facenet-pytorch)", torch_detect, old_detector, pixels)
            new_faces = timed(times, "detect onnx (NumPy cascade)", new.detect, pixels)
            if len(old_faces) != len(new_faces):
                box_drift.append(float("inf"))
            elif old_faces:
                box_drift.append(max(abs(a - b) for o, n in zip(old_faces, new_faces, strict=True)
                                     for a, b in zip(o.box.corners, n.box.corners, strict=True)))  # fmt: skip
            for label, faces in (("old", old_faces), ("new", new_faces)):
                index = central_face(faces, pixels.shape)
                if index is None:
                    continue
                crop = facenet_crop(pixels, faces[index])[None]
                grey = expression_crop(pixels, faces[index])[None]
                if label == "old":
                    old_embeddings[name] = timed(times, "embed torch (fused, channels-last)", old_embed, crop)[0]
                    timed(times, "expression torch", old_expression.predict, grey)
                    all_crops.append(crop[0])
                else:
                    new_embeddings[name] = timed(times, "embed onnx", new.embedder.predict, crop)[0]
                    timed(times, "expression onnx", new.expression.predict, grey)

        crops = np.stack(all_crops)
        int8 = int8_facenet(new.embedder.networks()[0].onnx_path(settings), crops, Path(tmp) / "int8.onnx", threads)
        int8_embeddings = {}
        for i, name in enumerate(n for n in names if n in old_embeddings):
            int8_embeddings[name] = timed(times, "embed onnx int8", int8, crops[i : i + 1])[0]
        for start in range(0, len(crops) - 7, 8):
            batch = crops[start : start + 8]
            timed(times, "embed torch, batch of 8 (per batch)", old_embed, batch)
            timed(times, "embed onnx, batch of 8 (per batch)", new.embedder.predict, batch)

    def pair_distances(embeddings: dict[str, np.ndarray]) -> np.ndarray:
        return np.array([np.linalg.norm(embeddings[p.left] - embeddings[p.right]) for p in pairs])

    found = [p for p in pairs if all(n in old_embeddings and n in new_embeddings for n in (p.left, p.right))]
    pairs = found
    threshold = settings.match_threshold
    old_d, new_d, int8_d = (pair_distances(e) for e in (old_embeddings, new_embeddings, int8_embeddings))
    common = [n for n in old_embeddings if n in new_embeddings]
    result = {
        "photos": len(names),
        "pairs": len(pairs),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "max_box_corner_drift_px": max(box_drift),
        "max_embedding_drift": float(max(np.linalg.norm(old_embeddings[n] - new_embeddings[n]) for n in common)),
        "max_pair_distance_drift": float(np.abs(old_d - new_d).max()),
        "decisions_changed_at_threshold": int(((old_d <= threshold) != (new_d <= threshold)).sum()),
        "int8_max_pair_distance_drift": float(np.abs(old_d - int8_d).max()),
        "int8_decisions_changed_at_threshold": int(((old_d <= threshold) != (int8_d <= threshold)).sum()),
        "stages": {stage: summary(t) for stage, t in times.items()},
    }
    print(json.dumps(result, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / time.strftime("runtime-study-%Y%m%d-%H%M%S.json")).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
