"""Files only the controller's user may read: the state store (0600 in a 0700 directory)
and the secrets a rollout needs after the process that started it exits.

A rollout's notify URL is a credential (a webhook's token is in its path). The state
database keeps only its redacted form; the real one lives in `<state dir>/secrets/
<rollout id>.notify_url` (0600, directory 0700), written by `rollout start` and read by
every later process driving that rollout (`rollout tick`), removed when it ends. A
separate file, not a database column, so a copy of the database, `rollout show` or a
support bundle never carries it.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tempfile
from pathlib import Path

log = logging.getLogger("voxfleet.files")
SECRETS_DIR = "secrets"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def private_dir(path: Path, tighten: bool) -> Path:
    """Create `path` 0700. An existing one open to others is tightened (`tighten`, a
    directory that is ours alone) or warned about (the state directory may be shared)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        if tighten:
            path.chmod(0o700)
        else:
            log.warning("state directory %s is mode %04o: others can list it; `chmod 700 %s` (its files are 0600)",
                        path, mode, path)
    return path


def create_private_file(path: Path) -> None:
    """An empty file only its owner may read or write, unless it exists already."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def tighten_file(path: Path) -> None:
    """Make an existing file 0600 (a looser one is tightened, with a warning); a file
    this user does not own is warned about."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & 0o077:
        try:
            path.chmod(0o600)
            log.warning("%s was mode %04o: tightened to 0600", path, mode)
        except PermissionError:
            log.warning("%s is mode %04o and not ours to tighten: `chmod 600 %s`", path, mode, path)


def _secret_path(state_dir: Path, rollout_id: str, name: str) -> Path:
    for part in (rollout_id, name):
        if not _NAME.match(part):
            raise ValueError(f"not a safe file name part: {part!r}")
    return state_dir / SECRETS_DIR / f"{rollout_id}.{name}"


def write_private_file(path: Path, data: bytes) -> None:
    """Write `path` 0600, atomically: a reader sees the old content or all of the new, and
    writers at once (overlapping timers) each replace it whole."""
    fd, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")  # 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def save_secret(state_dir: Path, rollout_id: str, name: str, value: str) -> None:
    """Write the secret 0600 (atomically: a reader never sees half of it)."""
    path = _secret_path(state_dir, rollout_id, name)
    private_dir(path.parent, tighten=True)
    write_private_file(path, value.encode())


def load_secret(state_dir: Path, rollout_id: str, name: str) -> str:
    """The secret, or "" when none was saved (or it is gone)."""
    try:
        return _secret_path(state_dir, rollout_id, name).read_text()
    except FileNotFoundError:
        return ""


def forget_secrets(state_dir: Path, rollout_id: str) -> None:
    """Remove every secret of an ended rollout."""
    directory = state_dir / SECRETS_DIR
    if _NAME.match(rollout_id) and directory.is_dir():
        for path in directory.glob(f"{rollout_id}.*"):
            path.unlink(missing_ok=True)
