"""Export the pipeline's networks to ONNX: `facegate export-models`, and the child process runtime.export_missing
starts (`python -m services.faces.export SETTINGS_JSON NAME...`) so that the serving process never holds the weight
files' arrays nor the graph builder's memory."""

import json
import sys

from core.errors import SetupError
from core.settings import Settings
from services.faces.detection import FaceDetector
from services.faces.embedding import FaceEmbedder
from services.faces.expression import expression_model
from services.faces.runtime import NetworkSpec, export_onnx


def pipeline_networks(settings: Settings) -> list[NetworkSpec]:
    models = (FaceDetector(settings), FaceEmbedder(settings)) + (
        (expression_model(settings),) if settings.expression_enabled else ()
    )
    return [spec for model in models for spec in model.networks()]


def export_networks(settings: Settings, names: set[str] | None = None, *, overwrite: bool = False) -> list[str]:
    """Write the ONNX file of each network named (all, without names) that has none yet, or every one with
    overwrite; the names of those written."""
    written = []
    for spec in pipeline_networks(settings):
        if (names is None or spec.name in names) and (overwrite or not spec.onnx_path(settings).exists()):
            export_onnx(spec, spec.onnx_path(settings))
            written.append(spec.name)
    return written


if __name__ == "__main__":
    try:
        export_networks(Settings.model_validate(json.loads(sys.argv[1])), set(sys.argv[2:]))
    except SetupError as error:  # its last line is what the parent reports (runtime.export_missing)
        sys.exit(f"{type(error).__name__}: {error}")
