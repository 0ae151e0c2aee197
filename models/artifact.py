"""Model artifacts: a model directory as one reproducible tar.gz, for `MODEL_URI`.

`pack` writes manifest.json and the files it lists, and nothing else, at the top of
the archive, in sorted order, with fixed owner, mode and mtime and a gzip header
without name or time: the same model directory gives the same bytes (and sha256),
whoever packs it and when. service/model_source.py unpacks it.
"""

from __future__ import annotations

import gzip
import tarfile
from pathlib import Path

from service.model_dir import MANIFEST_NAME, sha256_file, verify_model_dir


def pack(model_dir: Path, out: Path) -> str:
    """Verify `model_dir` and write it to `out` (a .tar.gz); returns the archive's sha256."""
    manifest = verify_model_dir(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with open(partial, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted({MANIFEST_NAME, *manifest.files}):
            path = manifest.path(name)
            info = tarfile.TarInfo(name)
            info.size = path.stat().st_size
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o644, 0, 0, 0, "", ""
            with open(path, "rb") as handle:
                tar.addfile(info, handle)
    partial.replace(out)
    return sha256_file(out)
