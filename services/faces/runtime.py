"""Where the networks run: ONNX Runtime (the default) or PyTorch (the source of truth).

Every network is defined in PyTorch (services.faces.networks, facenet-pytorch's MTCNN). For ONNX Runtime each one
is exported once to an .onnx file in the data folder, named after the weights it holds, and loaded from there on
later starts. The export runs in a child process, so a serving process with the ONNX files never imports torch:
that is most of its memory (docs/performance.md).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from core.settings import Settings

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

# Part of every exported file's name: bump it when the export itself changes, so old files are not reused.
EXPORT_VERSION = 1
ONNX_OPSET = 17

Precision = Literal["float32", "bfloat16"]

# A forward pass: one float32 input batch -> the network's outputs, in the PyTorch forward()'s order.
Forward = Callable[[np.ndarray], list[np.ndarray]]


@dataclass(frozen=True)
class NetworkSpec:
    """One network of a model: how to build it in PyTorch, and what its exported file is called."""

    name: str  # unique per architecture and weights, e.g. "facenet128-6acdd8fb3a3f"
    build: Callable[[], "torch.nn.Module"]
    example_shape: tuple[int, ...]  # one input, NCHW
    outputs: tuple[str, ...]
    dynamic_axes: dict[int, str] = field(default_factory=lambda: {0: "batch"})  # input axes of any size
    openvino: bool = False  # run in OpenVINO rather than ONNX Runtime
    # bfloat16 (OpenVINO): products of bfloat16-rounded inputs and weights, summed in float32; float32 on a CPU
    # without bfloat16 instructions. PyTorch, the reference, always runs float32.
    precision: Precision = "float32"

    def onnx_path(self, settings: Settings) -> Path:
        return onnx_dir(settings) / f"{self.name}-v{EXPORT_VERSION}.onnx"


def onnx_dir(settings: Settings) -> Path:
    return settings.data_dir / "onnx"


def inference_threads(settings: Settings) -> int:
    return settings.inference_threads or os.cpu_count() or 1


def export_onnx(spec: NetworkSpec, path: Path) -> None:
    """Write spec's PyTorch network to `path` as ONNX (written aside and renamed, so a crash leaves no half file)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    # The tracer warns where Python arithmetic on shapes becomes constants: only the batch (and P-Net's height and
    # width, which have no such arithmetic) vary, so the constants hold.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            spec.build().eval(),
            (torch.zeros(spec.example_shape),),
            str(partial),
            input_names=["input"],
            output_names=list(spec.outputs),
            dynamic_axes={"input": spec.dynamic_axes, **{name: {0: "batch"} for name in spec.outputs}},
            opset_version=ONNX_OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, and it handles these plain CNNs
        )
    partial.replace(path)
    log.info("exported %s to %s", spec.name, path)


def export_missing(settings: Settings, specs: list[NetworkSpec]) -> None:
    """Export those of `specs` that have no file yet, in a child process: torch stays out of this one."""
    missing = [spec.name for spec in specs if not spec.onnx_path(settings).exists()]
    if not missing:
        return
    log.info("exporting %s to ONNX in %s (once)", ", ".join(missing), onnx_dir(settings))
    # The child rebuilds the same networks from these settings; no other setting plays a part.
    fields = {"weights_dir", "data_dir", "facenet_weights", "expression_model"}
    child_settings = json.dumps(settings.model_dump(mode="json", include=fields))
    subprocess.run(
        [sys.executable, "-m", "services.faces.export", child_settings, *missing],
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def onnx_forward(path: Path, threads: int) -> Forward:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the HTTP and database threads need those cores between passes.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # No arena and no planned buffers: each pass takes its memory from malloc and gives it back. With them, the
    # process grew by ~100 MB over 200 photos (P-Net's input changes size with every photo and scale); without,
    # it stays flat (docs/performance.md).
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


def openvino_forward(path: Path, threads: int, callers: int, precision: Precision) -> Forward:
    """`threads` per pass, and `callers` threads may each run a pass at the same time (one OpenVINO stream each)."""
    import openvino as ov

    compiled = ov.Core().compile_model(
        str(path),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads * callers,
            "NUM_STREAMS": callers,
            "INFERENCE_PRECISION_HINT": {"float32": "f32", "bfloat16": "bf16"}[precision],
        },
    )
    outputs = len(compiled.outputs)
    requests = threading.local()  # an infer request is not thread-safe: one per calling thread

    def forward(batch: np.ndarray) -> list[np.ndarray]:
        request = getattr(requests, "request", None)
        if request is None:
            request = requests.request = compiled.create_infer_request()
        # The input is lent to OpenVINO, not copied: `lent` keeps it alive through the pass. The outputs are copied
        # out of buffers the next pass reuses.
        lent = np.ascontiguousarray(batch, dtype=np.float32)
        request.set_input_tensor(ov.Tensor(lent, shared_memory=True))
        request.infer()
        return [request.get_output_tensor(i).data.copy() for i in range(outputs)]

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
            return openvino_forward(path, threads, callers, "bfloat16")
        log.warning("this CPU has no bfloat16 instructions: %s runs in float32", spec.name)
    if spec.openvino:
        return openvino_forward(path, threads, callers, "float32")
    return onnx_forward(path, threads)
