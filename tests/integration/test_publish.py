"""Publishing against real registries on 127.0.0.1 (Debian's docker-registry), each started and
stopped by the test that uses it: first publish, the unchanged no-op, changed content with its
changelog, a registry killed mid-publish and the rerun, refused credentials, rollback, gates;
signatures and attestations (verify, a stranger's key, tampering, unsigned, a registry lost
before the signature) and a late publish of an older build.

The candidates are small test images made FROM the first selected runtime image, so every
push after the first reuses its layers.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
from support import MATRIX, Image, docker, free_port

from pybase import cli, publish
from pybase.core import paths, settings, tags
from pybase.infra import engine, host, local_registry, oci, registry
from pybase.publish import publisher, signing
from pybase.verify import gates, trust

pytestmark = pytest.mark.image

QUICK_RETRY = registry.Retry(attempts=2, first_delay=0.2)
PROBE = """\
FROM {base}
USER root
RUN set -eux; \\
    site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"; \\
    mkdir "$site/pybase_probe-{version}.dist-info"; \\
    printf 'Metadata-Version: 2.1\\nName: pybase-probe\\nVersion: {version}\\n' \\
        > "$site/pybase_probe-{version}.dist-info/METADATA"
USER 10001:10001
ENV PYBASE_PROBE={version}
"""



@dataclass
class World:
    """One registry, the publisher's records and the test images of one test."""

    server: local_registry.LocalRegistry
    base: Image
    work: Path
    images: list[str]

    @property
    def repository(self) -> registry.Repository:
        return registry.Repository(f"{self.server.address}/platform/python-base")

    def image(self, name: str, dockerfile: str, base: Image | None = None,
              gated: bool = True) -> publish.Candidate:
        """Build a test image FROM `base` (the world's) and give it passing gate records."""
        base = base or self.base
        context = self.work / name
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile.format(base=base.ref))
        ref = f"pybase-publish-test:{name}-{self.work.name[-8:]}"
        docker("build", "--quiet", "--platform", base.target.platform, "-t", ref, str(context),
               timeout=600)
        self.images.append(ref)
        if gated:
            self.passed(ref)
        return publish.Candidate(ref, base.target, "runtime")

    def relabelled(self, name: str, source: publish.Candidate) -> publish.Candidate:
        """The same content, another image ID: what a rebuild on a later commit gives."""
        return self.image(name, f"FROM {source.ref}\nLABEL org.opencontainers.image.revision={name}\n",
                          Image(source.target, source.variant, source.ref))

    def probe(self, name: str, version: str, base: Image | None = None,
              gated: bool = True) -> publish.Candidate:
        return self.image(name, PROBE.replace("{version}", version), base, gated)

    def passed(self, ref: str) -> None:
        image_id = engine.image_id(ref)
        assert image_id
        gates.write_test_record(gates.TestRecord(ref, image_id, 5, 0, 0, 0, 0, 0, False, gates.now()),
                                self.work / "test-records")
        audit = self.work / "audit-records" / f"{paths.report_name(ref)}.json"
        audit.parent.mkdir(exist_ok=True)
        audit.write_text(json.dumps({"status": "passed", "image_id": image_id}))

    def new_publisher(self, session: registry.Session, **kwargs: object) -> publisher.Publisher:
        """One platform's images, each tag serving that image (test_every_platform_* below
        publishes indexes over versions.yaml's platforms)."""
        kwargs.setdefault("platforms", [self.base.target.platform])
        return publisher.Publisher(MATRIX, session, record_dir=self.work / "publish",
                                 **kwargs)  # type: ignore[arg-type]

    def publish(self, *candidates: publish.Candidate, **kwargs: object) -> list[publish.Outcome]:
        with registry.Session(self.repository, None, QUICK_RETRY) as session:
            return self.new_publisher(session, **kwargs).publish(
                candidates, self.work / "test-records", self.work / "audit-records")

    def digest(self, tag: str) -> str | None:
        with registry.Session(self.repository, None, QUICK_RETRY) as session:
            found = session.manifest(tag)
        return found.digest if found else None

    def all_tags(self) -> list[str]:
        with registry.Session(self.repository, None, QUICK_RETRY) as session:
            return sorted(session.tags())


@pytest.fixture
def world(runtime_image: Image) -> Iterator[World]:
    runtime_image.inspect()
    with tempfile.TemporaryDirectory(prefix="pybase-publish-") as tmp:
        work = Path(tmp)
        reg = local_registry.start(work / "registry", free_port())
        w = World(reg, runtime_image, work, [])
        try:
            yield w
        finally:
            w.server.stop()
            for ref in reversed(w.images):
                docker("image", "rm", "-f", ref, check=False)


def rolling(candidate: publish.Candidate) -> list[str]:
    built = engine.inspect(candidate.ref)
    assert built is not None
    day = publisher.build_date(built.labels, candidate.ref)
    return tags.tags_for(MATRIX, candidate.target, candidate.variant, day)[1:]


def test_first_publish_then_unchanged_rebuild_is_a_noop(world: World,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    first = world.relabelled("v1", publish.Candidate(world.base.ref, world.base.target, "runtime"))
    [outcome] = world.publish(first)
    assert outcome.status == "published" and outcome.previous_digest is None
    assert world.digest(outcome.immutable_tag) == outcome.digest
    for tag in rolling(first):
        assert world.digest(tag) == outcome.digest, tag
    record = json.loads((world.work / "publish" / "manifest.json").read_text())
    assert record["images"][0]["tags"][outcome.immutable_tag] == outcome.digest
    assert record["images"][0]["fingerprint"].startswith("sha256:")
    assert "first publish" in Path(outcome.changelog["markdown"]).read_text()

    before = world.all_tags()
    again = world.relabelled("v1-rebuilt", first)
    assert engine.image_id(again.ref) != engine.image_id(first.ref)
    [noop] = world.publish(again)
    assert noop.status == "unchanged" and noop.digest == outcome.digest
    assert f"unchanged since {outcome.immutable_tag}" in capsys.readouterr().out
    assert world.all_tags() == before


def test_changed_content_gets_a_new_immutable_tag_and_a_changelog(world: World) -> None:
    v1, v2 = world.probe("p1", "1.0"), world.probe("p2", "1.1")
    [one] = world.publish(v1)
    [two] = world.publish(v2)
    assert two.status == "published" and two.previous_digest == one.digest
    # The same build day: the dated tag is taken, so the next serial is used, never overwritten.
    assert two.immutable_tag != one.immutable_tag
    parsed = tags.parse_immutable(MATRIX, two.immutable_tag)
    assert parsed is not None and parsed.serial == 1
    assert world.digest(one.immutable_tag) == one.digest
    for tag in rolling(v2):
        assert world.digest(tag) == two.digest
    log = json.loads(Path(two.changelog["json"]).read_text())
    assert {"area": "python /opt/venv", "name": "pybase-probe", "change": "upgraded",
            "old": "1.0", "new": "1.1"} in log["changes"]
    assert {"area": "config env", "name": "PYBASE_PROBE", "change": "changed", "old": "1.0",
            "new": "1.1"} in log["changes"]
    markdown = Path(two.changelog["markdown"]).read_text()
    assert "| pybase-probe | upgraded | 1.0 | 1.1 |" in markdown


@pytest.mark.parametrize("killed_after", ["immutable", "rolling"])
def test_registry_killed_mid_publish_then_rerun_completes(world: World, killed_after: str) -> None:
    v1, v2 = world.probe("k1", "1.0"), world.probe("k2", "2.0")
    [one] = world.publish(v1)

    def kill(step: str) -> None:
        if step.startswith(killed_after):
            os.kill(world.server.pid, signal.SIGKILL)
            os.waitpid(world.server.pid, 0)  # ours: collect it, no zombie left

    with pytest.raises(registry.RegistryError, match=world.server.address):
        world.publish(v2, after_write=kill)
    world.server = local_registry.start(world.server.directory, free_port_of(world))
    # Every rolling tag still serves a whole image: the old one, or the new one complete.
    v2_id = engine.image_id(v2.ref)
    with registry.Session(world.repository, None, QUICK_RETRY) as session:
        for tag in rolling(v2):
            found = session.manifest(tag)
            assert found is not None
            assert found.config_digest in (engine.image_id(v1.ref), v2_id), tag
            pulled = session.pull(found.digest)  # every layer is there
            assert pulled == found.config_digest
    [rerun] = world.publish(v2)
    assert rerun.status == "published" and rerun.previous_digest in (one.digest, rerun.digest)
    for tag in rolling(v2):
        assert world.digest(tag) == rerun.digest
    assert len([t for t in world.all_tags() if tags.parse_immutable(MATRIX, t)]) == 2


def free_port_of(world: World) -> int:
    return int(world.server.address.rsplit(":", 1)[1])


def test_rollback_moves_the_rolling_tags_back(world: World) -> None:
    v1, v2 = world.probe("r1", "1.0"), world.probe("r2", "2.0")
    [one] = world.publish(v1)
    [two] = world.publish(v2)
    with registry.Session(world.repository, None, QUICK_RETRY) as session:
        back = world.new_publisher(session).rollback(one.immutable_tag)
    assert back.status == "rolled back" and back.previous_digest == two.digest
    for tag in rolling(v1):
        assert world.digest(tag) == one.digest
    assert world.digest(two.immutable_tag) == two.digest  # immutable tags stay


def test_gates_refuse_untested_or_rebuilt_images(world: World) -> None:
    tested = world.probe("g1", "1.0")
    (world.work / "audit-records" / f"{paths.report_name(tested.ref)}.json").unlink()
    untested = world.probe("g2", "1.0")
    (world.work / "test-records" / f"{paths.report_name(untested.ref)}.json").write_text(
        json.dumps({"outcome": "passed", "image_id": "sha256:" + "0" * 64}))
    with pytest.raises(publish.PublishError) as refused:
        world.publish(tested, untested)
    message = str(refused.value)
    assert f"{tested.ref}: no audit record" in message
    assert f"{untested.ref}: the test record is for image sha256:00000000000" in message
    assert world.all_tags() == []  # nothing was pushed, not even the image that passed


def test_registry_down_at_start_names_it_and_moves_nothing(world: World) -> None:
    candidate = world.probe("d1", "1.0")
    world.server.stop()
    with pytest.raises(registry.RegistryError) as down:
        world.publish(candidate)
    assert world.server.address in str(down.value)
    assert "connection refused" in str(down.value).lower()


def test_transient_failure_is_retried(world: World) -> None:
    """The registry comes back during the bounded backoff: the run goes on."""
    world.server.stop()
    port = free_port_of(world)
    restart = threading.Timer(1.0, lambda: local_registry.start(world.server.directory, port))
    restart.start()
    try:
        with registry.Session(world.repository, None, registry.Retry(4, 1.0),
                              echo=lambda line: None) as session:
            assert session.tags() == []
    finally:
        restart.join()
        world.server = local_registry.LocalRegistry(
            world.server.address, world.server.directory,
            int((world.server.directory / "registry.pid").read_text()))


@pytest.fixture
def auth_world(world: World) -> Iterator[tuple[World, registry.Credentials]]:
    """The same world behind htpasswd auth."""
    world.server.stop()
    password = "s3cret-" + os.urandom(6).hex()
    htpasswd = world.work / "htpasswd"
    htpasswd.write_text("publisher:" + bcrypt.hashpw(password.encode(),
                                                       bcrypt.gensalt(rounds=5)).decode() + "\n")
    world.server = local_registry.start(world.server.directory, free_port_of(world), htpasswd)
    yield world, registry.Credentials("publisher", password, settings.REGISTRY_USER)


def test_wrong_credentials_fail_clearly_and_push_nothing(
        auth_world: tuple[World, registry.Credentials], capsys: pytest.CaptureFixture[str]) -> None:
    world, good = auth_world
    candidate = world.probe("a1", "1.0")
    wrong = registry.Credentials(good.user, good.password + "-wrong", good.source)
    with registry.Session(world.repository, wrong, QUICK_RETRY) as session:
        auth_dir = session.auth_file.parent
        with pytest.raises(registry.RegistryAuthError) as refused:
            world.new_publisher(session).publish([candidate], world.work / "test-records",
                                             world.work / "audit-records")
    assert not auth_dir.exists()  # the private auth file is gone with the session
    message = str(refused.value)
    assert "refused the credentials of user 'publisher'" in message and world.server.address in message
    assert wrong.password not in message + capsys.readouterr().out
    assert "wrong" not in repr(wrong)
    with registry.Session(world.repository, good, QUICK_RETRY) as session:
        assert session.tags() == []  # nothing was pushed
        [outcome] = world.new_publisher(session).publish(
            [candidate], world.work / "test-records", world.work / "audit-records")
        assert session.manifest(outcome.immutable_tag) is not None


# --- signatures and attestations ----------------------------------------------------------------

PASSPHRASE = b"a passphrase for the tests"


def verify(reference: str, key: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = cli.main(["verify", reference, "--key", str(key)])
    out = capsys.readouterr().out
    print(out)
    return status, out


def test_signed_publish_verifies_and_tampering_does_not(world: World,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    private, public = signing.generate(world.work / "keys", PASSPHRASE)
    signer = signing.Signer(signing.decrypt(private.read_bytes(), PASSPHRASE, str(private)),
                            str(private))
    signed = world.relabelled("signed", publish.Candidate(world.base.ref, world.base.target,
                                                          "runtime"))
    [outcome] = world.publish(signed, signer=signer)
    reference = world.repository.tag(outcome.immutable_tag)
    status, out = verify(reference, public, capsys)
    assert status == 0 and "verify: verified" in out and "1 valid signature(s)" in out
    assert all(kind in out for kind in trust.REQUIRED_PREDICATES)
    with registry.Session(world.repository, None, QUICK_RETRY) as session:
        checked = trust.check(session, outcome.digest, trust.load_public_key(public))
        provenance = checked.attestations["https://slsa.dev/provenance/v1"]
        gate_records = checked.attestations["https://python-base.dev/attestations/gates/v1"]
    assert provenance["buildDefinition"]["externalParameters"]["versions.yaml"]["sha256"] == \
        world.base.target.python.sha256
    assert gate_records["test"]["outcome"] == "passed" and gate_records["audit"]["status"] == "passed"

    # The same content again: nothing is pushed, signed or attached.
    before = world.all_tags()
    [again] = world.publish(world.relabelled("signed-again", signed), signer=signer)
    assert again.status == "unchanged" and world.all_tags() == before

    # Another key does not verify it.
    _, stranger = signing.generate(world.work / "stranger", PASSPHRASE)
    status, out = verify(reference, stranger, capsys)
    assert status == 1 and "NOT VERIFIED: a signature does not verify with the key" in out

    # A tampered attestation (the predicate changed, the signature kept) does not verify.
    att = trust.attachment_tag(outcome.digest, "att")
    with registry.Session(world.repository, None, QUICK_RETRY) as session:
        layers = session.get_artifact(att)
        assert layers is not None and len(layers) == 3
        envelope = json.loads(layers[1].data)
        statement = json.loads(base64.b64decode(envelope["payload"]))
        statement["predicate"]["runDetails"]["builder"]["id"] = "forged"
        envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
        layers[1] = oci.ArtifactLayer(layers[1].media_type, json.dumps(envelope).encode(),
                                           layers[1].annotations)
        session.put_artifact(att, layers)
    status, out = verify(reference, public, capsys)
    assert status == 1 and "an attestation's signature does not verify with the key" in out
    assert "no valid https://slsa.dev/provenance/v1 attestation" in out


def test_unsigned_image_does_not_verify(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    _, public = signing.generate(world.work / "keys", PASSPHRASE)
    plain = world.relabelled("plain", publish.Candidate(world.base.ref, world.base.target,
                                                        "runtime"))
    [outcome] = world.publish(plain)
    status, out = verify(world.repository.tag(outcome.immutable_tag), public, capsys)
    assert status == 1 and "NOT VERIFIED: not signed: " in out
    assert cli.main(["verify", f"{world.repository.name}:no-such-tag", "--key",
                     str(public)]) == 2


def test_a_late_publish_of_an_older_build_never_moves_rolling_tags_back(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    # Two pipelines: the newer one publishes first, the older one's publish runs late.
    order = "LABEL org.python-base.build-order={}\n"
    newer = world.image("newer", PROBE.replace("{version}", "2.0")
                        + order.format("20991231.99999999999"))
    older = world.image("older", PROBE.replace("{version}", "1.0")
                        + order.format("20000101.00000000000"))
    [first] = world.publish(newer)
    [late] = world.publish(older)
    assert late.status == "published" and world.digest(late.immutable_tag) == late.digest
    assert late.kept == {tag: "20991231.99999999999" for tag in rolling(older)}
    assert list(late.tags) == [late.immutable_tag]
    for tag in rolling(older):
        assert world.digest(tag) == first.digest, tag
    assert f"{rolling(older)[0]} serves a newer build (20991231.99999999999 > " \
        "20000101.00000000000); left where it is" in capsys.readouterr().out


def test_registry_lost_while_signing_moves_nothing_and_the_rerun_signs(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = signing.generate(world.work / "keys", PASSPHRASE)
    signer = signing.Signer(signing.decrypt(private.read_bytes(), PASSPHRASE, str(private)),
                            str(private))
    v1, v2 = world.probe("s1", "1.0"), world.probe("s2", "2.0")
    [one] = world.publish(v1, signer=signer)

    def kill(step: str) -> None:  # right after the immutable tag, before the signature
        if step == "immutable":
            os.kill(world.server.pid, signal.SIGKILL)
            os.waitpid(world.server.pid, 0)

    with pytest.raises(registry.RegistryError, match=world.server.address):
        world.publish(v2, signer=signer, after_write=kill)
    world.server = local_registry.start(world.server.directory, free_port_of(world))
    for tag in rolling(v2):
        assert world.digest(tag) == one.digest, tag  # nothing moved to an unsigned digest
    [rerun] = world.publish(v2, signer=signer)
    assert rerun.status == "published"
    for tag in rolling(v2):
        assert world.digest(tag) == rerun.digest
    status, out = verify(world.repository.tag(rolling(v2)[0]), public, capsys)
    assert status == 0, out


# --- every platform under one index ------------------------------------------------------------
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}


def on_every_platform(world: World) -> list[Image]:
    """The world's runtime image on each of versions.yaml's platforms (arm64: emulated)."""
    found = []
    for platform in MATRIX.platforms:
        target = MATRIX.on(world.base.target, platform)
        image = Image(target, "runtime", tags.local_ref(MATRIX, target, "runtime"))
        image.inspect()  # missing: fails, saying to build
        found.append(image)
    return found


def test_every_platform_is_served_by_one_index_that_docker_and_podman_resolve(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """An image per platform, each under `<immutable>-<arch>`, joined into an index under every
    tag, the index signed and each image signed and attested (verify checks all of it); a
    second publish of the same content pushes nothing; Docker and Podman each pull the platform
    they ask for from the rolling tag."""
    bases = on_every_platform(world)
    probes = [world.probe(f"multi-{b.target.arch}", "2.0", b) for b in bases]
    private, public = signing.generate(world.work / "keys", PASSPHRASE)
    signer = signing.Signer(signing.decrypt(private.read_bytes(), PASSPHRASE, str(private)),
                            str(private))
    [outcome] = world.publish(*probes, platforms=MATRIX.platforms, signer=signer)
    assert outcome.status == "published"
    assert list(outcome.platforms) == list(MATRIX.platforms)
    with registry.Session(world.repository, None, QUICK_RETRY) as session:
        for tag in [outcome.immutable_tag, *rolling(probes[0])]:
            found = session.manifest(tag)
            assert found is not None and found.is_index, tag
            assert found.digest == outcome.digest and found.platforms == outcome.platforms, tag
        for probe in probes:
            platform, arch = probe.target.platform, probe.target.arch
            image = session.manifest(f"{outcome.immutable_tag}-{arch}")
            assert image is not None and image.digest == outcome.platforms[platform]
            assert image.config_digest == engine.image_id(probe.ref)
    changelog = Path(outcome.changelog["markdown"]).read_text()
    assert all(f"| {p} image | {d} |" in changelog for p, d in outcome.platforms.items())
    status, out = verify(world.repository.tag(rolling(probes[0])[0]), public, capsys)
    assert status == 0 and "verify: verified" in out, out
    assert f"index over {', '.join(MATRIX.platforms)}" in out
    assert all(f"verify: {p}: " in out for p in MATRIX.platforms)

    before = world.all_tags()
    again = [world.relabelled(f"multi-{p.target.arch}-rebuilt", p) for p in probes]
    [noop] = world.publish(*again, platforms=MATRIX.platforms)
    assert noop.status == "unchanged" and noop.digest == outcome.digest
    assert world.all_tags() == before

    reference = world.repository.tag(rolling(probes[0])[-1])
    podman = host.program("podman")
    for probe in probes:
        platform, arch = probe.target.platform, probe.target.arch
        docker("pull", "--quiet", "--platform", platform, reference, timeout=600)
        try:
            ran = docker("run", "--rm", "--platform", platform, "--entrypoint", "uname",
                         reference, "-m")
            assert ran.stdout.strip() == MACHINE[arch]
        finally:
            docker("image", "rm", reference, check=False)
        pulled = subprocess.run([podman, "pull", "--quiet", "--tls-verify=false", "--arch", arch,
                                 reference], capture_output=True, text=True, timeout=600,
                                check=False)
        assert pulled.returncode == 0, pulled.stderr
        try:
            shown = subprocess.run([podman, "image", "inspect", "--format",
                                    "{{.Os}}/{{.Architecture}}", pulled.stdout.strip()],
                                   capture_output=True, text=True, check=True, timeout=60)
            assert shown.stdout.strip() == platform
        finally:
            subprocess.run([podman, "rmi", "--force", pulled.stdout.strip()],
                           capture_output=True, check=False, timeout=60)


def test_a_platform_without_passing_gates_or_missing_blocks_the_index(world: World) -> None:
    """No half-published tag: one platform's failed (here: missing) records, or a platform
    left out of the selection, refuses the whole group before anything is pushed."""
    bases = on_every_platform(world)
    gated = world.probe("gated", "3.0", bases[0])
    ungated = world.probe("ungated", "3.0", bases[-1], gated=False)
    with pytest.raises(publish.PublishError, match="refusing to publish") as refused:
        world.publish(gated, ungated, platforms=MATRIX.platforms)
    assert ungated.ref in str(refused.value)
    with pytest.raises(publish.PublishError, match="select every platform"):
        world.publish(gated, platforms=MATRIX.platforms)
    assert world.all_tags() == []
