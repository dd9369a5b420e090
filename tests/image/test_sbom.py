"""The SBOM shipped in every image names what a scanner needs: the Debian packages, the Python
distributions, the CPython compiled from source (purl, CPE, source hash) and our own files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from support import Image, docker

from pybase.build import inventory, sbom

pytestmark = pytest.mark.image

FILES = Path(__file__).resolve().parents[2] / "images" / "python-base" / "files"
OWN_FILES = {"/usr/local/bin/python-base-entrypoint": FILES / "python-base-entrypoint",
             "/usr/local/bin/python-base-healthcheck": FILES / "python-base-healthcheck",
             "/usr/local/lib/python-base/file_secrets.py": FILES / "file_secrets.py"}


def shipped(image: Image) -> dict[str, Any]:
    text = docker("run", "--rm", "--entrypoint", "cat", image.ref, sbom.SBOM_PATH_IN_IMAGE).stdout
    document: dict[str, Any] = json.loads(text)
    return document


def test_cpython_is_a_component_scanners_can_match(image: Image) -> None:
    document = shipped(image)
    sbom.validate(document)
    version = image.target.python.version
    url = f"https://www.python.org/ftp/python/{version}/Python-{version}.tar.xz"
    found = [c for c in document["components"]
             if c.get("purl", "").startswith("pkg:generic/python@")]
    assert len(found) == 1, found
    cpython = found[0]
    assert cpython["purl"] == f"pkg:generic/python@{version}?download_url={url}"
    assert cpython["version"] == version
    assert cpython["cpe"] == f"cpe:2.3:a:python:python:{version}:*:*:*:*:*:*:*"
    assert cpython["hashes"] == [{"alg": "SHA-256", "content": image.target.python.sha256}]
    assert [(r["type"], r["url"]) for r in cpython["externalReferences"]] == [
        ("source-distribution", url)]
    top = document["dependencies"][0]
    assert top["ref"] == sbom.IMAGE_BOM_REF and cpython["bom-ref"] in top["dependsOn"]


def test_our_files_are_listed_with_the_hash_of_what_we_ship(image: Image) -> None:
    files = {c["name"]: c["hashes"] for c in shipped(image)["components"] if c["type"] == "file"}
    assert files == {
        path: [{"alg": "SHA-256", "content": hashlib.sha256(source.read_bytes()).hexdigest()}]
        for path, source in OWN_FILES.items()}


@pytest.mark.variants("runtime")
def test_the_sbom_is_the_inventory_and_the_same_for_an_unchanged_image(
        image: Image, tmp_path: Path) -> None:
    inv = inventory.inventory(image.ref)
    assert inv.errors == [] and inv.cpython is not None
    assert inv.cpython.version == image.target.python.version
    first = sbom.generate(image.ref, inv, tmp_path / "first").path.read_bytes()
    again = sbom.generate(image.ref, out_dir=tmp_path / "again").path.read_bytes()
    assert first == again
    document = json.loads(first)
    os_packages, _, _ = sbom.counts(document)
    assert os_packages == len(inv.debian_packages)
    properties = {p["name"]: p["value"] for p in document["metadata"]["properties"]}
    assert properties["python-base:image.id"] == inv.image_id
