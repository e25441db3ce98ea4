"""The SQLite store: schema versions, the one-open-incident constraint, concurrent writers."""

import subprocess
import sys
import time

import pytest

from siqd.store import SchemaTooNew, StoreError, open_store
from siqd.store.schema import SCHEMA_VERSION
from conftest import BIN


def test_new_store_at_current_version(store_url):
    store = open_store(store_url)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_sqlite_uses_wal(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    assert store.scalar("PRAGMA journal_mode") == "wal"
    store.close()


def test_migrate_twice_is_harmless(store_url):
    open_store(store_url).close()
    store = open_store(store_url)
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_newer_schema_is_refused(store_url):
    store = open_store(store_url)
    with store.transaction():
        store.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    store.close()
    with pytest.raises(SchemaTooNew, match="upgrade siq"):
        open_store(store_url)


def test_one_open_incident_per_series(store_url):
    store = open_store(store_url)
    values = dict(host="h", rule="r", series="mount=/", title="t", severity="warning", status="open",
                  source="rule", started_at=1.0, opened_at=1.0)
    with store.transaction():
        store.create_incident(**values)
    with pytest.raises(StoreError):
        with store.transaction():
            store.create_incident(**values)
    assert len(store.list_incidents()) == 1
    store.close()


def test_unwritable_folder_is_clean_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot create the folder"):
        open_store(f"sqlite:///{blocker / 'sub' / 's.db'}")


WRITERS = 20
WRITES_EACH = 2


def test_writers_beside_daemon_never_locked(siq):
    siq.write_config('interval = "1s"\n')
    daemon = subprocess.Popen([str(BIN / "siqd"), "run"], env=siq.env(), stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        script = (
            "import subprocess, sys\n"
            "bin, n, count = sys.argv[1], sys.argv[2], int(sys.argv[3])\n"
            "for i in range(count):\n"
            "    r = subprocess.run([bin, 'open', '--host', f'w{n}', '--title', f'job {i}'], capture_output=True, text=True)\n"
            "    if r.returncode: print(r.stderr, end=''); sys.exit(1)\n"
            "    r = subprocess.run([bin, 'comment', r.stdout.split('#')[1].split(':')[0], f'note {i}'], capture_output=True, text=True)\n"
            "    if r.returncode: print(r.stderr, end=''); sys.exit(1)\n"
        )
        writers = [
            subprocess.Popen([sys.executable, "-c", script, str(BIN / "siqctl"), str(n), str(WRITES_EACH)],
                             env=siq.env(), stdout=subprocess.PIPE, text=True)
            for n in range(WRITERS)
        ]
        outputs = [(writer.wait(300), writer.stdout.read()) for writer in writers]
    finally:
        daemon.terminate()
        daemon.wait(15)
    assert [code for code, _ in outputs] == [0] * WRITERS, [out for _, out in outputs]
    assert "locked" not in daemon.stderr.read()
    store = siq.store()
    assert store.scalar("SELECT COUNT(*) FROM incidents WHERE rule = 'manual'") == WRITERS * WRITES_EACH
    assert store.scalar("SELECT COUNT(*) FROM events WHERE kind = 'comment'") == WRITERS * WRITES_EACH
    assert store.scalar("SELECT COUNT(DISTINCT ts) FROM samples") >= 2
    store.close()


def test_rolled_back_series_not_reused(tmp_path):
    from siqd.collect.host import Sample

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.write_samples("h", 1.0, [Sample("disk.used_percent", {"mount": "/data"}, 52.0)])
            raise RuntimeError("round failed")
    with store.transaction():
        store.write_samples("h", 2.0, [Sample("net.in_bytes_per_s", {"nic": "eth9"}, 10.0)])
        store.write_samples("h", 3.0, [Sample("disk.used_percent", {"mount": "/data"}, 53.0)])
    rows = store.rows("SELECT r.metric, s.value FROM samples s JOIN series r ON r.id = s.series_id ORDER BY s.ts")
    assert [(row["metric"], row["value"]) for row in rows] == [("net.in_bytes_per_s", 10.0),
                                                               ("disk.used_percent", 53.0)]
    store.close()


def test_password_masked_everywhere():
    from siqd.config import location_secrets, masked_location

    url = "postgresql://siq:pa%25ss@db/siq?password=Secr3t&sslmode=require"
    masked = masked_location(url)
    assert "pa%25ss" not in masked
    assert "Secr3t" not in masked
    assert "sslmode=require" in masked
    assert set(location_secrets(url)) == {"pa%25ss", "pa%ss", "Secr3t"}
