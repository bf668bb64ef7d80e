"""A throwaway PostgreSQL cluster on 127.0.0.1 for the records tests (Debian's postgresql-15:
initdb and pg_ctl into a temporary folder; `make test` installs it)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_BIN = Path(os.environ.get("FACEMASK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()


def require() -> None:
    """Skip the test when PostgreSQL is not installed here (fail in CI: `make test` installs it)."""
    import pytest

    if not available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL 15 is missing: `make test` installs it")
        pytest.skip("PostgreSQL 15 (initdb, pg_ctl) is not installed")


class Cluster:
    """A cluster in `folder`, listening on 127.0.0.1:port only (no Unix socket outside it)."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.url = f"postgresql+psycopg://facemask@127.0.0.1:{port}/postgres"

    def _run(self, *argv: str, check: bool = True) -> None:
        """As root, the server's tools run as the postgres user (initdb refuses root)."""
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=check, capture_output=True, cwd=self.folder)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.folder / "data"), "-U", "facemask",
                  "-A", "trust", "-E", "UTF8", "--no-sync")  # fmt: skip

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -F -c max_connections=20"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-o", options, "-w",
                  "-t", "30", "-l", str(self.folder / "log"), "start")  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate",
                  "-w", "stop", check=False)  # fmt: skip


@contextmanager
def postgres(port: int) -> Iterator[Cluster]:
    """A started cluster; stopped and removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="facemask-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = Cluster(folder, port)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
