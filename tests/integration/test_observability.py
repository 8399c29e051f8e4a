"""Observability end to end: a real ``huimin server`` (and a real cluster) scraped by a real
Prometheus (Debian package ``prometheus``; ``.ci/run`` installs it).

What a user of the monitoring notices: every metric family the dashboards and alerts rely on is
exposed; ``promtool`` accepts the shipped config and rules; every recording rule, every alert's
signal and every dashboard query returns data from a Prometheus that scraped a server under a
small load; alerts stay quiet while all is well and fire when drives disappear or a node is
killed; readiness follows quorum; labels never carry bucket or key names; responses carry
``x-amz-request-id`` and ``x-amz-id-2``; logs carry neither the secret key nor object bytes.

The Prometheus under test runs the shipped rules with every ``for:`` set to 0 s, a 2 s scrape
and a 1 s evaluation interval, so an alert fires within seconds of its condition.
"""

from __future__ import annotations

import base64
import importlib
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from erasure.constants import FRAME_HASH_BYTES, SHARD_HEADER_BYTES
from erasure.framing import parse_shard_header
from gateway.metrics import OPERATIONS
from storage.metrics import DRIVE_OPERATIONS
from tests.conftest import Server, boto3_client, free_port, start_server
from tests.integration.boto3_support import payload

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "ansible" / "roles" / "monitoring" / "files"
DASHBOARDS = sorted((FILES / "grafana" / "dashboards").glob("*.json"))
CLUSTER_FIXTURES = REPO / "tests" / "cluster_fixtures.py"
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None or PROMTOOL is None,
    reason="needs Prometheus: apt-get install prometheus (.ci/run does)",
)

# Families the dashboards, rules and the issue name. Those marked True must have samples after
# the load; the others are present with samples only once something happened (an error...).
FAMILIES = {
    "huimin_s3_requests": True,
    "huimin_s3_request_duration_seconds": True,
    "huimin_s3_received_bytes": True,
    "huimin_s3_sent_bytes": True,
    "huimin_s3_requests_in_flight": True,
    "huimin_erasure_shards_written": True,
    "huimin_erasure_degraded_reads": True,
    "huimin_erasure_bitrot_detected": True,
    "huimin_heal_shards_rebuilt": True,
    "huimin_heal_queue_depth": True,
    "huimin_heal_scan_progress_ratio": True,
    "huimin_drive_healthy": True,
    "huimin_drive_used_bytes": True,
    "huimin_drive_free_bytes": True,
    "huimin_drive_total_bytes": True,
    "huimin_drive_io_duration_seconds": True,
    "huimin_drive_io_errors": True,
    "huimin_erasure_set_drives": True,
    "huimin_erasure_set_drives_healthy": True,
    "huimin_erasure_set_read_quorum_drives": True,
    "huimin_erasure_set_write_quorum_drives": True,
    "process_cpu_seconds": True,
    "process_resident_memory_bytes": True,
    "process_open_fds": True,
    "python_info": True,
}
ALLOWED_LABELS = {"operation", "status", "tenant", "drive", "set", "node", "le"}

# Grafana's variables, as the dashboards use them, replaced for Prometheus's API.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$tenant": ".*",
}
# Dashboard queries that cannot return data on the embedded server, and why; the cluster test
# checks them (and every other query) against a real distributed cluster.
NO_DATA_WHEN_EMBEDDED = {
    "min by (node) (huimin_node_reachable)": "the embedded server has no storage nodes",
}
# An alert expression is `<signal> <comparison> <number>` (see rules/huimin-alerts.yml).
ALERT_FORM = re.compile(
    r"^(?P<signal>.+)\s(?P<op>==|!=|>=|<=|>|<)\s(?P<threshold>-?[0-9.]+(?:e-?[0-9]+)?)\s*$",
    re.DOTALL,
)


def host_port(endpoint: str) -> str:
    return endpoint.removeprefix("http://").removeprefix("https://")


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def scrape(endpoint: str) -> str:
    status, _, body = http_get(endpoint + "/_huimin/metrics")
    assert status == 200
    return body.decode()


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


# --- Prometheus -------------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        status, _, body = http_get(url, timeout=10)
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", (path, params, doc)
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = (
            data["result"] if data["resultType"] == "vector" else [{"value": data["result"]}]
        )
        return result

    def wait(self, expr: str, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Poll until ``expr`` returns at least one series."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no data for {expr!r} after {timeout_s} s:\n{self.log()}")
            time.sleep(0.25)

    def alerts(self, state: str = "firing") -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return [a for a in alerts if a["state"] == state]

    def wait_firing(self, name: str, timeout_s: float = 30, **labels: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for alert in self.alerts():
                if alert["labels"]["alertname"] == name and all(
                    alert["labels"].get(k) == v for k, v in labels.items()
                ):
                    return alert
            if time.monotonic() > deadline:
                firing = [a["labels"] for a in self.alerts()]
                raise AssertionError(f"{name} {labels} did not fire; firing: {firing}")
            time.sleep(0.25)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def prometheus_config(workdir: Path, gateways: list[str], nodes: list[str]) -> Path:
    """The shipped prometheus.yml and rules, with the placeholder targets replaced, 1 s
    intervals and every alert's ``for`` at 0 s."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((FILES / "prometheus.yml").read_text())
    # 2 s: a scrape of a server on a busy CI box can take over 1 s (a timed-out scrape would
    # make `up` 0 and the series stale, and the alerts fire for the wrong reason).
    config["global"].update(scrape_interval="2s", scrape_timeout="2s", evaluation_interval="1s")
    targets = {"huimin-gateway": gateways, "huimin-node": nodes}
    jobs = []
    for job in config["scrape_configs"]:
        if targets.get(job["job_name"]):
            job["static_configs"] = [{"targets": targets[job["job_name"]]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    (workdir / "rules").mkdir(exist_ok=True)
    for rule_file in config["rule_files"]:
        doc = yaml.safe_load((FILES / rule_file).read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
        (workdir / rule_file).write_text(yaml.safe_dump(doc))
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_prometheus(workdir: Path, gateways: list[str], nodes: list[str]) -> Prometheus:
    assert PROMETHEUS is not None
    config = prometheus_config(workdir, gateways, nodes)
    port = free_port()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prom = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited:\n{prom.log()}")
        try:
            if http_get(prom.url + "/-/ready", timeout=1)[0] == 200:
                return prom
        except OSError:
            pass
        if time.monotonic() > deadline:
            prom.stop()
            raise RuntimeError(f"prometheus not ready:\n{prom.log()}")
        time.sleep(0.1)


# --- the embedded server under load -------------------------------------------------------------


@dataclass
class Load:
    bucket: str  # distinctive names: the tests look for them where they must not be
    key: str
    canary: bytes  # in every object body


@dataclass
class Stack:
    server: Server
    prom: Prometheus
    load: Load


def run_load(s3: S3Client, wrong: S3Client, bucket: str, key: str, canary: bytes) -> None:
    """A little of everything: writes (inline and shard files, multipart), reads, listings,
    and client errors (``wrong`` signs with a wrong secret key)."""
    s3.create_bucket(Bucket=bucket)
    big = canary + payload(400_000, seed=1)  # above the inline threshold: shard files
    s3.put_object(Bucket=bucket, Key=key, Body=big)
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"{key}-{i}", Body=canary * 10)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == big
    s3.head_object(Bucket=bucket, Key=key)
    s3.list_objects_v2(Bucket=bucket)
    s3.list_buckets()
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"{key}-mp")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=f"{key}-mp", UploadId=upload, PartNumber=1, Body=big)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=f"{key}-mp",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    s3.delete_object(Bucket=bucket, Key=f"{key}-0")
    expect_error("NoSuchKey", lambda: s3.get_object(Bucket=bucket, Key="missing"))
    expect_error("BucketNotEmpty", lambda: s3.delete_bucket(Bucket=bucket))
    expect_error(
        "BadDigest",
        lambda: s3.put_object(
            Bucket=bucket,
            Key=f"{key}-bad",
            Body=canary,
            ContentMD5=base64.b64encode(b"0" * 16).decode(),
        ),
    )
    expect_error("NoSuchBucket", lambda: s3.get_object(Bucket="no-such-bucket", Key="k"))
    expect_error("SignatureDoesNotMatch", wrong.list_buckets)


def load_until_rates(prom: Prometheus, s3: S3Client, wrong: S3Client, bucket: str) -> Load:
    """Run the load twice: a series appears with its first increment, so rate() sees only
    later ones. Returns once the recording rules have non-zero rates."""
    load = Load(bucket, f"patient-{uuid.uuid4().hex[:12]}", f"CANARY-{uuid.uuid4().hex}".encode())
    run_load(s3, wrong, load.bucket, load.key, load.canary)
    # The load's last request (refused signature: not routed) scraped: all its series exist.
    prom.wait('huimin_s3_requests_total{operation="Unknown", status="403"}')
    run_load(s3, wrong, load.bucket + "-2", load.key, load.canary)
    for expr in (
        "huimin:s3_requests:rate5m > 0",
        "sum(rate(huimin_s3_sent_bytes_total[1m])) > 0",
        'sum(rate(huimin_s3_requests_total{operation="Unknown", status="403"}[1m])) > 0',
        "deriv(huimin_heal_queue_depth[15m])",
    ):
        prom.wait(expr)
    return load


def wrong_secret(server: Server) -> S3Client:
    other = Server(server.endpoint, server.data_dir, server.process, server.log_path)
    other.secret_key = "not-the-secret-key-000000000000000"
    return boto3_client(other)


def expect_error(code: str, call: Callable[[], object]) -> None:
    try:
        call()
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == code
        return
    raise AssertionError(f"expected {code}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("observability")
    server = start_server(tmp / "data", {"HUIMIN_LOG_LEVEL": "DEBUG"})
    prom = None
    try:
        prom = start_prometheus(tmp / "prometheus", [host_port(server.endpoint)], [])
        prom.wait('up{job="huimin-gateway"} == 1')  # scraped once before the load
        bucket = f"bucket-{uuid.uuid4().hex[:12]}"
        load = load_until_rates(prom, boto3_client(server), wrong_secret(server), bucket)
        yield Stack(server, prom, load)
    finally:
        if prom is not None:
            prom.stop()
        server.stop()


def test_every_metric_family_is_exposed(stack: Stack):
    families = {f.name: f for f in text_string_to_metric_families(scrape(stack.server.endpoint))}
    missing = [name for name in FAMILIES if name not in families]
    assert not missing, missing
    empty = [name for name, needed in FAMILIES.items() if needed and not families[name].samples]
    assert not empty, empty


def test_labels_are_bounded_and_carry_no_names_or_data(stack: Stack):
    text = scrape(stack.server.endpoint)
    for name in (
        stack.load.bucket,
        stack.load.key,
        stack.load.canary.decode(),
        stack.server.secret_key,
    ):
        assert name not in text, name
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("huimin_"):
            continue
        for s in family.samples:
            assert set(s.labels) <= ALLOWED_LABELS, s
            operation = s.labels.get("operation")
            if operation is not None:
                allowed = DRIVE_OPERATIONS if family.name.startswith("huimin_drive") else OPERATIONS
                assert operation in allowed, s
            if "status" in s.labels:
                assert re.fullmatch(r"[1-5][0-9][0-9]", s.labels["status"]), s
    operations = {
        s.labels["operation"]
        for f in text_string_to_metric_families(text)
        if f.name == "huimin_s3_requests"
        for s in f.samples
    }
    assert {"PutObject", "GetObject", "UploadPart", "CompleteMultipartUpload"} <= operations


def test_responses_carry_request_ids(stack: Stack):
    s3 = boto3_client(stack.server)
    ok = s3.head_bucket(Bucket=stack.load.bucket)["ResponseMetadata"]
    try:
        s3.get_object(Bucket=stack.load.bucket, Key="missing")
        raise AssertionError("expected NoSuchKey")
    except ClientError as exc:
        failed = exc.response["ResponseMetadata"]
    for meta in (ok, failed):
        request_id = meta["HTTPHeaders"]["x-amz-request-id"]
        host_id = meta["HTTPHeaders"]["x-amz-id-2"]
        assert re.fullmatch(r"[0-9A-F]{16}", request_id)
        assert base64.b64decode(host_id).decode().endswith("/" + request_id)
    assert ok["HTTPHeaders"]["x-amz-request-id"] != failed["HTTPHeaders"]["x-amz-request-id"]


def test_health_endpoints(stack: Stack):
    status, _, body = http_get(stack.server.endpoint + "/_huimin/health/live")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    status, _, body = http_get(stack.server.endpoint + "/_huimin/health/ready")
    doc = json.loads(body)
    assert status == 200
    assert doc["status"] == "ready"
    assert doc["sets"] == [
        {"set": 0, "drives": 12, "healthy": 12, "read_quorum": 8, "write_quorum": 8}
    ]


def test_promtool_accepts_the_shipped_config_and_rules(tmp_path: Path):
    assert PROMTOOL is not None
    shutil.copytree(FILES, tmp_path / "files")  # check config resolves rules/ next to it
    for args in (
        ["check", "config", str(tmp_path / "files" / "prometheus.yml")],
        ["check", "rules", *map(str, sorted((FILES / "rules").glob("*.yml")))],
    ):
        done = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def rules(kind: str) -> list[dict[str, Any]]:
    out = []
    for path in sorted((FILES / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [r for r in group["rules"] if kind in r]
    return out


def test_every_recording_rule_returns_data(stack: Stack):
    recorded = rules("record")
    assert len(recorded) >= 10
    empty = []
    for rule in recorded:
        stack.prom.query(rule["expr"])  # parses and evaluates
        # Each rule group is evaluated on its own schedule (every second here): a group other
        # than the one the load waited for may not have run since the load's data arrived.
        try:
            stack.prom.wait(rule["record"], timeout_s=10)
        except AssertionError:
            empty.append(rule["record"])
    assert not empty, empty


def test_every_alert_signal_exists_and_nothing_fires(stack: Stack):
    alerts = rules("alert")
    names = {a["alert"] for a in alerts}
    assert names == {
        "HuiminNodeDown",
        "HuiminDriveFailing",
        "HuiminSetBelowWriteQuorum",
        "HuiminHealBacklogGrowing",
        "HuiminCapacityHigh",
        "HuiminHighErrorRate",
        "HuiminLatencySLO",
    }
    no_signal = []
    for alert in alerts:
        stack.prom.query(alert["expr"])  # parses and evaluates
        form = ALERT_FORM.match(alert["expr"].strip())
        assert form, f"{alert['alert']}: expression not `<signal> <op> <number>`"
        signal_expr = f"{form['signal']} {form['op']} bool {form['threshold']}"
        if not stack.prom.query(signal_expr):
            no_signal.append(alert["alert"])
    assert not no_signal, no_signal
    # Rules were loaded and evaluated; with `for: 0s` a true condition would already fire.
    loaded = {r["name"] for g in stack.prom.api("rules")["groups"] for r in g["rules"]}
    assert names <= loaded
    # The test machine's disk may really be > 80 % full, and a loaded CI box may really take
    # over a second for a CreateBucket (12 fsyncs): those alerts would be right to fire.
    environmental = {"HuiminCapacityHigh", "HuiminLatencySLO"}
    firing = {a["labels"]["alertname"] for a in stack.prom.alerts()} - environmental
    assert not firing, firing


def dashboard_targets() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
    return out


def test_dashboards_are_provisioning_ready():
    datasource = yaml.safe_load(
        (FILES / "grafana" / "provisioning" / "datasources" / "huimin-prometheus.yml").read_text()
    )["datasources"][0]
    assert {p.stem for p in DASHBOARDS} == {
        "huimin-overview",
        "huimin-tenants",
        "huimin-drives-healing",
    }
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem and board["title"].startswith("Huimin / ")
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["targets"], (path.name, panel["title"])
            assert panel["datasource"]["uid"] == datasource["uid"]
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"]
    assert len(uids) == 3


def dashboard_queries_without_data(prom: Prometheus) -> list[tuple[str, str, str]]:
    """Every dashboard query (Grafana variables filled in) that parses but returns nothing."""
    empty = []
    for uid, title, expr in dashboard_targets():
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, (uid, title, expr)
        if not prom.query(expr):
            empty.append((uid, title, expr))
    return empty


def test_every_dashboard_query_returns_data(stack: Stack):
    assert len(dashboard_targets()) >= 30
    empty = dashboard_queries_without_data(stack.prom)
    assert [e for e in empty if e[2] not in NO_DATA_WHEN_EMBEDDED] == []


def test_logs_hold_no_secret_and_no_object_data(stack: Stack):
    log = stack.server.log()
    secret = stack.server.secret_key
    events = []
    for line in log.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
        else:  # the start-up banner on stdout: the one place the credentials are shown
            assert secret not in line or line.strip() == f"secret key: {secret}", line
    assert len(events) > 5  # DEBUG level: the test is not vacuous
    logged = json.dumps(events)
    assert secret not in logged
    assert stack.load.canary.decode() not in logged
    assert stack.load.canary.hex() not in logged
    assert any("request_id" in e for e in events)


# --- faults ---------------------------------------------------------------------------------


def shard_files(server: Server, before: set[Path]) -> dict[int, Path]:
    """Shard index -> shard file of the object written since ``before`` was taken."""
    now = {p for d in server.drive_dirs() for p in (d / "data").rglob("*") if p.is_file()}
    shards = {}
    for path in now - before:
        with path.open("rb") as f:
            _, index = parse_shard_header(f.read(SHARD_HEADER_BYTES))
        shards[index] = path
    return shards


def test_bitrot_drive_loss_and_lost_quorum(tmp_path: Path):
    """Bitrot and a degraded read are counted against the right drive; a removed drive fires
    HuiminDriveFailing while the server stays ready; five removed drives (of 8+4) fire
    HuiminSetBelowWriteQuorum and make the server not ready."""
    server = start_server(tmp_path / "data")
    prom = None
    try:
        s3 = boto3_client(server)
        s3.create_bucket(Bucket="faults")
        body = payload(300_000, seed=7)
        before = {p for d in server.drive_dirs() for p in (d / "data").rglob("*") if p.is_file()}
        s3.put_object(Bucket="faults", Key="rotten", Body=body)
        shard0 = shard_files(server, before)[0]  # a data shard: read on every GET
        with shard0.open("r+b") as f:
            f.seek(SHARD_HEADER_BYTES + FRAME_HASH_BYTES + 100)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
        assert s3.get_object(Bucket="faults", Key="rotten")["Body"].read() == body
        rotten_drive = shard0.parents[2].name
        text = scrape(server.endpoint)
        assert sample(text, "huimin_erasure_bitrot_detected_total", drive=rotten_drive) == 1
        assert sample(text, "huimin_erasure_degraded_reads_total", drive=rotten_drive) == 1

        prom = start_prometheus(tmp_path / "prometheus", [host_port(server.endpoint)], [])
        prom.wait('up{job="huimin-gateway"} == 1')
        drives = server.drive_dirs()
        shutil.rmtree(drives[-1])
        prom.wait_firing("HuiminDriveFailing", drive=drives[-1].name)
        assert http_get(server.endpoint + "/_huimin/health/ready")[0] == 200
        assert "HuiminSetBelowWriteQuorum" not in {a["labels"]["alertname"] for a in prom.alerts()}

        for drive in drives[-5:-1]:
            shutil.rmtree(drive)
        prom.wait_firing("HuiminSetBelowWriteQuorum", set="0")
        status, _, ready = http_get(server.endpoint + "/_huimin/health/ready")
        assert status == 503
        assert json.loads(ready)["sets"][0]["healthy"] == 7
    finally:
        if prom is not None:
            prom.stop()
        server.stop()


def test_node_down_alert_fires_when_a_node_is_killed(tmp_path: Path):
    if not CLUSTER_FIXTURES.exists():
        pytest.skip("tests/cluster_fixtures.py (the `huimin cluster up` fixtures) is missing")
    fixtures = importlib.import_module("tests.cluster_fixtures")
    with fixtures.running_cluster(tmp_path / "cluster") as cluster:
        state = cluster.state()
        gateways = [host_port(g.endpoint) for g in state.gateways]
        nodes = [n.listen for n in state.nodes]
        prom = start_prometheus(tmp_path / "prometheus", gateways, nodes)
        try:
            all_up = f'count(up{{job=~"huimin-.*"}} == 1) == {len(gateways) + len(nodes)}'
            prom.wait(all_up)
            s3 = cluster.s3()
            wrong = boto3.client(
                "s3",
                endpoint_url=cluster.endpoint,
                aws_access_key_id=cluster.access_key,
                aws_secret_access_key="not-the-secret-key-000000000000000",
                region_name=cluster.region,
            )
            load = load_until_rates(prom, s3, wrong, "watched")
            assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "HuiminNodeDown"]
            # Every dashboard query has data on a cluster, node reachability included.
            assert dashboard_queries_without_data(prom) == []

            victim = cluster.node("node-1")
            cluster.kill_node("node-1")
            alert = prom.wait_firing("HuiminNodeDown", instance=victim.listen)
            assert alert["labels"]["job"] == "huimin-node"
            # The gateway sees the node's drives fail, and the set keep its quorum (10 of 12).
            prom.wait_firing("HuiminDriveFailing", drive="node-1/d1")
            prom.wait('huimin_node_reachable{node="node-1"} == 0')
            status, _, ready = http_get(cluster.endpoint + "/_huimin/health/ready")
            assert status == 200, ready
            body = s3.get_object(Bucket="watched", Key=load.key)["Body"].read()
            assert body.startswith(load.canary)
        finally:
            prom.stop()
