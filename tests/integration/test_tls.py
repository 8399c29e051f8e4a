"""TLS: the S3 listener over HTTPS, and gateway <-> node traffic over HTTPS with the nodes'
certificates verified against a CA (nodes refuse plain HTTP)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from tests.conftest import ACCESS_KEY, SECRET_KEY, free_port


def make_certs(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (ca, cert, key)."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.pem", "k.pem", "c.csr", "c.pem")
    )
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=huimin-test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    ext = folder / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


def wait_port(port: int, deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "huimin", *args], stdout=out, stderr=subprocess.STDOUT, env=env
        )


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, list[int]]]:
    """6 nodes and a gateway, every hop over TLS: (S3 endpoint, CA file, node ports)."""
    tmp_path = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_certs(tmp_path)
    ports = [free_port() for _ in range(6)]
    topology = tmp_path / "topology.toml"
    lines = ['name = "tls"', "version = 1", "[erasure]", "data_shards = 8", "parity_shards = 4"]
    for i, port in enumerate(ports, 1):
        lines += [
            "[[nodes]]",
            f'name = "n{i}"',
            f'address = "127.0.0.1:{port}"',
            'drives = [{ name = "d1", capacity_bytes = 1000000000 },'
            ' { name = "d2", capacity_bytes = 1000000000 }]',
        ]
    topology.write_text("\n".join(lines) + "\n")
    common = (
        f'topology = "{topology}"\ndeployment_id = "tls-dep"\ncluster_secret = "s3cret-tls"\n'
        f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n'
    )
    procs = []
    for i, port in enumerate(ports, 1):
        config = tmp_path / f"n{i}.toml"
        config.write_text(
            f'name = "n{i}"\nlisten = "127.0.0.1:{port}"\ndrive_root = "{tmp_path / f"n{i}"}"\n'
            + common
        )
        procs.append(spawn(["node", "--config", str(config)], tmp_path / f"n{i}.log"))
    gw_port = free_port()
    config = tmp_path / "gw.toml"
    config.write_text(
        f'listen = "127.0.0.1:{gw_port}"\ndata_dir = "{tmp_path / "gw"}"\n'
        f'root_access_key = "{ACCESS_KEY}"\nroot_secret_key = "{SECRET_KEY}"\n'
        f'node_tls_ca_file = "{ca}"\n' + common
    )
    for port in ports:
        wait_port(port)
    procs.append(spawn(["gateway", "--config", str(config)], tmp_path / "gw.log"))
    try:
        wait_port(gw_port)
        yield f"https://127.0.0.1:{gw_port}", ca, ports
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "gw.log").read_text()


def test_s3_and_node_traffic_over_tls(tls_cluster: tuple[str, Path, list[int]]) -> None:
    endpoint, ca, _ = tls_cluster
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        verify=str(ca),
        config=Config(retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + 30
    while True:  # the gateway answers once it has loaded; buckets need the nodes too
        try:
            s3.create_bucket(Bucket="secure")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    body = os.urandom(3 * 1024 * 1024 + 5)
    s3.put_object(Bucket="secure", Key="k", Body=body)
    assert s3.get_object(Bucket="secure", Key="k")["Body"].read() == body


def test_plain_http_is_refused_by_gateway_and_nodes(
    tls_cluster: tuple[str, Path, list[int]],
) -> None:
    endpoint, _, node_ports = tls_cluster
    urls = [endpoint.replace("https", "http")] + [f"http://127.0.0.1:{p}" for p in node_ports]
    for url in urls:
        with pytest.raises(OSError):
            urllib.request.urlopen(url + "/_huimin/health/live", timeout=5)
