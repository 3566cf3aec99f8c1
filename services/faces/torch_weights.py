"""PyTorch state dicts read without torch: facenet-pytorch's MTCNN weights (torch.save's legacy format, a series of
pickles followed by the raw storages) as NumPy arrays, so that serving can build its ONNX graphs with no torch."""

import pickle
from collections import OrderedDict
from dataclasses import dataclass
from os import PathLike
from typing import Any, BinaryIO

import numpy as np

# torch.serialization's magic number, the first pickle of a legacy-format file.
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ByteStorage": np.uint8,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass(frozen=True)
class _TensorView:
    """A tensor as the pickle describes it, before its storage's bytes are read (they follow the pickle)."""

    key: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor(storage: str, offset: int, shape: tuple, strides: tuple, *_: Any) -> _TensorView:
    return _TensorView(storage, offset, tuple(shape), tuple(strides))


class _StateDictUnpickler(pickle.Unpickler):
    """Finds only what a state dict of tensors needs; anything else in the file is refused, not run."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"a state dict holds no {module}.{name}")

    def persistent_load(self, pid: Any) -> str:
        # ('storage', storage type, key, location, element count[, view]): the key names the bytes further on.
        kind, storage_type, key, *_ = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        self.storage_types[key] = storage_type
        return key

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storage_types: dict[str, _StorageType] = {}


def read_state_dict(path: str | PathLike) -> dict[str, np.ndarray]:
    """A torch.save()d state dict (legacy format) -> {parameter name: float32/int array}."""
    with open(path, "rb") as f:
        if pickle.load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy-format torch.save file")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info (byte order checked below through the dtypes' little-endian reads)
        unpickler = _StateDictUnpickler(f)
        state = unpickler.load()
        storages = {}
        for key in pickle.load(f):
            dtype = np.dtype(unpickler.storage_types[key].dtype).newbyteorder("<")
            count = int.from_bytes(f.read(8), "little")
            storages[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    arrays = {}
    for name, view in state.items():
        storage = storages[view.key]
        strides = tuple(s * storage.itemsize for s in view.strides)
        array = np.lib.stride_tricks.as_strided(storage[view.offset :], view.shape, strides)
        arrays[name] = np.array(array, dtype=storage.dtype.newbyteorder("="))
    return arrays
