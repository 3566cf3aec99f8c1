#!/usr/bin/env bash
# Build the OPTIONAL peer-benchmark virtualenv bench/.venv-peer with DeepFace, its
# TensorFlow backend and its HTTP API (the [api] extra: Flask, gunicorn), for
# bench/peer_deepface.py ("FaceGate vs DeepFace"). Not part of the product install.
#
# Only package registries are used: no model weights are downloaded here.
# peer_deepface.py feeds DeepFace the FaceNet weights from the shared weights folder,
# and the mtcnn package ships its own P/R/O-Net weights inside the wheel.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${BENCH_DIR}/.venv-peer"
PY="${PYTHON:-python3}"

# Pins that were verified together on Python 3.11 / Linux x86_64.
# tensorflow-cpu (not "tensorflow") keeps the CUDA build out; tf-keras is what deepface
# uses with TF >= 2.16 (it sets TF_USE_LEGACY_KERAS=1). tf-keras declares a dependency on
# the "tensorflow" distribution name, which tensorflow-cpu provides under another name,
# so it is installed with --no-deps (otherwise pip would pull a second, full TensorFlow).
DEEPFACE_VERSION="0.0.103"
TF_VERSION="2.21.0"
TF_KERAS_VERSION="2.21.0"
MTCNN_VERSION="1.0.0"
# Transitive pins that matter for the numbers (resolved at the time of writing).
CONSTRAINTS=(
    "keras==3.15.1"
    "numpy==2.4.6"
    "opencv-contrib-python-headless==5.0.0.93"
    "h5py==3.14.0"
    "onnxruntime==1.32.0"
    "retina-face==0.0.19"
    "pandas==3.1.1"
    # deepface 0.0.103 imports werkzeug.datastructures in commons/image_utils.py but only
    # declares it through its [api] extra (Flask); without it `from deepface import DeepFace`
    # fails with ModuleNotFoundError.
    "werkzeug==3.1.9"
)

STAMP="${VENV}/.peer-env-stamp"
WANT="deepface[api]==${DEEPFACE_VERSION} tensorflow-cpu==${TF_VERSION} tf-keras==${TF_KERAS_VERSION} mtcnn==${MTCNN_VERSION} ${CONSTRAINTS[*]}"

if [[ -x "${VENV}/bin/python" && -f "${STAMP}" && "$(cat "${STAMP}")" == "${WANT}" ]]; then
    if "${VENV}/bin/python" -c "import deepface, werkzeug, tensorflow, tf_keras, mtcnn, flask, gunicorn" >/dev/null 2>&1; then
        echo "peer env already set up: ${VENV}"
        exit 0
    fi
fi

"${PY}" -c 'import sys; assert sys.version_info[:2] >= (3, 10), sys.version' \
    || { echo "need Python >= 3.10 (tested with 3.11)" >&2; exit 1; }

if [[ ! -x "${VENV}/bin/python" ]]; then
    echo "creating ${VENV}"
    "${PY}" -m venv "${VENV}"
fi

PIP=("${VENV}/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

"${PIP[@]}" install --quiet \
    "deepface[api]==${DEEPFACE_VERSION}" \
    "tensorflow-cpu==${TF_VERSION}" \
    "mtcnn==${MTCNN_VERSION}" \
    "${CONSTRAINTS[@]}"
"${PIP[@]}" install --quiet --no-deps "tf-keras==${TF_KERAS_VERSION}"

# Smoke check: imports only (no weights needed, nothing downloaded).
"${VENV}/bin/python" - <<'EOF'
import os, tempfile
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# importing DeepFace creates $DEEPFACE_HOME/.deepface/weights; keep that out of ~
os.environ["DEEPFACE_HOME"] = tempfile.mkdtemp(prefix="deepface-smoke-")
import deepface, tensorflow as tf, tf_keras, mtcnn, flask, gunicorn  # noqa: F401
from deepface import DeepFace  # noqa: F401  (pulls in deepface's undeclared imports)
from importlib.metadata import version
import shutil; shutil.rmtree(os.environ["DEEPFACE_HOME"], ignore_errors=True)
print(f"deepface {deepface.__version__}, tensorflow-cpu {tf.__version__}, "
      f"tf-keras {tf_keras.__version__}, mtcnn {version('mtcnn')}")
EOF

echo "${WANT}" > "${STAMP}"
echo "peer env ready: ${VENV}"
echo "run: ${VENV}/bin/python ${BENCH_DIR}/peer_deepface.py --images <folder of .jpg>"
