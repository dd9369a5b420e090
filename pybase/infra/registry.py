"""The registry side of publishing: where images go, with which credentials, and the few
operations publishing needs.

Transfers use the tools made for them: `docker push` uploads an image from the engine, and
skopeo reads manifests, lists tags and copies a manifest from one tag to another by digest
(`--preserve-digests`, so a tag never points at a re-encoded copy). Both speak Basic and token
auth, so the same code works against Debian's docker-registry and GitLab's.

Credentials never reach a command line or the terminal: they are written to a private auth file
(mode 0600 in a 0700 directory) that docker (`DOCKER_CONFIG`) and skopeo (`--authfile`) read,
and that is deleted when the `Session` closes.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from pybase.core import settings
from pybase.core.errors import PybaseError
from pybase.infra import engine, host, local_registry, oci
from pybase.infra.oci import Manifest

COMMAND_TIMEOUT = 900.0

# Failures worth another try: the registry or the network hiccuped. Anything else (refused
# credentials, a missing manifest, a malformed reference) fails at once.
_TRANSIENT = re.compile(
    r"connection refused|connection reset|broken pipe|\bEOF\b|i/o timeout|timeout|"
    r"TLS handshake|no route to host|temporarily unavailable|too many requests|"
    r"\b50[0234]\b|service unavailable|bad gateway|server misbehaving", re.IGNORECASE)
_AUTH = re.compile(r"unauthorized|authentication required|denied|\b401\b|\b403\b", re.IGNORECASE)
_NOT_FOUND = re.compile(r"manifest unknown|not found|name unknown|repository name not known|"
                        r"\b404\b", re.IGNORECASE)


class RegistryError(PybaseError):
    """The registry could not be used; the message names it and says what failed."""


class RegistryNotFound(RegistryError):
    """The registry says the repository, tag or manifest does not exist."""


class RegistryAuthError(RegistryError):
    """The registry refused the credentials (or wants some)."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str = field(repr=False)
    source: str  # the variable that named the user, for messages

    def __str__(self) -> str:
        return f"user {self.user!r} (from {self.source})"


def credentials_from_env(environ: Mapping[str, str],
                         first: Sequence[tuple[str, str]] = ()) -> Credentials | None:
    """The first (user, password) variable pair set: `first` (a repository's own pair), then
    PYTHON_BASE_REGISTRY_USER/_PASSWORD, then GitLab's CI_REGISTRY_USER/_PASSWORD; else none.
    A pair half set is an error."""
    for user_var, password_var in (*first, (settings.REGISTRY_USER, settings.REGISTRY_PASSWORD),
                                   (settings.GITLAB_REGISTRY_USER, settings.GITLAB_REGISTRY_PASSWORD)):
        user, password = environ.get(user_var), environ.get(password_var)
        if user and password:
            return Credentials(user, password, user_var)
        if user or password:
            given, missing = (user_var, password_var) if user else (password_var, user_var)
            raise RegistryError(f"{given} is set but {missing} is not; set both or neither")
    return None


@dataclass(frozen=True)
class Repository:
    """`host[:port]/path/name`: where the tags of one image name live."""

    name: str

    @property
    def host(self) -> str:
        return self.name.split("/", 1)[0]

    @property
    def plain_http(self) -> bool:
        """Loopback registries speak plain HTTP (the engine treats 127.0.0.0/8 as insecure)."""
        host = self.host.rsplit("]", 1)[0].lstrip("[") if self.host.startswith("[") \
            else self.host.rsplit(":", 1)[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def tag(self, tag: str) -> str:
        return f"{self.name}:{tag}"

    def digest(self, digest: str) -> str:
        return f"{self.name}@{digest}"


def resolve_repository(default_registry: str, image_name: str,
                       environ: Mapping[str, str]) -> Repository:
    """PYTHON_BASE_REGISTRY (+ image name) wins; in GitLab, CI_REGISTRY_IMAGE is the
    repository itself; else versions.yaml's image.registry (+ image name)."""
    if environ.get(settings.REGISTRY):
        return checked(f"{environ[settings.REGISTRY].rstrip('/')}/{image_name}", settings.REGISTRY)
    if environ.get(settings.GITLAB_REGISTRY_IMAGE):
        return checked(environ[settings.GITLAB_REGISTRY_IMAGE].rstrip("/"), settings.GITLAB_REGISTRY_IMAGE)
    return checked(f"{default_registry.rstrip('/')}/{image_name}", "versions.yaml image.registry")


_REPOSITORY = re.compile(r"^[A-Za-z0-9.-]+(:\d+)?(/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$")


def checked(name: str, source: str) -> Repository:
    if not _REPOSITORY.match(name):
        raise RegistryError(f"{source}: {name!r} is not a registry repository such as "
                            "'127.0.0.1:5000/platform/python-base'")
    return Repository(name)


@dataclass(frozen=True)
class Retry:
    attempts: int = 4
    first_delay: float = 1.0  # doubled after each failure: 1 + 2 + 4 s at most by default

    def delays(self) -> list[float]:
        return [self.first_delay * 2 ** i for i in range(self.attempts - 1)]


class Session:
    """One publish run's access to a repository: a private auth file and the retry policy."""

    def __init__(self, repository: Repository, credentials: Credentials | None,
                 retry: Retry = Retry(), echo: Callable[[str], None] = print) -> None:
        self.repository = repository
        self.credentials = credentials
        self.retry = retry
        self.echo = echo
        self._dir: Path | None = None

    def __enter__(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix="pybase-registry-auth-"))
        os.chmod(self._dir, 0o700)
        auths = {}
        if self.credentials is not None:
            token = f"{self.credentials.user}:{self.credentials.password}".encode()
            auths[self.repository.host] = {"auth": base64.b64encode(token).decode()}
        auth_file = self._dir / "config.json"
        fd = os.open(auth_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"auths": auths}, out)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def auth_file(self) -> Path:
        if self._dir is None:
            raise RuntimeError("registry.Session used outside its `with` block")
        return self._dir / "config.json"

    # -- commands ---------------------------------------------------------------------------

    def _tls(self, *flags: str) -> list[str]:
        return [f"{flag}=false" for flag in flags] if self.repository.plain_http else []

    def _skopeo(self, *args: str, what: str) -> subprocess.CompletedProcess[bytes]:
        # The policy only says "accept any signature"; what we copy is pinned by digest.
        command = [host.program("skopeo"), "--insecure-policy", *args]
        return self._run(command, what, env={})

    def _run(self, command: Sequence[str], what: str, env: Mapping[str, str]
             ) -> subprocess.CompletedProcess[bytes]:
        """Run with bounded retries of transient failures; raise RegistryError naming the
        registry otherwise. Output is captured and only its last error line is ever shown."""
        delays = self.retry.delays()
        for attempt in range(len(delays) + 1):
            try:
                result = subprocess.run(list(command), capture_output=True, check=False,
                                        timeout=COMMAND_TIMEOUT, env={**os.environ, **env})
            except FileNotFoundError:
                raise RegistryError(f"`{command[0]}` could not start: not found") from None
            except subprocess.TimeoutExpired:
                stderr = f"no answer within {COMMAND_TIMEOUT:.0f} s (timeout)"
                result = subprocess.CompletedProcess(command, 124, b"", stderr.encode())
            if result.returncode == 0:
                return result
            message = _last_error(result.stderr.decode(errors="replace"))
            if _AUTH.search(message):
                raise RegistryAuthError(self._auth_message(what, message))
            failed = f"registry {self.repository.host}: {what} failed: {message}"
            if _NOT_FOUND.search(message) and "connection" not in message.lower():
                raise RegistryNotFound(failed)
            if not _TRANSIENT.search(message) or attempt == len(delays):
                raise RegistryError(failed)
            self.echo(f"  registry {self.repository.host}: {what}: {message}; retrying in "
                      f"{delays[attempt]:g} s ({attempt + 1}/{len(delays)})")
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _auth_message(self, what: str, message: str) -> str:
        if self.credentials is None:
            return (f"registry {self.repository.host} wants credentials for {what}: set "
                    f"{settings.REGISTRY_USER} and {settings.REGISTRY_PASSWORD} (in GitLab CI_REGISTRY_USER/_PASSWORD)")
        return (f"registry {self.repository.host} refused the credentials of "
                f"{self.credentials} for {what}: {message}")

    def tags(self) -> list[str]:
        """Every tag of the repository ([] when it does not exist yet). Also the first contact:
        a registry that is down or refuses the credentials fails here, before anything moves."""
        try:
            result = self._skopeo("list-tags", *self._tls("--tls-verify"), "--authfile",
                                  str(self.auth_file), f"docker://{self.repository.name}",
                                  what="listing tags")
        except RegistryNotFound:
            return []
        return [str(t) for t in json.loads(result.stdout).get("Tags") or []]

    def _reference(self, tag_or_digest: str) -> str:
        return (self.repository.digest(tag_or_digest) if tag_or_digest.startswith("sha256:")
                else self.repository.tag(tag_or_digest))

    def manifest(self, reference: str) -> Manifest | None:
        """The manifest a tag (or digest) points at, or None if there is none."""
        ref = self._reference(reference)
        try:
            result = self._skopeo("inspect", "--raw", *self._tls("--tls-verify"), "--authfile",
                                  str(self.auth_file), f"docker://{ref}",
                                  what=f"reading the manifest of {ref}")
        except RegistryNotFound:
            return None
        return parse_manifest(result.stdout)

    def labels(self, reference: str) -> dict[str, str] | None:
        """The labels of the image a tag (or digest) serves, from its config; None if none."""
        ref = self._reference(reference)
        try:
            result = self._skopeo("inspect", "--config", *self._tls("--tls-verify"),
                                  "--authfile", str(self.auth_file), f"docker://{ref}",
                                  what=f"reading the config of {ref}")
        except RegistryNotFound:
            return None
        try:
            found = json.loads(result.stdout).get("config", {}).get("Labels") or {}
        except (ValueError, AttributeError):
            raise RegistryError(f"registry {self.repository.host}: the config of {ref} is not "
                                "an image config") from None
        return {str(k): str(v) for k, v in found.items()}

    def push(self, image_id: str, tag: str) -> str:
        """Upload an engine image under `tag`; returns the manifest digest the registry stored."""
        ref = self.repository.tag(tag)
        engine.docker("tag", image_id, ref, capture=True)
        try:
            env = {"DOCKER_CONFIG": str(self.auth_file.parent)}
            result = self._run([engine.client(), "push", ref], f"pushing {ref}", env)
        finally:
            engine.docker("image", "rm", ref, capture=True, check=False)  # the tag only
        found = re.search(rb"digest: (sha256:[0-9a-f]{64})", result.stdout)
        if found is None:
            raise RegistryError(f"registry {self.repository.host}: `docker push {ref}` printed "
                                "no digest")
        return found.group(1).decode()

    def copy(self, source: str, tag: str, source_plain_http: bool | None = None) -> None:
        """Point `tag` at the manifest `source` (`repo@sha256:...`), byte for byte: an index
        with every image it lists (`--multi-arch all`; skopeo would otherwise copy only this
        machine's platform)."""
        plain = self.repository.plain_http if source_plain_http is None else source_plain_http
        flags = (["--src-tls-verify=false"] if plain else []) + self._tls("--dest-tls-verify")
        self._skopeo("copy", "--multi-arch", "all", "--preserve-digests", "--quiet", *flags,
                     "--src-authfile", str(self.auth_file), "--dest-authfile", str(self.auth_file),
                     f"docker://{source}", f"docker://{self.repository.tag(tag)}",
                     what=f"pointing {tag} at {source.rsplit('@', 1)[-1][:19]}")

    def put_artifact(self, tag: str, layers: Sequence[oci.ArtifactLayer]) -> str:
        """Store an OCI artifact of `layers` under `tag` (replacing what the tag held); returns
        its manifest digest, checked against what the registry then serves."""
        with tempfile.TemporaryDirectory(prefix="pybase-artifact-") as tmp:
            digest = oci.layout(Path(tmp), layers, "artifact")
            self._skopeo("copy", "--preserve-digests", "--quiet", *self._tls("--dest-tls-verify"),
                         "--dest-authfile", str(self.auth_file), f"oci:{tmp}:artifact",
                         f"docker://{self.repository.tag(tag)}", what=f"writing {tag}")
        stored = self.manifest(tag)
        if stored is None or stored.digest != digest:
            raise RegistryError(f"registry {self.repository.host}: {tag} does not hold the "
                                f"artifact {digest[:19]} after writing it")
        return digest

    def get_artifact(self, tag: str) -> list[oci.ArtifactLayer] | None:
        """The layers of the artifact under `tag` (each blob checked against its digest), or
        None when there is no such tag."""
        found = self.manifest(tag)
        if found is None:
            return None
        try:
            described = json.loads(found.raw)["layers"]
        except (ValueError, KeyError, TypeError):
            raise RegistryError(f"registry {self.repository.host}: {tag} is not an OCI "
                                "artifact") from None
        with tempfile.TemporaryDirectory(prefix="pybase-artifact-") as tmp:
            self._skopeo("copy", "--quiet", *self._tls("--src-tls-verify"), "--src-authfile",
                         str(self.auth_file), f"docker://{self.repository.digest(found.digest)}",
                         f"dir:{tmp}", what=f"reading {tag}")
            layers = []
            for item in described:
                data = (Path(tmp) / str(item["digest"]).removeprefix("sha256:")).read_bytes()
                layer = oci.ArtifactLayer(str(item["mediaType"]), data,
                                      dict(item.get("annotations") or {}))
                if layer.digest != item["digest"]:
                    raise RegistryError(f"registry {self.repository.host}: a layer of {tag} "
                                        f"does not match its digest {item['digest'][:19]}")
                layers.append(layer)
        return layers

    def put_index(self, tag: str, images: Mapping[str, Manifest]) -> str:
        """Point `tag` at an index over `images` (platform -> its manifest, already in this
        repository; the registry checks that they are); returns the index's digest, checked
        against what the registry then serves. skopeo writes it alone (`--multi-arch
        index-only`): the images are referred to, not copied again."""
        kinds = {m.media_type for m in images.values()}
        if len(kinds) != 1 or next(iter(kinds)) not in oci.INDEX_FOR:
            raise RegistryError(f"registry {self.repository.host}: cannot join manifests of "
                                f"types {sorted(kinds)} into one index")
        raw = oci.index_bytes(oci.INDEX_FOR[kinds.pop()], images)
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        with tempfile.TemporaryDirectory(prefix="pybase-index-") as tmp:
            (Path(tmp) / "manifest.json").write_bytes(raw)
            (Path(tmp) / "version").write_text("Directory Transport Version: 1.1\n")
            self._skopeo("copy", "--multi-arch", "index-only", "--preserve-digests", "--quiet",
                         *self._tls("--dest-tls-verify"), "--dest-authfile", str(self.auth_file),
                         f"dir:{tmp}", f"docker://{self.repository.tag(tag)}",
                         what=f"writing the index {tag}")
        stored = self.manifest(tag)
        if stored is None or stored.digest != digest:
            raise RegistryError(f"registry {self.repository.host}: {tag} does not hold the "
                                f"index {digest[:19]} after writing it")
        return digest

    def pull(self, digest: str) -> str:
        """Fetch a published image into the engine by digest; returns its image ID."""
        ref = self.repository.digest(digest)
        self._run([engine.client(), "pull", "--quiet", ref], f"pulling {ref}",
                  {"DOCKER_CONFIG": str(self.auth_file.parent)})
        found = engine.image_id(ref)
        if found is None:
            raise RegistryError(f"{ref} was pulled but the engine does not show it")
        return found


def target_session(image_registry: str, image_name: str, *, local: bool,
                   echo: Callable[[str], None] = print) -> Session:
    """Where publish (and candidate, check --published) go: `local`: the registry on 127.0.0.1
    (started if needed), else PYTHON_BASE_REGISTRY / CI_REGISTRY_IMAGE / versions.yaml's;
    credentials only from the environment."""
    if local:
        reg = local_registry.ensure(*local_registry.configured())
        echo(f"publish: local registry at {reg.address} (pid {reg.pid}, data under "
             f"{reg.directory}); `pybase local-registry stop` stops it")
        repository = Repository(f"{reg.address}/{image_name}")
    else:
        repository = resolve_repository(image_registry, image_name, os.environ)
    return Session(repository, credentials_from_env(os.environ))


def split_reference(reference: str) -> tuple[Repository, str]:
    """`host/repo:tag` or `host/repo@sha256:...` -> (the repository, the tag or digest)."""
    name, at, digest = reference.partition("@")
    if at:
        return checked(name, reference), digest
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return checked(head, reference), tag
    return checked(name, reference), "latest"


def parse_manifest(raw: bytes) -> Manifest:
    """oci.parse_manifest, its refusal as a RegistryError (what the registry returned)."""
    try:
        return oci.parse_manifest(raw)
    except ValueError as exc:
        raise RegistryError(f"the registry returned {exc}") from None


_LOGRUS = re.compile(r'level=\w+ msg="((?:[^"\\]|\\.)*)"')


def _last_error(stderr: str) -> str:
    """The last error line, without skopeo's `time=... level=fatal msg="..."` wrapping."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "no error output"
    found = _LOGRUS.search(lines[-1])
    text = found.group(1).replace('\\"', '"') if found else lines[-1]
    return text[-400:]
