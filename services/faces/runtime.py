"""Where the networks run: ONNX Runtime (the default) or PyTorch (the source of truth, in the dev install).

Every network is built as an ONNX graph straight from its weight files (services.faces.onnx_graphs, no torch), once,
into an .onnx file in the data folder named after the weights it holds, and loaded from there on later starts. The
same networks are defined in PyTorch (services.faces.networks, facenet-pytorch's MTCNN), which the graphs are
checked against. The files are written by a child process, so the serving process never holds the weight files'
arrays nor the graph builder's memory (docs/performance.md).

Some networks run their ONNX file in OpenVINO instead, where it measured faster (docs/performance.md): FaceNet in
bfloat16 (ONNX Runtime has no bfloat16 kernels on x86) and MTCNN's R- and O-Net at their batch sizes. P-Net stays
in ONNX Runtime: its input changes size with every image and scale, and OpenVINO prepares each new size.
"""

import json
import logging
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.errors import SetupError
from core.settings import Settings

if TYPE_CHECKING:
    import onnx
    import torch

log = logging.getLogger(__name__)

# Part of every exported file's name: bump it when the export itself changes, so old files are not reused.
# 2: built with onnx's graph API (services.faces.onnx_graphs) rather than traced by torch.onnx.export.
EXPORT_VERSION = 2

Precision = Literal["float32", "bfloat16"]

# What OpenVINO may keep per network: kernels for this many input shapes, buffers for batches of this many
# (openvino_forward). Passes of more than OPENVINO_PAD_TO items are padded to a multiple of it: 15 shapes in all.
OPENVINO_SHAPE_CACHE = 64
OPENVINO_MOST_PER_PASS = 64
OPENVINO_PAD_TO = 8

# A forward pass: one float32 input batch -> the network's outputs, in the PyTorch forward()'s order.
Forward = Callable[[np.ndarray], list[np.ndarray]]


class ModelExportError(SetupError):
    """The ONNX files could not be written, or not where the service looks for them."""


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a model: its ONNX graph, the same network in PyTorch, and what its exported file is called."""

    name: str  # unique per architecture and weights, e.g. "facenet128-6acdd8fb3a3f"
    graph: Callable[[], "onnx.ModelProto"]  # input "input", outputs in the PyTorch forward()'s order
    build: Callable[[], "torch.nn.Module"]  # the PyTorch network (dev install): the torch runtime and the tests
    openvino: bool = False  # run in OpenVINO rather than ONNX Runtime
    # bfloat16 (OpenVINO): products of bfloat16-rounded inputs and weights, summed in float32; float32 on a CPU
    # without bfloat16 instructions. PyTorch, the reference, always runs float32.
    precision: Precision = "float32"

    def onnx_path(self, settings: Settings) -> Path:
        return onnx_dir(settings) / f"{self.name}-v{EXPORT_VERSION}.onnx"


def onnx_dir(settings: Settings) -> Path:
    return settings.data_dir / "onnx"  # data_dir is absolute (core.settings), the same for the export's child


def inference_threads(settings: Settings) -> int:
    return settings.inference_threads or os.cpu_count() or 1


def export_onnx(spec: NetworkSpec, path: Path) -> None:
    """Write spec's ONNX graph to `path` (written aside and renamed, so a crash leaves no half file)."""
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    onnx.save(spec.graph(), str(partial))
    partial.replace(path)
    log.info("exported %s to %s", spec.name, path)


def traced_graph(
    network: "torch.nn.Module", example_shape: tuple[int, ...], outputs: tuple[str, ...]
) -> "onnx.ModelProto":
    """A PyTorch network's ONNX graph by torch.onnx.export, for a network with no graph of its own (DeepFace's
    expression CNN, an extra that brings torch); any batch size."""
    import tempfile

    import onnx
    import torch

    from services.faces.onnx_graphs import ONNX_OPSET

    with tempfile.TemporaryDirectory() as folder, torch.inference_mode(), warnings.catch_warnings():
        path = Path(folder) / "traced.onnx"
        # The tracer warns where Python arithmetic on shapes becomes constants: only the batch varies, so they hold.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            network.eval(),
            (torch.zeros(example_shape),),
            str(path),
            input_names=["input"],
            output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in ("input", *outputs)},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, and it handles plain CNNs
        )
        return onnx.load(str(path))


def export_missing(settings: Settings, specs: list[NetworkSpec]) -> None:
    """Export those of `specs` that have no file yet, in a child process: torch stays out of this one."""
    missing = [spec.name for spec in specs if not spec.onnx_path(settings).exists()]
    if not missing:
        return
    log.info("exporting %s to ONNX in %s (once)", ", ".join(missing), onnx_dir(settings))
    # The child rebuilds the same networks from these settings; no other setting plays a part. Its working folder
    # is the source's (`-m services...` finds it there when nothing is installed): the paths are absolute.
    fields = {"weights_dir", "data_dir", "facenet_weights", "expression_model"}
    child_settings = json.dumps(settings.model_dump(mode="json", include=fields))
    child = subprocess.run(
        [sys.executable, "-m", "services.faces.export", child_settings, *missing],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    sys.stderr.write(child.stderr)  # its log lines, as if it ran here
    if child.returncode != 0:
        last = child.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ModelExportError(f"exporting {', '.join(missing)} to ONNX failed (exit {child.returncode}): {last[0]}")
    astray = [str(spec.onnx_path(settings)) for spec in specs if not spec.onnx_path(settings).exists()]
    if astray:
        raise ModelExportError(f"the ONNX export finished but did not write {', '.join(astray)}")


def onnx_forward(path: Path, threads: int) -> Forward:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the HTTP and database threads need those cores between passes.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No arena and no planned buffers: each pass takes its memory from malloc and gives it back. With them, the
    # process kept growing (P-Net's input changes size with every photo and scale); without, it stays flat
    # (docs/performance.md).
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def forward(batch: np.ndarray) -> list[np.ndarray]:
        return session.run(None, {input_name: np.ascontiguousarray(batch, dtype=np.float32)})

    return forward


def openvino_bfloat16() -> bool:
    """Whether OpenVINO has bfloat16 kernels for this CPU (AVX-512 BF16 or AMX)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def padded_size(count: int, step: int | None = OPENVINO_PAD_TO) -> int:
    """The batch size a pass of `count` items runs at: up to `step` as it is, beyond it the next multiple of `step`."""
    return count if step is None or count <= step else -(-count // step) * step


def openvino_forward(
    path: Path,
    threads: int,
    callers: int,
    precision: Precision,
    shape_cache: int | None = OPENVINO_SHAPE_CACHE,
    most_per_pass: int | None = OPENVINO_MOST_PER_PASS,
    pad_to: int | None = OPENVINO_PAD_TO,
) -> Forward:
    """`threads` per pass, and `callers` threads may each run a pass at the same time (one OpenVINO stream each).

    OpenVINO keeps what it prepared for each input shape (kernels: up to `shape_cache` shapes, 5,000 when None) and
    each request's buffers at the size of the largest batch it ran, so a network whose batch size varies holds more
    memory with every new size and with its largest batch, for good. Batches run in passes of at most
    `most_per_pass` and a small cache bound both; passes padded to a multiple of `pad_to` (padding rows of zeros,
    their answers dropped) keep the shapes to a few, which held 40 MB less after large photos than the cache's 64
    (docs/performance.md, "Memory after large bodies")."""
    import openvino as ov

    config: dict[str, object] = {
        "INFERENCE_NUM_THREADS": threads * callers,
        "NUM_STREAMS": callers,
        "INFERENCE_PRECISION_HINT": {"float32": "f32", "bfloat16": "bf16"}[precision],
    }
    if shape_cache is not None:
        config["CPU_RUNTIME_CACHE_CAPACITY"] = shape_cache
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    outputs = len(compiled.outputs)
    requests = threading.local()  # an infer request is not thread-safe: one per calling thread

    def one_pass(batch: np.ndarray) -> list[np.ndarray]:
        request = getattr(requests, "request", None)
        if request is None:
            request = requests.request = compiled.create_infer_request()
        # The input is lent to OpenVINO, not copied: `lent` keeps it alive through the pass. The outputs are copied
        # out of buffers the next pass reuses, without the padding's rows.
        size = padded_size(len(batch), pad_to)
        lent = np.ascontiguousarray(batch, dtype=np.float32)
        if size > len(batch):
            lent = np.concatenate([lent, np.zeros((size - len(batch), *batch.shape[1:]), np.float32)])
        request.set_input_tensor(ov.Tensor(lent, shared_memory=True))
        request.infer()
        return [request.get_output_tensor(i).data[: len(batch)].copy() for i in range(outputs)]

    def forward(batch: np.ndarray) -> list[np.ndarray]:
        if most_per_pass is None or len(batch) <= most_per_pass:
            return one_pass(batch)
        passes = [one_pass(batch[start : start + most_per_pass]) for start in range(0, len(batch), most_per_pass)]
        return [np.concatenate(part) for part in zip(*passes, strict=True)]

    return forward


def torch_forward(network: "torch.nn.Module", threads: int) -> Forward:
    import torch

    torch.set_num_threads(threads)
    network = network.eval()

    @torch.inference_mode()
    def forward(batch: np.ndarray) -> list[np.ndarray]:
        outputs = network(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        return [o.numpy() for o in (outputs if isinstance(outputs, tuple) else (outputs,))]

    return forward


def load_forwards(specs: list[NetworkSpec], settings: Settings, callers: int = 1) -> dict[str, Forward]:
    """Each network's forward pass by name, in the runtime the settings choose, for up to `callers` threads at
    once."""
    threads = inference_threads(settings)
    if settings.inference_runtime == "torch":
        return {spec.name: torch_forward(spec.build(), threads) for spec in specs}
    export_missing(settings, specs)
    return {spec.name: exported_forward(spec, settings, threads, callers) for spec in specs}


def exported_forward(spec: NetworkSpec, settings: Settings, threads: int, callers: int) -> Forward:
    path = spec.onnx_path(settings)
    if spec.precision == "bfloat16":
        if openvino_bfloat16():
            log.info("%s runs in OpenVINO, bfloat16", spec.name)
            # Not padded: a padding face costs FaceNet ~7 ms, more than the few megabytes a new batch size holds.
            return openvino_forward(path, threads, callers, "bfloat16", pad_to=None)
        log.warning("this CPU has no bfloat16 instructions: %s runs in float32", spec.name)
    if spec.openvino:
        return openvino_forward(path, threads, callers, "float32")
    return onnx_forward(path, threads)
