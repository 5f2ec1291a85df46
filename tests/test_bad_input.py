"""Bad input through the real CLI: each bad file is one summary line with its reason; the rest is ingested."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from tests.support import run_cli

GOOD = "Otters hold hands while sleeping so they do not drift apart.\n"


def _drop_privileges() -> list[str]:
    """As root every file is readable; run the CLI as `nobody` so an unreadable file is really unreadable."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test unreadable files as root"
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every user can enter (pytest's own tmp folders are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="citewise-bad-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_bad_files_are_reported_and_the_rest_is_ingested(open_tmp: Path) -> None:
    tmp_path = open_tmp
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text(GOOD)
    (docs / "empty.md").write_text("")
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<garbage>>\n%%EOF this is not a pdf")
    (docs / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (docs / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me br\xfbl\xe9e is flamb\xe9ed at the table in Lyon.\n".encode("latin-1"))
    with open(docs / "huge.txt", "wb") as fh:  # 200 MB, sparse: costs no disk
        fh.truncate(200 * 1024 * 1024)
    (docs / "loop").mkdir()
    (docs / "loop" / "again").symlink_to(docs)
    (docs / "secret.md").write_text("# Secret\n\nUnreadable content.\n")
    (docs / "secret.md").chmod(0o000)
    for p in [docs, docs / "loop"]:
        p.chmod(0o777)
    index = tmp_path / "index"
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg"),
           # `nobody` cannot start this machine's interpreter anew (it lives under /root), so parse in-process
           "CITEWISE_INGEST__PARSE_WORKERS": "0"}

    result = run_cli("ingest", str(docs), "--index", str(index), "--json", env=env, prefix=_drop_privileges(),
                     cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # exit code says some failed
    summary = json.loads(result.stdout)
    reasons = {Path(row["path"]).name: row["reason"] for row in summary["failed"]}
    assert "empty file" in reasons["empty.md"]
    assert "pdf" in reasons["corrupt.pdf"]
    assert "binary content" in reasons["binary.txt"]
    assert "200.0 MB" in reasons["huge.txt"] and "max_file_mb" in reasons["huge.txt"]
    assert "permission denied" in reasons["secret.md"].lower()
    assert len(summary["failed"]) == 5
    skipped = {Path(row["path"]).name: row["reason"] for row in summary["skipped"]}
    assert "symbolic link loop" in skipped["again"]
    warnings = {Path(row["path"]).name: row["warning"] for row in summary["warnings"]}
    assert "not UTF-8" in warnings["latin1.txt"]
    assert summary["ingested"] == 2 and summary["index"]["documents"] == 2

    # The index is intact and answers; the mis-encoded file was decoded, not mangled.
    found = run_cli("search", "crème brûlée", "--index", str(index), "--json", "-k", "1", env=env)
    assert found.returncode == 0, found.stderr
    assert "Café crème brûlée" in json.loads(found.stdout)[0]["text"]
    listed = run_cli("docs", "list", "--index", str(index), "--json", env=env)
    assert sorted(Path(d["source"]).name for d in json.loads(listed.stdout)) == ["good.txt", "latin1.txt"]


def test_clear_errors_for_missing_paths_and_indexes(tmp_path: Path) -> None:
    missing = run_cli("ingest", str(tmp_path / "nope"), "--index", str(tmp_path / "ix"), "--json")
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["failed"][0]["reason"] == "no such file or directory"
    no_index = run_cli("search", "anything", "--index", str(tmp_path / "absent"))
    assert no_index.returncode == 2
    assert "no index at" in no_index.stderr and "citewise ingest" in no_index.stderr
    assert "Traceback" not in no_index.stderr
    subprocess.run(["true"], check=True)
