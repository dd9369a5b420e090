"""Build the hardened images (images/python-base/Dockerfile) for the selected matrix entries."""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from pybase.build import sbom
from pybase.core import label, paths, settings, tags
from pybase.core.matrix import Matrix, Target, Variant
from pybase.core.steps import Step, default_jobs, run_all
from pybase.infra import emulation, engine
from pybase.upstream import cpython_build

CONTEXT = paths.REPO / "images" / "python-base"


@dataclass(frozen=True)
class Built:
    target: Target
    variant: Variant
    ref: str
    tags: list[str]
    seconds: float


def _git(*args: str) -> str | None:
    """git's output in the repository, or None (no git, or not a checkout: an exported tree)."""
    git_program = shutil.which("git")
    if git_program is None:
        return None
    done = subprocess.run([git_program, "-C", str(paths.REPO), *args], capture_output=True,
                          text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def git_revision() -> str:
    """HEAD's commit, marked -dirty when the work tree differs (so a label never lies)."""
    head = _git("rev-parse", "HEAD")
    if head is None:
        return "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return head + ("-dirty" if dirty else "")


def build_order(build_date: date) -> str:
    """label.BUILD_ORDER: the build day first, then HEAD's commit time, so that a later commit,
    or the same commit rebuilt on a later day, sorts after."""
    committed = _git("log", "-1", "--format=%ct") or "0"
    return f"{build_date:%Y%m%d}.{int(committed):011d}"


def upstream_digest(target: Target) -> str:
    """The image ID of the entry's upstream image, which must exist (made by bootstrap)."""
    found = engine.image_id(target.upstream_image)
    if found is None:
        raise engine.EngineError(
            f"upstream image {target.upstream_image} is missing; run `nox -s bootstrap` first"
        )
    return found


def build_args(target: Target, variant: Variant, *, digest: str, os_upgrade_stamp: str,
               build_date: str, revision: str) -> list[str]:
    """`--build-arg` flags for images/python-base/Dockerfile: every ARG it declares, one home."""
    values = {
        "UPSTREAM_IMAGE": target.upstream_image,
        "UPSTREAM_DIGEST": digest,
        "CPYTHON_TREE": cpython_build.tree_of(target),
        "VARIANT": variant,
        "OS_UPGRADE_STAMP": os_upgrade_stamp,
        "BUILD_DATE": build_date,
        "GIT_REVISION": revision,
        **emulation.environment(target.arch),  # QEMU_CPU, for another platform's RUN steps
    }
    return [flag for name, value in values.items() for flag in ("--build-arg", f"{name}={value}")]


def build(matrix: Matrix, target: Target, variant: Variant, build_date: date | None = None,
          *, quiet: bool = False) -> Built:
    started = time.monotonic()
    build_date = build_date or datetime.now(UTC).date()
    digest = upstream_digest(target)
    revision = git_revision()
    stamp = build_date.strftime(matrix.tags.date_format)
    ref = tags.local_ref(matrix, target, variant)
    staged = f"pybase-staged:{uuid.uuid4().hex[:12]}"
    all_tags = tags.tags_for(matrix, target, variant, build_date)
    labels = {
        label.TITLE: f"{matrix.image.name} ({variant})",
        label.DESCRIPTION: f"{matrix.image.title}: Python {target.python.version} on Debian "
                           f"{target.release}, {variant} variant",
        label.VERSION: all_tags[0],
        label.REVISION: revision,
        label.CREATED: f"{build_date.isoformat()}T00:00:00Z",  # RFC 3339; the day is what varies
        label.SOURCE: matrix.image.source,
        label.LICENSES: matrix.image.licenses,
        label.VENDOR: matrix.image.vendor,
        label.BASE_NAME: target.upstream_image,
        label.BASE_DIGEST: digest,
        label.BUILD_ORDER: build_order(build_date),
    }
    args = [
        # Built under a private tag: the image's names move only once the SBOM is in it.
        "build", "--progress=plain", "--platform", target.platform, str(CONTEXT), "-t", staged,
        # The OS upgrade runs once per build day; a scheduled run passes its own stamp to take
        # the fixes of today.
        *build_args(target, variant, digest=digest,
                    os_upgrade_stamp=settings.get(settings.OS_UPGRADE_STAMP) or stamp,
                    build_date=build_date.isoformat(), revision=revision),
    ]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    # Locally, another platform's tags end in its architecture (one image per name).
    local_tags = [f"{tag}{target.local_suffix}" for tag in all_tags]
    site_ca = settings.get(settings.BUILD_CA)
    if site_ca:
        if not Path(site_ca).is_file():
            raise engine.EngineError(f"{settings.BUILD_CA}={site_ca}: no such file")
        args += ["--secret", f"id=build-ca,src={site_ca}"]
    engine.docker(*args, capture=quiet)
    try:
        # The SBOM describes exactly this image and ships inside it (one more layer); then
        # every tag moves onto that image at once. Until then a concurrent `FROM ref` (another
        # build, a test) still sees the previous complete image.
        sbom.embed(ref, [f"{matrix.image.name}:{tag}" for tag in local_tags], source=staged)
    finally:
        engine.docker("image", "rm", staged, capture=True, check=False)  # the tag (and image)
    return Built(target, variant, ref, all_tags, time.monotonic() - started)


def build_all(matrix: Matrix, targets: list[Target], variants: Sequence[Variant], *,
              jobs: int | None = None, echo: Callable[[str], None] = print) -> list[Built]:
    """Every variant of every target, `jobs` targets at a time (an emulated build spends most
    of its time on one core); a target's variants one after another, each reusing the stages
    the one before built. Each target's build output goes to reports/build/<target>.log."""
    def variants_of(target: Target) -> list[Built]:
        made = []
        for variant in variants:
            built = build(matrix, target, variant)
            echo(f"build: {built.ref} ({len(built.tags)} tags) in {built.seconds:.1f} s")
            made.append(built)
        return made

    # The emulated builds first: they are the long ones.
    ordered = sorted(targets, key=lambda t: emulation.is_native(t.arch))
    plan = [Step(target.name, engine.logged(f"build: {target.name}",
                                            paths.REPORTS / "build" / f"{target.name}.log",
                                            functools.partial(variants_of, target), echo))
            for target in ordered]
    return [b for made in run_all(plan, jobs=jobs or default_jobs()) for b in made]
