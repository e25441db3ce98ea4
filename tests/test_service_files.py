"""The example systemd units pass `systemd-analyze verify` and keep the hardening docs/install.md describes."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import BIN

EXAMPLES = Path(__file__).parent.parent / "examples" / "systemd"

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def verify(unit: Path, tmp_path: Path, installed_path: str, user: bool = False) -> subprocess.CompletedProcess:
    """Verify a copy of `unit` whose siqd path points at this checkout's siqd.

    The units name the usual install locations; verify checks that the
    command exists, so the copy points at the siqd the tests installed.
    """
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(installed_path, str(BIN / "siqd")))
    command = ["systemd-analyze", *(["--user"] if user else []), "verify", str(copy)]
    env = dict(os.environ)
    if user:  # a user manager needs a runtime folder, which a CI shell may lack
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


def test_system_unit_verifies(tmp_path):
    result = verify(EXAMPLES / "siqd.service", tmp_path, "/usr/local/bin/siqd")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_user_unit_verifies(tmp_path):
    result = verify(EXAMPLES / "siqd-user.service", tmp_path, "%h/.local/bin/siqd", user=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_system_unit_hardening():
    text = (EXAMPLES / "siqd.service").read_text()
    for line in ("Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/siq",
                 "User=siq", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines()
