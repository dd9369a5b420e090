"""What a consumer checks: signatures and attestations in cosign's formats, made with our key pair
(ECDSA P-256, SHA-256; no Fulcio, no Rekor), read back from the registry and verified offline.

- A signature (`sha256-<hex>.sig` tag): an OCI manifest whose layer is a "simple signing"
  payload naming the image digest, its ECDSA signature in the layer annotation
  `dev.cosignproject.cosign/signature` (base64 of the DER signature over the payload bytes).
- An attestation (`sha256-<hex>.att` tag): an OCI manifest whose layers are DSSE envelopes of
  in-toto statements; the signature covers DSSE's pre-authentication encoding (pae()).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pybase.build import sbom
from pybase.core import paths
from pybase.core.errors import PybaseError
from pybase.infra import registry

PUBLIC_KEY = paths.REPO / "keys" / "python-base.pub"  # committed; consumers verify with it
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SIGNATURE_TYPE = "cosign container image signature"


class TrustError(PybaseError):
    """A key could not be read, or a signature or attestation does not hold."""


def attachment_tag(digest: str, kind: str) -> str:
    """`sha256:ab…` -> `sha256-ab….sig` (kind `sig`) or `.att`: where cosign keeps them."""
    algorithm, _, hexdigest = digest.partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64:
        raise TrustError(f"{digest!r} is not a sha256 manifest digest")
    return f"sha256-{hexdigest}.{kind}"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what an envelope's signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise TrustError(f"{path}: cannot read the public key: {exc.strerror}") from None
    except ValueError:
        raise TrustError(f"{path}: not a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise TrustError(f"{path}: not an ECDSA P-256 public key")
    return key


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def valid(key: ec.EllipticCurvePublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), message,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def simple_signing_payload(reference: str, digest: str) -> bytes:
    """The payload a `.sig` layer carries: the image digest and the repository it is for."""
    return json.dumps({
        "critical": {"identity": {"docker-reference": reference},
                      "image": {"docker-manifest-digest": digest},
                      "type": SIGNATURE_TYPE},
        "optional": None,
    }, separators=(",", ":")).encode()


def statement(digest: str, name: str, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto statement about the image `digest` (subject name: its repository)."""
    return json.dumps({
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Checked:
    """The outcome of verifying one image: what held, and every problem found."""

    digest: str
    signatures: int                     # valid signatures by the key
    attestations: dict[str, Any]        # predicate type -> predicate, of valid envelopes
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.signatures > 0 and not self.problems


def check_signature_layer(key: ec.EllipticCurvePublicKey, digest: str, repository: str,
                          payload: bytes, signature_b64: str) -> str | None:
    """None when this `.sig` layer is a valid signature of `digest` for `repository`."""
    if not valid(key, signature_b64, payload):
        return "a signature does not verify with the key"
    try:
        critical = json.loads(payload)["critical"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        signed_repo = critical["identity"]["docker-reference"]
    except (ValueError, KeyError, TypeError):
        return "a signed payload is not a simple-signing payload"
    if signed_digest != digest:
        return f"a valid signature is for {signed_digest}, not {digest}"
    if signed_repo != repository:
        return f"a valid signature names {signed_repo}, not {repository}"
    return None


def check_envelope(key: ec.EllipticCurvePublicKey, digest: str,
                   envelope: dict[str, Any]) -> tuple[str, Any] | str:
    """(predicate type, predicate) of a valid DSSE envelope about `digest`, else the problem."""
    try:
        payload_type = str(envelope["payloadType"])
        body = base64.b64decode(envelope["payload"], validate=True)
        signatures = [str(s["sig"]) for s in envelope["signatures"]]
    except (KeyError, TypeError, ValueError):
        return "an attestation layer is not a DSSE envelope"
    if payload_type != IN_TOTO:
        return f"an attestation has payload type {payload_type!r}, not {IN_TOTO}"
    if not any(valid(key, sig, pae(payload_type, body)) for sig in signatures):
        return "an attestation's signature does not verify with the key"
    try:
        found = json.loads(body)
        subjects = [s["digest"]["sha256"] for s in found["subject"]]
        predicate_type, predicate = str(found["predicateType"]), found["predicate"]
    except (ValueError, KeyError, TypeError):
        return "an attestation is not an in-toto statement"
    if digest.removeprefix("sha256:") not in subjects:
        return f"an attestation ({predicate_type}) is about another image"
    return predicate_type, predicate


REQUIRED_PREDICATES = ("https://cyclonedx.org/bom", "https://slsa.dev/provenance/v1",
                       "https://python-base.dev/attestations/gates/v1")


def check(session: registry.Session, digest: str, key: ec.EllipticCurvePublicKey,
          *, attested: bool = True) -> Checked:
    """Read the signature and (`attested`: an image, not an index) the attestations of
    `digest` from the registry and verify them."""
    name = session.repository.name
    problems: list[str] = []
    signatures = 0
    sig_tag, att_tag = attachment_tag(digest, "sig"), attachment_tag(digest, "att")
    layers = session.get_artifact(sig_tag)
    if layers is None:
        problems.append(f"not signed: {session.repository.tag(sig_tag)} does not exist")
    else:
        found = [check_signature_layer(key, digest, name, layer.data,
                                       layer.annotations.get(SIGNATURE_ANNOTATION, ""))
                 for layer in layers if layer.media_type == SIMPLE_SIGNING]
        signatures = found.count(None)
        if not signatures:
            problems += sorted({p for p in found if p}) or [f"{sig_tag} holds no signature"]
    attestations: dict[str, Any] = {}
    layers = session.get_artifact(att_tag) if attested else []
    if layers is None:
        problems.append(f"no attestations: {session.repository.tag(att_tag)} does not exist")
    else:
        for layer in layers:
            try:
                envelope = json.loads(layer.data)
            except ValueError:
                problems.append("an attestation layer is not JSON")
                continue
            outcome = check_envelope(key, digest, envelope)
            if isinstance(outcome, str):
                problems.append(outcome)
            else:
                attestations[outcome[0]] = outcome[1]
        problems += [f"no valid {kind} attestation" for kind in REQUIRED_PREDICATES
                     if attested and kind not in attestations]
    return Checked(digest, signatures, attestations, problems)


def verify_reference(reference: str, key_path: Path,
                     echo: Callable[[str], None] = print) -> bool:
    """`pybase verify REF`: the signature and attestations of the image REF names (a tag or a
    digest, any registry) against the key, and the attested SBOM against the image's own
    (pulled by digest). An index: its own signature, then each platform's image the same way.
    Prints what held and every problem; True when verified."""
    repository, found_as = registry.split_reference(reference)
    key = load_public_key(key_path)
    problems: list[str] = []
    with registry.Session(repository, registry.credentials_from_env(os.environ)) as session:
        found = session.manifest(found_as)
        if found is None:
            raise registry.RegistryError(f"{reference}: no such image in the registry")
        images = {"": found.digest}
        if found.is_index:
            checked = check(session, found.digest, key, attested=False)
            echo(f"verify: {repository.name}@{found.digest} (index over "
                 f"{', '.join(found.platforms)}) with {key_path}: {checked.signatures} valid "
                 "signature(s)")
            problems += checked.problems
            images = {f"{platform}: ": digest for platform, digest in found.platforms.items()}
        for prefix, digest in images.items():
            checked = check(session, digest, key)
            problems += [prefix + problem for problem in checked.problems]
            attested = checked.attestations.get(REQUIRED_PREDICATES[0])
            if attested is not None and json.loads(sbom.shipped(session.pull(digest))) \
                    != attested:
                problems.append(f"{prefix}the attested SBOM differs from the one in the image")
            echo(f"verify: {prefix}{repository.name}@{digest} with {key_path}: "
                 f"{checked.signatures} valid signature(s), attestations: "
                 + (", ".join(sorted(checked.attestations)) or "none"))
    for problem in problems:
        echo(f"verify: NOT VERIFIED: {problem}")
    if not problems:
        echo("verify: verified")
    return not problems
