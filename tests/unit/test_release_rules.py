"""Release rules (pure): version tags, the model artifact, immutable tags."""

from __future__ import annotations

import json

import pytest

from canary.adapters.images import MODEL_SHA_LABEL, REVISION_LABEL, VERSION_LABEL
from canary.adapters.registry import ImageConfig
from canary.release.artifact import ReleaseError, check_artifact, check_version_tag
from canary.release.publish import decide
from models.recipe import build


@pytest.mark.parametrize("tag", ["v1.3.0", "v1.3.0-rc.1", "v10.0.12-beta.2"])
def test_semantic_version_tags_pass(tag):
    check_version_tag(tag)


@pytest.mark.parametrize("tag", ["1.3.0", "v1.3", "v1.3.0.1", "latest", "v1.3.0-", "v1.3.0 "])
def test_other_tags_are_refused_by_name(tag):
    with pytest.raises(ReleaseError, match="is not a semantic version tag"):
        check_version_tag(tag)


def test_the_artifact_must_exist_match_its_digests_and_be_shipped(tmp_path):
    with pytest.raises(ReleaseError, match=str(tmp_path / "build" / "models" / "v1.3.0") + " is missing"):
        check_artifact(tmp_path, "v1.3.0")
    models = tmp_path / "build" / "models"
    directory = build("v1.3.0", models)
    assert check_artifact(tmp_path, "v1.3.0").version == "v1.3.0"
    weights = next(p for p in directory.iterdir() if p.name != "manifest.json")
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(ReleaseError, match="sha256 mismatch"):
        check_artifact(tmp_path, "v1.3.0")
    build("v1.3.0", models, "silent")
    with pytest.raises(ReleaseError, match="shipped: false"):
        check_artifact(tmp_path, "v1.3.0-silent")
    assert check_artifact(tmp_path, "v1.3.0-silent", allow_unshipped=True).shipped is False
    manifest = json.loads((models / "v1.3.0-silent" / "manifest.json").read_text())
    assert manifest["version"] == "v1.3.0-silent"


def labels(version: str = "v1.4.0", model: str = "aaa", revision: str = "r1", image: str = "sha256:i1"
           ) -> ImageConfig:
    return ImageConfig(image, {VERSION_LABEL: version, MODEL_SHA_LABEL: model, REVISION_LABEL: revision})


def test_a_new_tag_is_pushed():
    assert decide("v1.4.0", "reg/tts:v1.4.0", labels(), None) == ("pushed", "")


def test_the_same_image_again_is_a_no_op_and_a_rebuilt_image_is_republished():
    assert decide("v1.4.0", "t", labels(), labels())[0] == "unchanged"
    action, note = decide("v1.4.0", "t", labels(revision="r2", image="sha256:i2"), labels(revision="r1"))
    assert action == "republished" and "r1 → r2" in note
    # same model and revision, another base image: still a different image, pushed
    assert decide("v1.4.0", "t", labels(image="sha256:i3"), labels())[0] == "republished"


def test_other_weights_under_an_existing_tag_are_refused():
    with pytest.raises(ReleaseError, match="reg/tts:v1.4.0 already exists with different content.*bbb.*aaa"):
        decide("v1.4.0", "reg/tts:v1.4.0", labels(model="aaa"), labels(model="bbb"))


def test_an_image_whose_version_label_is_not_the_tag_is_refused():
    with pytest.raises(ReleaseError, match="version label 'v1.3.0', not v1.4.0"):
        decide("v1.4.0", "t", labels(version="v1.3.0"), None)
