"""Sign a published digest and attest what it is, the cosign way, with our key.

- `sha256-<hex>.sig`: the signature of the digest (verify.trust's simple-signing payload);
- `sha256-<hex>.att`: three DSSE-signed in-toto statements about the digest:
  - PREDICATE_SBOM: the CycloneDX SBOM shipped in the image (the same document);
  - PREDICATE_PROVENANCE: SLSA provenance v1: who built it (the GitLab job, or this host), from
    what (versions.yaml's entry, the git revision, CPython's source sha256, the Debian archive
    state and base, the compiled tree's key) and how (the build parameters);
  - PREDICATE_GATES: ours (README, "Trust"): the test record and the audit record that let it
    be published.

An index over several platforms' images gets a signature only: its images carry the
attestations. Nothing is attached twice: publisher writes only for a digest that does not
verify yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pybase.build import sbom
from pybase.core import label, paths, settings
from pybase.core.matrix import Target, Variant
from pybase.infra import engine, oci, registry
from pybase.publish import PublishError
from pybase.publish.signing import Signer
from pybase.verify import gates, trust

PREDICATE_SBOM, PREDICATE_PROVENANCE, PREDICATE_GATES = trust.REQUIRED_PREDICATES
BUILD_TYPE = "https://python-base.dev/build/v1"


@dataclass(frozen=True)
class Evidence:
    """What the attestations of one image say, gathered before anything is written."""

    sbom: Any
    provenance: dict[str, Any]
    gates: dict[str, Any]


def _builder() -> dict[str, Any]:
    job = os.environ.get("CI_JOB_URL")
    return {"id": job} if job else {"id": f"local:{socket.gethostname()}"}


def gather(ref: str, image_id: str, target: Target, variant: Variant, test_records: Path,
           audit_records: Path) -> Evidence:
    """The SBOM, provenance and gate records of the image `ref` (local tag) has as `image_id`."""
    found = engine.inspect(image_id)
    if found is None:
        raise PublishError(f"{image_id[:19]}: not in the engine: nothing to attest")
    labels = found.labels
    upstream = engine.image_labels(target.upstream_image) or {}
    debian = engine.image_labels(target.debian_image) or {}
    name = paths.report_name(ref)
    records: dict[str, Any] = {}
    for kind, directory in (("test", test_records), ("audit", audit_records)):
        path = directory / f"{name}.json"
        try:
            records[kind] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PublishError(f"{path}: the {kind} record to attest is unreadable: {exc}"
                               ) from None
    provenance = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "versions.yaml": target.python.model_dump(mode="json"),
                "release": target.release,
                "variant": variant,
            },
            "internalParameters": {
                "os_upgrade_stamp": settings.get(settings.OS_UPGRADE_STAMP) or "build day",
                "created": labels.get(label.CREATED, ""),
            },
            "resolvedDependencies": [
                {"uri": f"git+{labels.get(label.SOURCE, '')}",
                 "digest": {"gitCommit": labels.get(label.REVISION, "")}},
                {"uri": f"https://www.python.org/ftp/python/{target.python.version}/"
                        f"Python-{target.python.version}.tar.xz",
                 "digest": {"sha256": target.python.sha256}},
                {"uri": f"oci:{target.upstream_image}",
                 "digest": {"sha256": labels.get(label.BASE_DIGEST, "").removeprefix("sha256:")},
                 "annotations": {"cpython_tree": upstream.get(label.CPYTHON_TREE, "")}},
                {"uri": f"oci:{target.debian_image}",
                 "annotations": {"debian_archive": debian.get(label.ARCHIVE, ""),
                                 "recipe": debian.get(label.RECIPE, "")}},
            ],
        },
        "runDetails": {
            "builder": _builder(),
            "metadata": {"invocationId": os.environ.get("CI_PIPELINE_URL", ""),
                         "finishedOn": gates.now()},
        },
    }
    junit = test_records.parents[1] / "junit.xml"  # the test session's report beside the gates
    if junit.is_file():
        records["junit_sha256"] = hashlib.sha256(junit.read_bytes()).hexdigest()
    return Evidence(json.loads(sbom.shipped(image_id)), provenance, records)


def attest(session: registry.Session, signer: Signer, digest: str, evidence: Evidence) -> None:
    """Write the attestations of `digest` (replacing what that tag held). Before sign(): a
    digest with a signature has its attestations."""
    name = session.repository.name
    statements = [(PREDICATE_SBOM, evidence.sbom), (PREDICATE_PROVENANCE, evidence.provenance),
                  (PREDICATE_GATES, evidence.gates)]
    session.put_artifact(trust.attachment_tag(digest, "att"), [
        oci.ArtifactLayer(
            trust.DSSE_ENVELOPE,
            json.dumps(signer.envelope(trust.statement(digest, name, kind, predicate)),
                       separators=(",", ":")).encode(),
            {trust.SIGNATURE_ANNOTATION: "", trust.PREDICATE_ANNOTATION: kind})
        for kind, predicate in statements])


def sign(session: registry.Session, signer: Signer, digest: str) -> None:
    """Write the signature of `digest` (an image, or an index over the platforms' images)."""
    payload = trust.simple_signing_payload(session.repository.name, digest)
    session.put_artifact(trust.attachment_tag(digest, "sig"), [oci.ArtifactLayer(
        trust.SIMPLE_SIGNING, payload, {trust.SIGNATURE_ANNOTATION: signer.sign(payload)})])
