"""Shared fixtures: a real `huimin server` process on 127.0.0.1 with a temp data folder."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytest_plugins = ["tests.cluster_fixtures"]

ACCESS_KEY = "HMTESTACCESSKEY00001"
SECRET_KEY = "test-secret-key-0123456789abcdefghij"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running `huimin server` process."""

    endpoint: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def drive_dirs(self) -> list[Path]:
        return sorted(self.data_dir.glob("drive-*"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "HUIMIN_ROOT_ACCESS_KEY": ACCESS_KEY,
        "HUIMIN_ROOT_SECRET_KEY": SECRET_KEY,
        **(extra_env or {}),
    }
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "huimin", "server", str(data_dir), "--listen", f"127.0.0.1:{port}"],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
    )
    log_file.close()  # the child holds its own descriptor; ours would leak (ResourceWarning)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{endpoint}/_huimin/health/ready", timeout=1) as r:
                if r.status == 200:
                    return Server(endpoint, data_dir, process, log_path)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the tests that only need a working endpoint."""
    srv = start_server(tmp_path_factory.mktemp("shared") / "data")
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server for tests that break drives or kill the process."""
    srv = start_server(tmp_path / "data")
    yield srv
    srv.stop()


@pytest.fixture
def s3(server: Server) -> S3Client:
    return boto3_client(server)


def boto3_client(server: Server, **config: Any) -> S3Client:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        config=Config(retries={"max_attempts": 1}, **config),
    )


_bucket_counter = [0]


@pytest.fixture
def bucket(s3: S3Client) -> str:
    """A fresh, empty bucket on the shared server."""
    _bucket_counter[0] += 1
    name = f"test-{os.getpid()}-{_bucket_counter[0]}"
    s3.create_bucket(Bucket=name)
    return name
