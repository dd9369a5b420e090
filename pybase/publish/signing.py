"""Our signing key: made (`nox -s signing-key -- DIR`), read and used here.

The private key file is cosign's encrypted format, so cosign (and containers/image, which read
the same format) take it as it is: a PEM block `ENCRYPTED COSIGN PRIVATE KEY` whose body is JSON
naming the KDF (scrypt N=32768, r=8, p=1, a 32-byte salt), the cipher (NaCl secretbox, a
24-byte nonce) and the ciphertext of the key's PKCS#8 DER. (Newer cosign writes the type
`ENCRYPTED SIGSTORE PRIVATE KEY` and N=65536, which the older readers refuse; we read both.)

The passphrase comes only from PYTHON_BASE_SIGNING_PASSPHRASE: never an argument, never printed,
never written to disk.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pybase.core import paths, settings
from pybase.verify import trust

PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
READABLE_PEM_TYPES = (PEM_TYPE, "ENCRYPTED SIGSTORE PRIVATE KEY")
SCRYPT = {"N": 32768, "r": 8, "p": 1}
SCRYPT_MAXMEM = 256 * 1024 * 1024
KEY_NAME = "python-base"


class SigningError(trust.TrustError):
    """No usable key: the message names the variable or file and what is wrong."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _box_key(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=params["N"], r=params["r"], p=params["p"],
                          maxmem=SCRYPT_MAXMEM, dklen=nacl.secret.SecretBox.KEY_SIZE)


def encrypt(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """The private key as cosign writes it."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = secrets.token_bytes(32), secrets.token_bytes(nacl.secret.SecretBox.NONCE_SIZE)
    sealed = nacl.secret.SecretBox(_box_key(passphrase, salt, SCRYPT)).encrypt(der, nonce)
    body = json.dumps({"kdf": {"name": "scrypt", "params": SCRYPT, "salt": _b64(salt)},
                       "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
                       "ciphertext": _b64(sealed.ciphertext)}, separators=(",", ":")).encode()
    lines = [_b64(body)[i:i + 64] for i in range(0, len(_b64(body)), 64)]
    return ("\n".join([f"-----BEGIN {PEM_TYPE}-----", *lines, f"-----END {PEM_TYPE}-----"])
            + "\n").encode()


def decrypt(pem: bytes, passphrase: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    """Read an encrypted key file's content; `where` names it in errors."""
    text = pem.decode("ascii", errors="replace").strip().splitlines()
    kinds = [line[len("-----BEGIN "):-len("-----")] for line in text[:1]
             if line.startswith("-----BEGIN ") and line.endswith("-----")]
    if not kinds or kinds[0] not in READABLE_PEM_TYPES:
        raise SigningError(f"{where}: not an encrypted cosign private key (expected a PEM block "
                           f"{PEM_TYPE})")
    try:
        body: dict[str, Any] = json.loads(base64.b64decode("".join(text[1:-1])))
        params = {k: int(v) for k, v in body["kdf"]["params"].items()}
        salt = base64.b64decode(body["kdf"]["salt"])
        nonce = base64.b64decode(body["cipher"]["nonce"])
        sealed = base64.b64decode(body["ciphertext"])
        if body["kdf"]["name"] != "scrypt" or body["cipher"]["name"] != "nacl/secretbox":
            raise ValueError("unknown kdf or cipher")
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningError(f"{where}: malformed encrypted key ({exc})") from None
    try:
        der = nacl.secret.SecretBox(_box_key(passphrase, salt, params)).decrypt(sealed, nonce)
    except nacl.exceptions.CryptoError:
        raise SigningError(f"{where}: the passphrase ({settings.SIGNING_PASSPHRASE}) does not "
                           "open this key") from None
    key = serialization.load_der_private_key(der, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise SigningError(f"{where}: not an ECDSA P-256 key")
    return key


@dataclass(frozen=True)
class Signer:
    key: ec.EllipticCurvePrivateKey
    origin: str  # where the key came from, for the record (a path; never the passphrase)

    @property
    def public_pem(self) -> bytes:
        return trust.public_pem(self.key.public_key())

    def sign(self, message: bytes) -> str:
        """base64 of the DER ECDSA signature over SHA-256(message)."""
        return _b64(self.key.sign(message, ec.ECDSA(hashes.SHA256())))

    def envelope(self, statement: bytes) -> dict[str, Any]:
        """A DSSE envelope of an in-toto statement."""
        return {"payloadType": trust.IN_TOTO, "payload": _b64(statement),
                "signatures": [{"keyid": "", "sig": self.sign(trust.pae(trust.IN_TOTO,
                                                                         statement))}]}


def generate(directory: Path, passphrase: bytes) -> tuple[Path, Path]:
    """DIR/python-base.key (encrypted, 0600) and DIR/python-base.pub; refuses to overwrite."""
    private, public = directory / f"{KEY_NAME}.key", directory / f"{KEY_NAME}.pub"
    for path in (private, public):
        if path.exists():
            raise SigningError(f"{path} exists; refusing to overwrite a key")
    if not passphrase:
        raise SigningError(f"{settings.SIGNING_PASSPHRASE} is empty or unset: the private key "
                           "is always encrypted")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(encrypt(key, passphrase))
    public.write_bytes(trust.public_pem(key.public_key()))
    return private, public


def passphrase_from_env() -> bytes:
    value = os.environ.get(settings.SIGNING_PASSPHRASE)
    if not value:
        raise SigningError(f"{settings.SIGNING_PASSPHRASE} is not set: it opens the signing key")
    return value.encode()


def from_env(expected_public: Path | None = trust.PUBLIC_KEY) -> Signer:
    """The key PYTHON_BASE_SIGNING_KEY names, opened with the passphrase; it must match the
    committed public key (`expected_public`) so that what we sign, consumers can verify."""
    path_value = settings.get(settings.SIGNING_KEY)
    if not path_value:
        raise SigningError(f"no signing key: set {settings.SIGNING_KEY} (a path; in GitLab a File "
                           f"variable) and {settings.SIGNING_PASSPHRASE}, or publish with "
                           "--unsigned for an experiment")
    path = Path(path_value)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise SigningError(f"{settings.SIGNING_KEY}={path}: cannot read: {exc.strerror}") from None
    signer = Signer(decrypt(pem, passphrase_from_env(), f"{settings.SIGNING_KEY}={path}"),
                    str(path))
    if expected_public is not None:
        expected = trust.public_pem(trust.load_public_key(expected_public))
        if signer.public_pem != expected:
            raise SigningError(f"{settings.SIGNING_KEY}={path} does not match the public key "
                               f"{expected_public}: consumers could not verify its signatures")
    return signer


def public_key_path() -> Path:
    """The key consumers verify with: PYTHON_BASE_SIGNING_PUBLIC_KEY, else the committed one."""
    configured = settings.get(settings.SIGNING_PUBLIC_KEY)
    return Path(configured) if configured else trust.PUBLIC_KEY


def throwaway(directory: Path) -> Signer:
    """A key pair for `publish --local` when no key is configured: made once under the cache
    (the passphrase-less private half never leaves it), its public half beside it."""
    private, public = directory / f"{KEY_NAME}.throwaway.pem", directory / f"{KEY_NAME}.pub"
    if private.is_file():
        key = serialization.load_pem_private_key(private.read_bytes(), None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return Signer(key, str(private))
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    public.write_bytes(trust.public_pem(key.public_key()))
    return Signer(key, str(private))


def for_publish(*, local: bool, unsigned: bool,
                echo: Callable[[str], None] = print) -> Signer | None:
    """The key publish signs with: the configured one; `unsigned`: none; `local` with no key
    configured: a throwaway one (said loudly)."""
    if unsigned:
        echo("publish: UNSIGNED (--unsigned): consumers that require a signature will refuse "
             "these images")
        return None
    if local and not settings.get(settings.SIGNING_KEY):
        where = paths.cache_dir() / "local-signing"
        signer = throwaway(where)
        echo(f"publish: NO SIGNING KEY CONFIGURED: --local signs with a THROWAWAY key "
             f"({signer.origin}); verify with {where / f'{KEY_NAME}.pub'}")
        return signer
    return from_env(public_key_path())
