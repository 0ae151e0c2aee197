"""Reading and writing model weights in the safetensors layout.

The layout is an 8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data. We write it
ourselves so a rebuild from the same seed is bit-identical (sorted keys, no
timestamps) and the demo engine needs no extra dependency to read it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES: dict[str, np.dtype] = {"F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_NAMES = {v: k for k, v in _DTYPES.items()}


class WeightsFormatError(ValueError):
    """The weights file is not a readable safetensors file."""


def write_weights(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header: dict[str, dict] = {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = array.dtype.newbyteorder("<")
        if dtype not in _NAMES:
            raise TypeError(f"tensor {name!r}: unsupported dtype {array.dtype}")
        data = array.astype(dtype, copy=False).tobytes()
        header[name] = {
            "dtype": _NAMES[dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # keep tensor data 8-byte aligned
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(encoded)))
        out.write(encoded)
        for blob in blobs:
            out.write(blob)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    raw = Path(path).read_bytes()
    try:
        (length,) = struct.unpack_from("<Q", raw, 0)
        header = json.loads(raw[8 : 8 + length])
        base = 8 + length
        tensors = {}
        for name, spec in header.items():
            if name == "__metadata__":
                continue
            start, end = spec["data_offsets"]
            dtype = _DTYPES[spec["dtype"]]
            tensors[name] = np.frombuffer(raw[base + start : base + end], dtype=dtype).reshape(spec["shape"])
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise WeightsFormatError(f"{path}: not a valid weights file ({exc})") from exc
    return tensors
