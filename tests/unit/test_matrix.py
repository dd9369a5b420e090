"""versions.yaml validation: the real file loads, and every malformed input names line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pybase.core import matrix

VALID = matrix.DEFAULT_PATH.read_text(encoding="utf-8")


def replace(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_shipped_file_is_valid() -> None:
    m = matrix.load()
    assert m.debian.default == "bookworm"
    assert {e.minor for e in m.python} >= {"3.11", "3.12", "3.13", "3.14"}
    built = [t.name for t in m.targets()]
    assert built == ["3.13.15-bookworm-amd64", "3.13.15-bookworm-arm64",
                     "3.13.15-trixie-amd64", "3.13.15-trixie-arm64"]
    assert [t.is_primary_platform for t in m.targets()] == [True, False, True, False]


def test_selectors_narrow_and_unknown_selector_fails() -> None:
    m = matrix.load()
    assert [t.name for t in m.targets(only=["3.13-trixie"])] == [
        "3.13.15-trixie-amd64", "3.13.15-trixie-arm64"]
    assert [t.name for t in m.targets(only=["3.12.13-bookworm-arm64"])] == [
        "3.12.13-bookworm-arm64"]
    on_arm64 = m.targets(only=["linux/arm64"])  # a selector reaches every declared entry
    assert len(on_arm64) == 7 and {t.arch for t in on_arm64} == {"arm64"}
    assert [t.name for t in m.targets(only=["3.13-bookworm-amd64", "3.13-trixie-arm64"])] == [
        "3.13.15-bookworm-amd64", "3.13.15-trixie-arm64"]
    assert len(m.targets(include_all=True)) == 14
    with pytest.raises(matrix.MatrixError, match="'3.9' matches no entry"):
        m.targets(only=["3.9"])


BAD_CASES = {
    "missing field": (
        replace('    sha256: 1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76\n', ""),
        '  - minor: "3.13"',
        r"python\[0\]\.sha256: required field is missing",
    ),
    "wrong type": (
        replace("    build: true", "    build: sometimes"),
        "build: sometimes",
        r"python\[0\]\.build: Input should be a valid boolean",
    ),
    "unknown key (typo)": (
        replace("    build: true", "    biuld: true"),
        "biuld: true",
        r"python\[0\]\.biuld: unknown field \(a typo\?\)",
    ),
    "bad version string": (
        replace('version: "3.13.15"', 'version: "3.13.x"'),
        '"3.13.x"',
        r"python\[0\]\.version: '3\.13\.x' does not have the expected form \(an exact version",
    ),
    "unquoted version read as a number": (
        replace('minor: "3.13"', "minor: 3.13"),
        "minor: 3.13",
        r"python\[0\]\.minor: expected a string, got the number 3\.13; quote it",
    ),
    "patch not matching its minor": (
        replace('version: "3.13.15"', 'version: "3.12.15"'),
        '"3.12.15"',
        r"python\[0\]\.version: '3\.12\.15' is not a 3\.13 release",
    ),
    "sha256 too short": (
        replace("1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76", "1e66a79"),
        "sha256: 1e66a79",
        r"python\[0\]\.sha256: '1e66a79' does not have the expected form \(64 lowercase hex",
    ),
    "sha256 not hex": (
        replace("1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76", "z" * 64),
        "sha256: zzzz",
        r"python\[0\]\.sha256: .*64 lowercase hex",
    ),
    "duplicate entry": (
        replace('  - minor: "3.12"\n    version: "3.12.13"', '  - minor: "3.13"  # again\n    version: "3.13.14"'),
        "# again",
        r"python\[2\]\.minor: python '3\.13' is declared twice \(first at python\[0\]\)",
    ),
    "unknown Debian release": (
        replace("    debian: [bookworm, trixie]\n    build: true", "    debian: [bookworm, buster]\n    build: true"),
        "[bookworm, buster]",
        r"python\[0\]\.debian\[1\]: Input should be 'bullseye', 'bookworm', 'trixie' or 'forky'",
    ),
    "release used but not declared": (
        replace("    trixie: {version: \"13\"}\n", ""),
        "    debian: [bookworm, trixie]",
        r"python\[0\]\.debian\[1\]: release 'trixie' is not declared under debian\.releases",
    ),
    "default release not declared": (
        replace("default: bookworm", "default: forky"),
        "default: forky",
        r"debian\.default: 'forky' is not one of debian\.releases",
    ),
    "empty matrix": (
        VALID[: VALID.index("\npython:\n")] + "\npython: []\n",
        "python: []",
        r"python: List should have at least 1 item",
    ),
    "duplicate mapping key": (
        replace("    build: true", "    build: true\n    build: false"),
        "build: false",
        r"key 'python\[0\]\.build' appears twice",
    ),
    "tab indentation": (
        replace("  name: python-base", "\tname: python-base"),
        "\tname: python-base",
        r"not valid YAML: found character '\\t'",
    ),
    "anchor and alias": (
        replace("    debian: [bookworm, trixie]\n    build: true", "    debian: &both [bookworm, trixie]\n    build: true")
        .replace("    debian: [bookworm, trixie]\n    build: false", "    debian: *both\n    build: false", 1),
        "&both",
        r"YAML anchor 'both' is not allowed here",
    ),
    "not YAML at all": ("{{{ this is : not [ yaml", "{{{", r"not valid YAML"),
    "a list instead of a mapping": (
        "- just\n- a list\n", "- just",
        r"expected a mapping at the top level, got list \['just', 'a list'\]",
    ),
    "empty file": ("# only a comment\n", "# only", r"the file is empty"),
}


@pytest.mark.parametrize("text, needle, message", BAD_CASES.values(), ids=BAD_CASES.keys())
def test_malformed_input_is_rejected_with_file_line_and_field(
    text: str, needle: str, message: str
) -> None:
    with pytest.raises(matrix.MatrixError) as info:
        matrix.parse(text, "versions.yaml")
    error = str(info.value)
    line = line_of(text, needle)
    assert re.search(rf"^versions\.yaml:{line}: .*{message}", error, re.MULTILINE), error


# Each error quotes what was written (issue: `debian.default: bookwurm` never said "bookwurm").
VALUE_CASES = {
    "unknown release": ("default: bookworm", "default: bookwurm", "debian.default", "'bookwurm'"),
    "unknown release as a key": ("    trixie: {", "    trixi: {", "debian.releases.trixi.[key]",
                                 "'trixi'"),
    "not a boolean": ("    build: true", "    build: sometimes", "python[0].build", "'sometimes'"),
    "not a boolean either": ("optimize: true", "optimize: maybe", "cpython.optimize", "'maybe'"),
    "unknown variant": ("[runtime, build, dev]", "[runtime, build, debug]", "variants[2]",
                        "'debug'"),
    "wrong date format": ('date_format: "%Y%m%d"', 'date_format: "%d.%m.%Y"', "tags.date_format",
                          "'%d.%m.%Y'"),
    "empty registry": ("registry: registry.example.com/platform", 'registry: ""',
                       "image.registry", "''"),
    "image name": ("name: python-base", "name: Python Base", "image.name", "'Python Base'"),
    "Debian version": ('bookworm: {version: "12"}', 'bookworm: {version: "twelve"}',
                       "debian.releases.bookworm.version", "'twelve'"),
    "list instead of a string": ("title: Hardened Python base image", "title: [a, b]",
                                 "image.title", "['a', 'b']"),
    "number instead of a list": ("variants: [runtime, build, dev]", "variants: 3", "variants",
                                 "found 3"),
    "runtime missing": ("[runtime, build, dev]", "[build, dev]", "variants",
                        "['build', 'dev'] does not include 'runtime'"),
    "variant twice": ("[runtime, build, dev]", "[runtime, dev, dev]", "variants[2]",
                      "variant 'dev' is listed twice"),
    "platform twice": ("platforms: [linux/amd64, linux/arm64]",
                       "platforms: [linux/amd64, linux/amd64]", "platforms[1]",
                       "platform 'linux/amd64' is listed twice"),
    "unknown platform": ("platforms: [linux/amd64, linux/arm64]",
                         "platforms: [linux/amd64, linux/s390x]", "platforms[1]", "'linux/s390x'"),
    "default release not declared": ("default: bookworm", "default: forky", "debian.default",
                                     "'forky' is not one of debian.releases (bookworm, trixie)"),
    "latest not declared": ('latest: "3.13"', 'latest: "3.10"', "tags.latest", "'3.10'"),
}


@pytest.mark.parametrize("old, new, field, shown", VALUE_CASES.values(), ids=VALUE_CASES.keys())
def test_errors_quote_the_value_found(old: str, new: str, field: str, shown: str) -> None:
    text = replace(old, new)
    with pytest.raises(matrix.MatrixError) as info:
        matrix.parse(text, "versions.yaml")
    prefix = f"versions.yaml:{line_of(text, new)}: {field}: "
    assert [line for line in str(info.value).splitlines() if line.startswith(prefix)], info.value
    assert shown in str(info.value), info.value


def test_long_values_are_shortened() -> None:
    many = ", ".join(f"k{i}: v" for i in range(50))
    text = replace("title: Hardened Python base image", f"title: {{{many}}}")
    with pytest.raises(matrix.MatrixError, match=r"image\.title: .*found \{'k0': 'v', .*\.\.\.$"):
        matrix.parse(text)


def test_load_validates_the_same_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = matrix.Matrix.model_validate
    def counting(data: object) -> matrix.Matrix:
        calls.append("v")
        return real(data)

    monkeypatch.setattr(matrix.Matrix, "model_validate", counting)
    path = tmp_path / "versions.yaml"
    path.write_text(VALID)
    assert matrix.load(path) is matrix.load(path)
    assert len(calls) == 1
    path.write_text(replace('latest: "3.13"', 'latest: "3.12"'))  # an edit is seen at once
    assert matrix.load(path).tags.latest == "3.12" and len(calls) == 2


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(matrix.MatrixError, match=r"nowhere\.yaml: cannot read"):
        matrix.load(tmp_path / "nowhere.yaml")
