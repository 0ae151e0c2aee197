from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.model_dir import MANIFEST_NAME, ModelDirError, read_manifest, verify_model_dir, write_manifest

FIELDS = {"name": "voxfleet-demo", "version": "v1.3.0", "engine": "demo", "sample_rate": 44_100}


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A small, valid model directory with a nested file."""
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01weights")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "vocab.txt").write_text("a\nb\n")
    write_manifest(tmp_path, FIELDS)
    return tmp_path


def put_manifest(directory: Path, body) -> Path:
    path = directory / MANIFEST_NAME
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def error_of(fn, directory: Path) -> str:
    with pytest.raises(ModelDirError) as info:
        fn(directory)
    return str(info.value)


def test_a_written_directory_verifies(model):
    manifest = verify_model_dir(model)
    assert (manifest.name, manifest.version, manifest.engine, manifest.sample_rate) == \
        ("voxfleet-demo", "v1.3.0", "demo", 44_100)
    assert manifest.voices == ("default",)
    assert manifest.directory == model


def test_write_manifest_recurses_with_posix_names_and_returns_the_model_sha(model):
    assert set(read_manifest(model).files) == {"weights.bin", "sub/deeper/vocab.txt"}
    assert write_manifest(model, FIELDS) == read_manifest(model).sha256


@pytest.mark.parametrize("changed", ["weights.bin", "sub/deeper/vocab.txt"])
def test_the_model_sha_changes_when_any_file_changes(model, changed):
    before = read_manifest(model).sha256
    (model / changed).write_bytes(b"changed")
    assert write_manifest(model, FIELDS) != before


def test_the_recipe_models_verify(model_dirs):
    assert verify_model_dir(model_dirs["v1.3.0"]).version == "v1.3.0"


def test_a_missing_directory_is_named(tmp_path):
    missing = tmp_path / "nope"
    assert str(missing) in error_of(read_manifest, missing)


def test_a_missing_manifest_is_named(tmp_path):
    assert str(tmp_path / MANIFEST_NAME) in error_of(read_manifest, tmp_path)


@pytest.mark.parametrize("body", ["{not json", "", '["a list"]'])
def test_a_manifest_that_is_not_a_json_object_is_named(tmp_path, body):
    path = put_manifest(tmp_path, body)
    assert str(path) in error_of(read_manifest, tmp_path)


@pytest.mark.parametrize("missing", [("name",), ("version", "files"), ("engine", "sample_rate")])
def test_missing_fields_are_named(tmp_path, missing):
    body = {k: v for k, v in dict(FIELDS, files={}).items() if k not in missing}
    path = put_manifest(tmp_path, body)
    message = error_of(read_manifest, tmp_path)
    assert str(path) in message
    assert all(field in message for field in missing)


@pytest.mark.parametrize("version", [
    "1.3.0", "v1.3", "latest", "v1.3.0-", "v1.3.0 ", 130,
    "v1.3.0\n",
])
def test_a_bad_version_is_refused(tmp_path, version):
    path = put_manifest(tmp_path, dict(FIELDS, version=version, files={}))
    message = error_of(read_manifest, tmp_path)
    assert str(path) in message and "version" in message


@pytest.mark.parametrize("name", ["../x", "sub/../../x", "/etc/passwd"])
def test_a_file_escaping_the_directory_is_refused(tmp_path, name):
    path = put_manifest(tmp_path, dict(FIELDS, files={name: "0" * 64}))
    message = error_of(read_manifest, tmp_path)
    assert str(path) in message and name in message


def test_a_missing_listed_file_is_named(model):
    (model / "sub" / "deeper" / "vocab.txt").unlink()
    read_manifest(model)  # parsing alone does not look at the files
    assert str(model / "sub" / "deeper" / "vocab.txt") in error_of(verify_model_dir, model)


def test_a_sha256_mismatch_names_the_file(model):
    (model / "weights.bin").write_bytes(b"tampered")
    message = error_of(verify_model_dir, model)
    assert str(model / "weights.bin") in message and "sha256" in message
