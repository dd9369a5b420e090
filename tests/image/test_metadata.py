"""OCI labels, the build-info file, and the image configuration downstream relies on."""

from __future__ import annotations

import json
from typing import Any

from support import MATRIX, Image, docker

from pybase.infra import engine

OCI = "org.opencontainers.image."
REQUIRED = ("version", "revision", "created", "source", "title", "description", "licenses",
            "vendor", "base.name", "base.digest")


def test_oci_labels(image: Image) -> None:
    labels = image.inspect()["Config"]["Labels"]
    for key in REQUIRED:
        assert labels.get(OCI + key), f"label {OCI + key} missing or empty"
    assert labels[OCI + "version"].startswith(f"{image.target.key}-")
    assert labels[OCI + "base.name"] == image.target.upstream_image
    assert labels[OCI + "base.digest"] == engine.image_id(image.target.upstream_image)
    assert labels[OCI + "source"] == MATRIX.image.source


def test_build_info_matches_labels(host: Any, image: Image) -> None:
    info = json.loads(host.file("/usr/local/share/python-base/build-info.json").content_string)
    labels = image.inspect()["Config"]["Labels"]
    release_number = MATRIX.debian.releases[image.target.release].version
    assert info["python"] == image.target.python.version
    assert info["debian"].split(".")[0] == release_number
    assert info["variant"] == image.variant
    assert info["git_revision"] == labels[OCI + "revision"]
    assert info["upstream_digest"] == labels[OCI + "base.digest"]
    assert labels[OCI + "created"] == f"{info['build_date']}T00:00:00Z"


def test_build_info_line_only_when_asked(image: Image) -> None:
    quiet = docker("run", "--rm", image.ref, "true")
    assert quiet.stdout == "" and quiet.stderr == ""
    loud = docker("run", "--rm", "-e", "PYTHON_BASE_LOG_BUILD_INFO=1", image.ref, "true")
    line = loud.stderr.strip()
    assert line.startswith("python-base: {") and json.loads(line.split(" ", 1)[1])["variant"]


def test_entrypoint_cmd_and_healthcheck(image: Image) -> None:
    config = image.inspect()["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/bin/python-base-entrypoint"]
    assert config["Cmd"] == ["python3"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/python-base-healthcheck"]
    assert config["WorkingDir"] == "/app"


def test_no_secrets_or_build_leftovers_in_history(image: Image) -> None:
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image.ref).stdout
    for needle in ("BEGIN CERTIFICATE", "PRIVATE KEY", "build-ca,src"):
        assert needle not in history
