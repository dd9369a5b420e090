"""Test-suite time per image, from the JUnit report `nox -s test` writes (reports/junit.xml).

Image tests carry the image in their id, e.g. `test_user[3.13.15-bookworm-dev]`; everything else
(unit tests, tests of the tooling) is counted apart.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from pybase.core import paths

REPORT = paths.REPORTS / "junit.xml"
NOT_AN_IMAGE = "not image-specific"


@dataclass(frozen=True)
class TestTimes:
    per_image: dict[str, float]  # "3.13.15-bookworm-dev" (runtime: no suffix) -> seconds
    total: float
    tests: int


def image_of(name: str, images: Collection[str]) -> str:
    """The image a test ran against: the longest of `images` that stands as whole `-`-separated
    words in the test's parameter id (`[docker-3.13.15-bookworm-dev]`). Unit tests whose
    parameters merely look like a version (`[3.12.13-trixie-...]`) name no built image."""
    params = name[name.find("[") + 1:-1] if name.endswith("]") and "[" in name else ""
    words = f"-{params}-"
    found = [image for image in images if f"-{image}-" in words]
    return max(found, key=len) if found else NOT_AN_IMAGE


def parse(text: str, images: Collection[str]) -> TestTimes:
    root = ElementTree.fromstring(text)
    per_image: dict[str, float] = {}
    count = 0
    for case in root.iter("testcase"):
        seconds = float(case.get("time") or 0)
        image = image_of(case.get("name") or "", images)
        per_image[image] = per_image.get(image, 0.0) + seconds
        count += 1
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = sum(float(s.get("time") or 0) for s in suites)
    return TestTimes(dict(sorted(per_image.items())), total, count)


def read(images: Collection[str], path: Path = REPORT) -> TestTimes | None:
    """None when there is no report: the bench says so instead of inventing a figure."""
    return parse(path.read_text(encoding="utf-8"), images) if path.is_file() else None
