"""The starter rules fire on real induced conditions: a full filesystem, no free inodes, all cores busy.

Each rule keeps its metric and thresholds; only its `for` is set to zero so
the test need not hold the condition for minutes. Memory, swap and load are
not induced here: filling 95% of the machine's memory or raising its
15-minute load would disturb everything else running on it.
"""

import os
import subprocess
import sys
import time

import pytest
import tomli_w

from siqd.config import default_rule_tables


def rules_without_wait(mount) -> list[dict]:
    tables = []
    for table in default_rule_tables():
        if "predict" in table:
            continue
        table = dict(table, **{"for": "0s"})
        if table["metric"].startswith("disk."):
            table["labels"] = {"mount": str(mount)}
        tables.append(table)
    return tables


def configure(siq, mount) -> None:
    siq.write_config(tomli_w.dumps({"rule": rules_without_wait(mount)}))


def opened_rules(siq) -> set[str]:
    return {incident["rule"] for incident in siq.siqctl_json("incidents", "list")}


def test_disk_full_fires_on_full_tmpfs(siq, tmpfs):
    from conftest import fill

    configure(siq, tmpfs)
    fill(tmpfs, 95)
    assert siq.siqd("run", "--once").returncode == 0
    assert "disk-full" in opened_rules(siq)


def test_inodes_full_fires_without_free_inodes(siq, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "inodes"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64", "tmpfs", str(mount)], check=True)
    try:
        configure(siq, mount)
        for number in range(200):
            try:
                (mount / f"f{number}").write_text("")
            except OSError:
                break
        assert siq.siqd("run", "--once").returncode == 0
        assert "inodes-full" in opened_rules(siq)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_cpu_busy_fires_with_all_cores_busy(siq, tmp_path):
    configure(siq, tmp_path)
    loops = [subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 8\nwhile time.time() < end: pass"])
             for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(1)
        assert siq.siqd("run", "--once").returncode == 0
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert "cpu-busy" in opened_rules(siq)


def test_defaults_quiet_on_this_machine(siq):
    """The starter rules, with their real `for`, open nothing on a machine that is merely working."""
    siq.write_config("")
    for _ in range(3):
        assert siq.siqd("run", "--once").returncode == 0
    assert opened_rules(siq) == set()
