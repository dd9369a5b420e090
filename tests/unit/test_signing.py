"""The signing key in cosign's format, signatures and DSSE envelopes, verified back (no registry)."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from pybase.core import settings
from pybase.infra import oci, registry
from pybase.publish import signing
from pybase.verify import trust

PASSPHRASE = b"correct horse battery staple"
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return signing.generate(tmp_path_factory.mktemp("keys"), PASSPHRASE)


def test_generated_key_is_cosigns_encrypted_format(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    lines = private.read_text().splitlines()
    assert lines[0] == "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"
    assert lines[-1] == "-----END ENCRYPTED COSIGN PRIVATE KEY-----"
    assert all(len(line) <= 64 for line in lines[1:-1])
    body = json.loads(base64.b64decode("".join(lines[1:-1])))
    assert body["kdf"]["name"] == "scrypt" and body["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24
    # PKCS#8 DER of a P-256 key (138 bytes) plus secretbox's 16-byte tag
    assert len(base64.b64decode(body["ciphertext"])) == 154
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert PASSPHRASE.decode() not in private.read_text() + public.read_text()


def test_key_opens_with_its_passphrase_and_matches_the_public_key(keys: tuple[Path, Path]) -> None:
    private, public = keys
    key = signing.decrypt(private.read_bytes(), PASSPHRASE, str(private))
    assert trust.public_pem(key.public_key()) == public.read_bytes()


def test_wrong_passphrase_is_named_not_shown(keys: tuple[Path, Path]) -> None:
    private, _ = keys
    with pytest.raises(signing.SigningError) as caught:
        signing.decrypt(private.read_bytes(), b"wrong", str(private))
    assert str(caught.value) == (f"{private}: the passphrase (PYTHON_BASE_SIGNING_PASSPHRASE) "
                                 "does not open this key")


def test_refuses_to_overwrite_and_to_store_a_key_unencrypted(keys: tuple[Path, Path]) -> None:
    with pytest.raises(signing.SigningError, match="exists; refusing to overwrite"):
        signing.generate(keys[0].parent, PASSPHRASE)
    with pytest.raises(signing.SigningError, match="always encrypted"):
        signing.generate(keys[0].parent / "other", b"")


def test_from_env_names_missing_and_mismatched_keys(keys: tuple[Path, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = keys
    monkeypatch.delenv(settings.SIGNING_KEY, raising=False)
    with pytest.raises(signing.SigningError, match="no signing key: set PYTHON_BASE_SIGNING_KEY"):
        signing.from_env(public)
    monkeypatch.setenv(settings.SIGNING_KEY, str(tmp_path / "missing.key"))
    with pytest.raises(signing.SigningError, match="missing.key: cannot read"):
        signing.from_env(public)
    monkeypatch.setenv(settings.SIGNING_KEY, str(private))
    monkeypatch.delenv(settings.SIGNING_PASSPHRASE, raising=False)
    with pytest.raises(signing.SigningError, match="PYTHON_BASE_SIGNING_PASSPHRASE is not set"):
        signing.from_env(public)
    monkeypatch.setenv(settings.SIGNING_PASSPHRASE, PASSPHRASE.decode())
    assert signing.from_env(public).origin == str(private)
    other, _ = signing.generate(tmp_path / "other", PASSPHRASE)
    monkeypatch.setenv(settings.SIGNING_KEY, str(other))
    with pytest.raises(signing.SigningError, match="does not match the public key"):
        signing.from_env(public)


def test_signature_and_envelope_verify_and_tampering_does_not(keys: tuple[Path, Path]) -> None:
    signer = signing.Signer(signing.decrypt(keys[0].read_bytes(), PASSPHRASE, "key"), "key")
    public = trust.load_public_key(keys[1])
    payload = trust.simple_signing_payload("127.0.0.1:5000/python-base", DIGEST)
    signature = signer.sign(payload)
    assert trust.check_signature_layer(public, DIGEST, "127.0.0.1:5000/python-base", payload,
                                       signature) is None
    assert trust.check_signature_layer(public, "sha256:" + "cd" * 32,
                                       "127.0.0.1:5000/python-base", payload,
                                       signature) == f"a valid signature is for {DIGEST}, not sha256:{'cd' * 32}"
    assert "does not verify" in str(trust.check_signature_layer(
        public, DIGEST, "127.0.0.1:5000/python-base", payload.replace(b"python", b"pithon"),
        signature))
    other = trust.load_public_key(signing.generate(keys[0].parent / "third", PASSPHRASE)[1])
    assert "does not verify" in str(trust.check_signature_layer(
        other, DIGEST, "127.0.0.1:5000/python-base", payload, signature))

    statement = trust.statement(DIGEST, "127.0.0.1:5000/python-base", "https://example/p/v1",
                                {"x": 1})
    envelope = signer.envelope(statement)
    assert trust.check_envelope(public, DIGEST, envelope) == ("https://example/p/v1", {"x": 1})
    tampered = {**envelope, "payload": base64.b64encode(statement.replace(b'"x":1', b'"x":2'))
                .decode()}
    assert trust.check_envelope(public, DIGEST, tampered) == (
        "an attestation's signature does not verify with the key")
    assert trust.check_envelope(public, "sha256:" + "cd" * 32, envelope) == (
        "an attestation (https://example/p/v1) is about another image")


def test_pae_is_dsse_v1() -> None:
    assert trust.pae("a/b", b"hello") == b"DSSEv1 3 a/b 5 hello"


def test_attachment_tags() -> None:
    assert trust.attachment_tag(DIGEST, "sig") == f"sha256-{'ab' * 32}.sig"
    with pytest.raises(trust.TrustError, match="not a sha256 manifest digest"):
        trust.attachment_tag("sha512:00", "att")



@pytest.mark.parametrize(("reference", "repository", "tag"), [
    ("127.0.0.1:5000/python-base:3.13", "127.0.0.1:5000/python-base", "3.13"),
    (f"registry.example.com/platform/python-base@{DIGEST}",
     "registry.example.com/platform/python-base", DIGEST),
    ("127.0.0.1:5000/python-base", "127.0.0.1:5000/python-base", "latest"),
])
def test_references_split_into_repository_and_tag(reference: str, repository: str,
                                                  tag: str) -> None:
    repo, found = registry.split_reference(reference)
    assert (repo.name, found) == (repository, tag)


def test_artifact_layout_is_cosigns(tmp_path: Path) -> None:
    layer = oci.ArtifactLayer(trust.SIMPLE_SIGNING, b'{"x":1}',
                                   {trust.SIGNATURE_ANNOTATION: "c2ln"})
    digest = oci.layout(tmp_path, [layer], "artifact")
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest
    blob = tmp_path / "blobs" / "sha256"
    manifest = json.loads((blob / digest.removeprefix("sha256:")).read_text())
    assert manifest["mediaType"] == oci.OCI_MANIFEST
    assert manifest["layers"] == [{"mediaType": trust.SIMPLE_SIGNING, "size": 7,
                                   "digest": layer.digest,
                                   "annotations": {trust.SIGNATURE_ANNOTATION: "c2ln"}}]
    config = json.loads((blob / manifest["config"]["digest"].removeprefix("sha256:")).read_text())
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer.digest]}
