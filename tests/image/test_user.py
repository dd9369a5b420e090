"""The unprivileged user: fixed numeric ids, no login, and the ownership downstream builds need."""

from __future__ import annotations

from typing import Any

import pytest
from support import APP_UID, Image


@pytest.mark.every_platform
def test_image_runs_as_the_numeric_user(image: Image) -> None:
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
    assert image.inspect()["Config"]["User"] == f"{APP_UID}:{APP_UID}"


@pytest.mark.every_platform
def test_app_user_and_group(host: Any) -> None:
    user = host.user("app")
    assert (user.uid, user.gid, user.group) == (APP_UID, APP_UID, "app")
    assert user.shell == "/usr/sbin/nologin"
    assert user.home == "/home/app"
    assert host.check_output("id -u") == str(APP_UID)


def test_app_user_has_no_password(root_host: Any) -> None:
    password_field = root_host.check_output("getent shadow app").split(":")[1]
    assert password_field in {"!", "*", "!*"}, "the account must be locked"


def test_home_belongs_to_the_user(host: Any) -> None:
    home = host.file("/home/app")
    assert home.is_directory and home.uid == APP_UID and home.gid == APP_UID
    assert host.run("touch /home/app/.probe && rm /home/app/.probe").rc == 0


def test_app_code_and_venv_stay_read_only_for_the_user(host: Any) -> None:
    for path in ("/app", "/opt/venv", "/opt/venv/bin"):
        f = host.file(path)
        assert (f.uid, f.mode) == (0, 0o755), path
        assert host.run(f"touch {path}/.probe").rc != 0, f"{path} is writable by the app user"
