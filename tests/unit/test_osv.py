"""OSV loading, matching and the local OSV endpoint.

tests/unit/data/osv holds invented records (ids PYBASE-TEST-*, see its README) in the PyPA
database's layout; inline records cover the rest of the range semantics. The one test that
loads a real advisory snapshot runs only when $PYTHON_BASE_ADVISORY_DB (or its former name,
$PYBASE_ADVISORY_DB) names one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pybase.core import settings
from pybase.verify.osv import OsvDatabase, OsvError, fix_versions, load_database
from pybase.verify.osv_server import serve

DATA = Path(__file__).parent / "data" / "osv"


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


@pytest.fixture(scope="module")
def db() -> OsvDatabase:
    return load_database(DATA)


@pytest.fixture(scope="module")
def full_db() -> OsvDatabase:
    # Real data is the machine's to provide (.ci/run sets the variable when it has a snapshot);
    # a variable naming a file that is not there is a mistake, not a reason to skip.
    configured = settings.advisory_db()
    if configured is None:
        pytest.skip(f"${settings.ADVISORY_DB} is not set: no real advisory snapshot to load")
    name, value = configured
    if not Path(value).exists():
        pytest.fail(f"${name}={value}: no such file or directory", pytrace=False)
    return load_database(Path(value))


def record(
    events: list[dict[str, str]] | None = None,
    versions: list[str] | None = None,
    range_type: str = "ECOSYSTEM",
    name: str = "demo",
    ecosystem: str = "PyPI",
    rid: str = "TEST-1",
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if events is not None:
        affected["ranges"] = [{"type": range_type, "events": events}]
    if versions is not None:
        affected["versions"] = versions
    return {"id": rid, "affected": [affected]}


def affected(rec: dict[str, Any], version: str, name: str = "demo") -> bool:
    return bool(OsvDatabase.from_records([rec]).query(name, version))


# --- the records in tests/unit/data/osv -------------------------------------------------------


def test_pip_23_2_is_affected_and_23_3_is_fixed(db: OsvDatabase) -> None:
    [hit] = db.query("pip", "23.2")
    assert hit["id"] == "PYBASE-TEST-0001"
    assert hit["aliases"] == ["PYBASE-TEST-ALIAS-0001"]
    assert fix_versions(hit, "pip", "23.2") == ["23.3"]
    assert db.query("pip", "23.3") == []
    assert ids(db.query("pip", "0.2")) == ["PYBASE-TEST-0001"]


def test_two_unsorted_intervals(db: OsvDatabase) -> None:
    # The record's events are [2.0.0, 2.0.6) then [0, 1.26.17): order must not matter.
    [hit] = db.query("urllib3", "1.26.5")
    assert hit["id"] == "PYBASE-TEST-0002"
    assert fix_versions(hit, "urllib3", "1.26.5") == ["1.26.17", "2.0.6"]
    assert fix_versions(hit, "urllib3", "2.0.3") == ["2.0.6"]  # 1.26.17 is no upgrade
    for version in ("1.26.16", "2.0.0", "2.0.5"):
        assert ids(db.query("urllib3", version)) == ["PYBASE-TEST-0002"], version
    for version in ("1.26.17", "1.26.18", "2.0.6", "2.2.3"):
        assert db.query("urllib3", version) == [], version


def test_last_affected_is_inclusive(db: OsvDatabase) -> None:
    [hit] = db.query("py", "1.11.0")  # introduced 0, last_affected 1.11.0
    assert hit["id"] == "PYBASE-TEST-0003"
    assert fix_versions(hit, "py", "1.11.0") == []  # no fix was ever released
    assert db.query("py", "1.11.1") == []
    assert ids(db.query("py", "0.8.0-alpha2")) == ["PYBASE-TEST-0003"]


def test_git_only_record_matches_its_versions_list(db: OsvDatabase) -> None:
    assert ids(db.query("requests", "2.31.0")) == ["PYBASE-TEST-0007"]  # read from JSON
    assert db.query("requests", "2.30.0") == [] and db.query("requests", "2.32.0") == []


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("django", "1.8.1", ["PYBASE-TEST-0004"]),
        ("Django", "1.8.1", ["PYBASE-TEST-0004"]),
        ("DJANGO", "1.8.0", ["PYBASE-TEST-0004"]),  # PEP 440 equal to the listed "1.8"
        ("Django", "1.7.11", []),  # before `introduced`
        ("django", "1.8.2", []),
        ("jw.util", "2.2", ["PYBASE-TEST-0005"]),  # the record spells the name jw.util
        ("jw-util", "2.2", ["PYBASE-TEST-0005"]),
        ("JW_Util", "2.0a3", ["PYBASE-TEST-0005"]),
        ("jw-util", "2.3", []),
    ],
)
def test_names_are_pep_503_normalised(
    db: OsvDatabase, name: str, version: str, expected: list[str]
) -> None:
    assert ids(db.query(name, version)) == expected


def test_withdrawn_records_are_skipped(db: OsvDatabase) -> None:
    assert len(db) == 6  # seven record files, PYBASE-TEST-0006 (loguru) is withdrawn
    assert db.query("loguru", "0.1") == []
    withdrawn = record([{"introduced": "0"}]) | {"withdrawn": "2022-02-22T16:15:07Z"}
    assert len(OsvDatabase.from_records([withdrawn])) == 0


def test_records_keep_timestamps_as_json_strings(db: OsvDatabase) -> None:
    [hit] = db.query("pip", "23.2")
    assert hit["modified"] == "2024-01-02T03:04:05.678Z"
    json.dumps(hit)  # must not raise: the server sends these verbatim


def test_query_returns_copies(db: OsvDatabase) -> None:
    db.query("pip", "23.2")[0]["affected"].clear()
    assert fix_versions(db.query("pip", "23.2")[0], "pip", "23.2") == ["23.3"]


# --- OSV range semantics on synthetic records ---------------------------------------------

TWO_INTERVALS = [
    {"introduced": "1.0"},
    {"fixed": "1.2"},
    {"introduced": "2.0"},
    {"fixed": "2.1"},
]


@pytest.mark.parametrize(
    ("events", "version", "expected"),
    [
        ([{"introduced": "0"}], "0.0.1.dev0", True),  # "0" precedes even dev releases
        ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0rc1", True),
        ([{"introduced": "0"}, {"fixed": "1.0"}], "1.0", False),  # fixed is exclusive
        ([{"introduced": "1.0"}], "0.9", False),
        ([{"introduced": "1.0"}], "1.0", True),  # introduced is inclusive
        (TWO_INTERVALS, "0.9", False),
        (TWO_INTERVALS, "1.1.5", True),
        (TWO_INTERVALS, "1.2", False),
        (TWO_INTERVALS, "1.9", False),
        (TWO_INTERVALS, "2.0.9", True),
        (TWO_INTERVALS, "2.1", False),
        (TWO_INTERVALS[::-1], "1.1.5", True),  # events are sorted before evaluation
        (TWO_INTERVALS[::-1], "1.9", False),
        ([{"introduced": "0"}, {"last_affected": "1.5"}], "1.5", True),
        ([{"introduced": "0"}, {"last_affected": "1.5"}], "1.5.post1", False),
        ([{"introduced": "1.0"}, {"limit": "2.0"}], "1.9", True),
        ([{"introduced": "1.0"}, {"limit": "2.0"}], "2.0", False),
        ([{"introduced": "1.0"}, {"limit": "*"}], "9.0", True),
        # Unparseable bounds never narrow the range (fail closed):
        ([{"introduced": "0"}, {"fixed": "2019-09-12"}], "9.0", True),
        ([{"introduced": "not a version"}, {"fixed": "2.0"}], "0.1", True),
        ([{"introduced": "not a version"}, {"fixed": "2.0"}], "2.0", False),
        ([{"introduced": "1.0"}, {"limit": "not a version"}], "9.0", True),
        # A queried version that is not PEP 440 cannot be placed in a range.
        ([{"introduced": "0"}], "not-a-version", False),
    ],
)
def test_ecosystem_range_semantics(
    events: list[dict[str, str]], version: str, expected: bool
) -> None:
    assert affected(record(events), version) is expected


def test_explicit_versions_list() -> None:
    rec = record(versions=["1.0", "1.2", "0.8.0-alpha2"])
    assert affected(rec, "1.0") and affected(rec, "1.0.0") and affected(rec, "1.2")
    assert not affected(rec, "1.1")
    assert affected(rec, "0.8.0-alpha2")  # literal match for non-PEP 440 list entries
    # The list adds to the ranges: either one is enough.
    both = record([{"introduced": "2.0"}], versions=["1.0"])
    assert affected(both, "1.0") and affected(both, "3.0") and not affected(both, "1.5")


def test_several_ranges_and_affected_entries() -> None:
    rec = {
        "id": "TEST-2",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]},
                    {"type": "ECOSYSTEM", "events": [{"introduced": "2.0"}, {"fixed": "2.3"}]},
                ],
            },
            {"package": {"ecosystem": "PyPI", "name": "other"}, "versions": ["5.0"]},
        ],
    }
    db = OsvDatabase.from_records([rec])
    assert ids(db.query("demo", "1.0")) == ["TEST-2"]
    assert ids(db.query("demo", "2.2")) == ["TEST-2"]
    assert db.query("demo", "1.5") == [] and db.query("demo", "5.0") == []
    assert ids(db.query("other", "5.0")) == ["TEST-2"]
    # Only the range containing the version contributes its fix.
    assert fix_versions(rec, "demo", "1.0") == ["1.1"]
    assert fix_versions(rec, "demo", "2.2") == ["2.3"]
    assert fix_versions(rec, "other", "5.0") == []


def test_git_semver_ranges_and_other_ecosystems_are_ignored() -> None:
    assert not affected(record([{"introduced": "0"}], range_type="GIT"), "1.0")
    assert not affected(record([{"introduced": "0"}], range_type="SEMVER"), "1.0")
    npm = record([{"introduced": "0"}], ecosystem="npm")
    assert len(OsvDatabase.from_records([npm]).query("demo", "1.0")) == 0


# --- loading --------------------------------------------------------------------------------


def test_loads_directory_zip_and_tar_gz_alike(tmp_path: Path) -> None:
    files = sorted(DATA.iterdir())
    zipped, tarred = tmp_path / "db.zip", tmp_path / "db.tgz"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in files:
            archive.write(file, f"advisories/vulns/x/{file.name}")
    with tarfile.open(tarred, "w:gz") as archive:
        archive.add(DATA, arcname="advisories/vulns")
    as_json = tmp_path / "json"
    (as_json / "nested").mkdir(parents=True)
    for rec in load_database(DATA).query("pip", "23.2"):
        (as_json / "nested" / "pip.json").write_text(json.dumps(rec))

    expected = [f"PYBASE-TEST-000{n}" for n in (2, 3, 4, 5, 7)]
    for path in (DATA, zipped, tarred):
        db = load_database(path)
        assert len(db) == 6, path
        found = ids(db.query("django", "1.8") + db.query("jw.util", "1.0a"))
        found += ids(db.query("py", "1.0.0") + db.query("urllib3", "1.26.5"))
        found += ids(db.query("requests", "2.31.0"))
        assert sorted(found) == expected, path
    assert ids(load_database(as_json).query("pip", "23.2")) == ["PYBASE-TEST-0001"]


def _tar_with(tmp_path: Path, member: str, content: bytes) -> Path:
    path = tmp_path / "bad.tar.gz"
    source = tmp_path / "member"
    source.write_bytes(content)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(source, arcname=member)
    return path


@pytest.mark.parametrize(
    ("member", "content", "expected"),
    [
        ("vulns/a/X.yaml", b"id: [unclosed\n", "not valid YAML"),
        ("vulns/a/X.json", b"{not json", "not valid JSON"),
        ("vulns/a/X.yaml", b"- just\n- a list\n", "top level is list"),
        ("vulns/a/X.yaml", b"details: no id here\n", "id: Field required"),
        ("vulns/a/X.yaml", b"id: X\naffected: 3\n", "affected"),
        # Unquoted in YAML, 1.10 is the float 1.1: refuse instead of matching the wrong version.
        ("vulns/a/X.yaml", b"id: X\naffected:\n- versions: [1.10]\n", "valid string"),
    ],
)
def test_bad_record_names_archive_and_member(
    tmp_path: Path, member: str, content: bytes, expected: str
) -> None:
    path = _tar_with(tmp_path, member, content)
    with pytest.raises(OsvError) as err:
        load_database(path)
    assert f"{path} (member {member})" in str(err.value)
    assert expected in str(err.value)


def test_bad_paths_and_archives(tmp_path: Path) -> None:
    with pytest.raises(OsvError, match="not found; expected an OSV directory"):
        load_database(tmp_path / "missing.tar.gz")
    (tmp_path / "db.txt").write_text("x")
    with pytest.raises(OsvError, match="unsupported file type"):
        load_database(tmp_path / "db.txt")
    (tmp_path / "db.zip").write_text("not a zip")
    with pytest.raises(OsvError, match="db.zip: unreadable zip"):
        load_database(tmp_path / "db.zip")
    (tmp_path / "db.tgz").write_text("not gzip")
    with pytest.raises(OsvError, match="db.tgz: unreadable gzip tar"):
        load_database(tmp_path / "db.tgz")


def test_duplicate_ids_are_rejected(tmp_path: Path) -> None:
    for name in ("a.yaml", "b.yml"):
        (tmp_path / name).write_text("id: PYBASE-TEST-1\n")
    with pytest.raises(OsvError, match=r"b\.yml: duplicate advisory id PYBASE-TEST-1, already"):
        load_database(tmp_path)


def test_full_pypa_snapshot_loads(full_db: OsvDatabase) -> None:
    # The PyPA snapshot of 2024-10-10: 2,661 record files, 10 of them withdrawn.
    assert len(full_db) >= 2600
    assert "PYSEC-2023-228" in ids(full_db.query("pip", "23.2"))
    assert "PYSEC-2023-192" in ids(full_db.query("urllib3", "1.26.5"))
    # PYSEC-2019-125 says `fixed: 2019-09-12`, not a version: it fails closed.
    assert "PYSEC-2019-125" in ids(full_db.query("steam", "1.4.4"))


# --- the local OSV endpoint -----------------------------------------------------------------

# urllib would route 127.0.0.1 through an HTTP(S)_PROXY from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _call(url: str, body: bytes | None, method: str = "POST") -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with _DIRECT.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def _query(name: str, version: str, ecosystem: str = "PyPI") -> bytes:
    return json.dumps(
        {"package": {"name": name, "ecosystem": ecosystem}, "version": version}
    ).encode()


def test_server_answers_like_the_osv_api(db: OsvDatabase) -> None:
    bad_fix = record([{"introduced": "0"}, {"fixed": "2019-09-12"}, {"fixed": "3.0"}])
    kept = db.query("pip", "23.2") + db.query("jw.util", "1.0")
    served = OsvDatabase.from_records([*kept, bad_fix])
    with serve(served) as url:
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1/query")
        status, body = _call(url, _query("pip", "23.2"))
        assert status == 200 and ids(body["vulns"]) == ["PYBASE-TEST-0001"]
        assert _call(url, _query("pip", "23.3")) == (200, {})
        assert _call(url, _query("pip", "23.2", ecosystem="npm")) == (200, {})
        # Shaped for pip-audit: canonical names, no unparseable fixed versions.
        _, body = _call(url, _query("jw-util", "1.0"))
        assert body["vulns"][0]["affected"][0]["package"]["name"] == "jw-util"
        _, body = _call(url, _query("demo", "2.0"))
        assert body["vulns"][0]["affected"][0]["ranges"][0]["events"] == [
            {"introduced": "0"},
            {"fixed": "3.0"},
        ]

        for bad in (b"{not json", b"[]", b'{"package": {"name": "pip"}, "version": "1"}'):
            status, body = _call(url, bad)
            assert status == 400 and "error" in body, bad
        base = url.removesuffix("/v1/query")
        assert _call(base + "/v1/querybatch", b"{}")[0] == 404
        assert _call(base + "/nope", None, method="GET")[0] == 404
        assert _call(url, None, method="GET")[0] == 405


def _pip_audit(url: str, requirements: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("pip-audit", path=str(Path(sys.executable).parent))
    assert exe, f"pip-audit is not installed next to {sys.executable}"
    req = tmp_path / "requirements.txt"
    req.write_text(requirements)
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1"
    cmd = [exe, "--strict", "-s", "osv", "--osv-url", url, "-r", str(req), "--no-deps",
           "--disable-pip", "--cache-dir", str(tmp_path / "cache"), "--progress-spinner",
           "off", "-f", "json"]  # fmt: skip
    # check=False: the exit code is the verdict under test.
    return subprocess.run(cmd, check=False, capture_output=True, text=True, env=env, timeout=120)


def test_pip_audit_end_to_end(db: OsvDatabase, tmp_path: Path) -> None:
    with serve(db) as url:
        found = _pip_audit(url, "pip==23.2\nurllib3==1.26.5\n", tmp_path)
        clean = _pip_audit(url, "pip==23.3\npyyaml==6.0.3\n", tmp_path)
    assert found.returncode == 1, found.stderr
    report = {d["name"]: d["vulns"] for d in json.loads(found.stdout)["dependencies"]}
    assert [(v["id"], v["fix_versions"]) for v in report["pip"]] == [("PYBASE-TEST-0001", ["23.3"])]
    assert report["urllib3"][0]["fix_versions"] == ["1.26.17", "2.0.6"]
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert all(not d["vulns"] for d in json.loads(clean.stdout)["dependencies"])
