"""awscli (v1) against a real Huimin server: `aws s3` high-level commands and `aws s3api` calls."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server

MiB = 1024 * 1024


def blob(size: int, seed: int = 0) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


class AwsCli:
    """Runs ``aws ARGS... --endpoint-url`` against the server with an isolated, empty config."""

    def __init__(self, server: Server, home: Path) -> None:
        self.endpoint = server.endpoint
        self.config = config = home / "aws-config"
        credentials = home / "aws-credentials"
        config.write_text("")
        credentials.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_DEFAULT_REGION=server.region,
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=str(credentials),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            AWS_PAGER="",
        )

    def raw(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [sys.executable, "-m", "awscli", *args, "--endpoint-url", self.endpoint],
            env=self.env,
            input=stdin,
            capture_output=True,
            timeout=180,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} exited {proc.returncode}\n{proc.stderr!r}")
        return proc

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "awscli", *args, "--endpoint-url", self.endpoint],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"aws {' '.join(args)} exited {proc.returncode}\n"
                f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
            )
        return proc


@pytest.fixture
def aws(server: Server, tmp_path: Path) -> AwsCli:
    return AwsCli(server, tmp_path)


def api(aws: AwsCli, *args: str) -> Any:
    out = aws("s3api", *args, "--output", "json").stdout
    return json.loads(out) if out.strip() else {}


def ls_keys(aws: AwsCli, url: str) -> list[str]:
    """Keys from ``aws s3 ls --recursive`` (lines are "date time size key")."""
    lines = aws("s3", "ls", "--recursive", url).stdout.splitlines()
    return sorted(line.split(maxsplit=3)[-1] for line in lines if line.strip())


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def upload_tree(aws: AwsCli, bucket: str, root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``root`` and upload them with one ``aws s3 cp --recursive``."""
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    aws("s3", "cp", "--recursive", str(root), f"s3://{bucket}/")


# --- aws s3 ---------------------------------------------------------------------------------------


def test_mb_ls_rb(aws: AwsCli, server: Server) -> None:
    name = f"cli-mb-{os.getpid()}"
    out = aws("s3", "mb", f"s3://{name}").stdout
    assert f"make_bucket: {name}" in out
    assert name in aws("s3", "ls").stdout.split()
    again = aws("s3", "mb", f"s3://{name}", check=False)
    assert again.returncode != 0
    assert "BucketAlreadyOwnedByYou" in again.stderr or "BucketAlreadyExists" in again.stderr
    out = aws("s3", "rb", f"s3://{name}").stdout
    assert f"remove_bucket: {name}" in out
    assert name not in aws("s3", "ls").stdout.split()


def test_rb_non_empty_then_force(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "f.txt"
    src.write_text("x")
    aws("s3", "cp", str(src), f"s3://{bucket}/a/f.txt")
    refused = aws("s3", "rb", f"s3://{bucket}", check=False)
    assert refused.returncode != 0
    assert "BucketNotEmpty" in refused.stderr
    aws("s3", "rb", "--force", f"s3://{bucket}")
    assert bucket not in aws("s3", "ls").stdout.split()


def test_cp_small_round_trip(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "small.txt"
    src.write_bytes(b"hello from awscli\n")
    aws("s3", "cp", str(src), f"s3://{bucket}/docs/small.txt")
    dst = tmp_path / "back.txt"
    aws("s3", "cp", f"s3://{bucket}/docs/small.txt", str(dst))
    assert dst.read_bytes() == src.read_bytes()
    head = api(aws, "head-object", "--bucket", bucket, "--key", "docs/small.txt")
    assert head["ContentLength"] == src.stat().st_size
    assert head["ETag"].strip('"') == hashlib.md5(src.read_bytes()).hexdigest()


def test_cp_25_mib_multipart_round_trip(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    data = blob(25 * MiB, seed=1)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    aws("s3", "cp", str(src), f"s3://{bucket}/big.bin")
    head = api(aws, "head-object", "--bucket", bucket, "--key", "big.bin")
    assert head["ContentLength"] == len(data)
    # 8 MiB default chunks: 8 + 8 + 8 + 1 MiB -> a four-part multipart ETag.
    assert head["ETag"].strip('"').endswith("-4")
    dst = tmp_path / "big-back.bin"
    aws("s3", "cp", f"s3://{bucket}/big.bin", str(dst))
    assert dst.stat().st_size == len(data)
    assert hashlib.sha256(dst.read_bytes()).digest() == hashlib.sha256(data).digest()

    # Server-side copy of a large object: awscli uses UploadPartCopy with ranges.
    aws("s3", "cp", f"s3://{bucket}/big.bin", f"s3://{bucket}/copy/big.bin")
    copy = tmp_path / "copy.bin"
    aws("s3", "cp", f"s3://{bucket}/copy/big.bin", str(copy))
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_cp_stdin_and_stdout(aws: AwsCli, bucket: str) -> None:
    """``aws s3 cp - s3://...`` streams an unknown-length body (multipart past 8 MiB)."""
    data = blob(9 * MiB + 3, seed=5)
    aws.raw("s3", "cp", "-", f"s3://{bucket}/stdin.bin", stdin=data)
    head = api(aws, "head-object", "--bucket", bucket, "--key", "stdin.bin")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-2")
    assert aws.raw("s3", "cp", f"s3://{bucket}/stdin.bin", "-").stdout == data


def test_mv_and_presign(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "m.txt"
    src.write_bytes(b"moving day")
    aws("s3", "cp", str(src), f"s3://{bucket}/from.txt")
    aws("s3", "mv", f"s3://{bucket}/from.txt", f"s3://{bucket}/to.txt")
    assert ls_keys(aws, f"s3://{bucket}") == ["to.txt"]
    # awscli v1 presigns with SigV2 unless told otherwise; Huimin speaks SigV4 only.
    v2_url = aws("s3", "presign", f"s3://{bucket}/to.txt").stdout.strip()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(v2_url, timeout=10)
    assert err.value.code == 400
    assert b"<Code>InvalidRequest</Code>" in err.value.read()

    aws.config.write_text("[default]\ns3 =\n    signature_version = s3v4\n")
    url = aws("s3", "presign", f"s3://{bucket}/to.txt", "--expires-in", "300").stdout.strip()
    assert "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"moving day"


def test_ls_missing_bucket(aws: AwsCli, bucket: str) -> None:
    assert aws("s3", "ls", f"s3://{bucket}").stdout == ""
    proc = aws("s3", "ls", f"s3://{bucket}-nope", check=False)
    assert proc.returncode != 0
    assert "NoSuchBucket" in proc.stderr


def test_cp_missing_key(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    proc = aws("s3", "cp", f"s3://{bucket}/nope", str(tmp_path / "x"), check=False)
    assert proc.returncode != 0
    assert "404" in proc.stderr or "Not Found" in proc.stderr


def test_sync_up_down_and_modify(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    local = tmp_path / "up"
    files = {
        "top.txt": b"top level\n",
        "a/one.txt": b"one\n",
        "a/two.bin": blob(40_000, seed=2),
        "a/b/three.txt": b"three\n",
        "c/four.bin": blob(300_000, seed=3),
        "odd names/ü + plus&amp=%41.txt": b"escaped on the wire\n",
    }
    for rel, data in files.items():
        (local / rel).parent.mkdir(parents=True, exist_ok=True)
        (local / rel).write_bytes(data)

    aws("s3", "sync", str(local), f"s3://{bucket}/tree")
    assert ls_keys(aws, f"s3://{bucket}/tree/") == sorted(f"tree/{k}" for k in files)

    down = tmp_path / "down"
    aws("s3", "sync", f"s3://{bucket}/tree", str(down))
    assert tree(down) == files

    # A second sync with nothing changed transfers nothing.
    assert aws("s3", "sync", str(local), f"s3://{bucket}/tree").stdout.strip() == ""

    # Change one file (different size, so sync sees it), add one, delete one with --delete.
    (local / "a/one.txt").write_bytes(b"one, edited\n")
    (local / "new.txt").write_bytes(b"new\n")
    (local / "c/four.bin").unlink()
    out = aws("s3", "sync", "--delete", str(local), f"s3://{bucket}/tree").stdout
    assert "a/one.txt" in out and "new.txt" in out and "c/four.bin" in out
    assert "three.txt" not in out

    aws("s3", "sync", "--delete", f"s3://{bucket}/tree", str(down))
    assert tree(down) == tree(local)
    assert (down / "a/one.txt").read_bytes() == b"one, edited\n"


def test_ls_recursive_and_prefix(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    keys = ("x.txt", "logs/2024/a.log", "logs/2024/b.log", "logs/2025/c.log", "img/p.png")
    upload_tree(aws, bucket, tmp_path / "t", dict.fromkeys(keys, b"12345"))

    top = aws("s3", "ls", f"s3://{bucket}").stdout
    assert "PRE logs/" in top and "PRE img/" in top
    assert "x.txt" in top and "a.log" not in top

    under = aws("s3", "ls", f"s3://{bucket}/logs/").stdout
    assert "PRE 2024/" in under and "PRE 2025/" in under

    assert ls_keys(aws, f"s3://{bucket}/logs/2024/") == ["logs/2024/a.log", "logs/2024/b.log"]
    assert ls_keys(aws, f"s3://{bucket}") == [
        "img/p.png",
        "logs/2024/a.log",
        "logs/2024/b.log",
        "logs/2025/c.log",
        "x.txt",
    ]
    # A prefix that is not a "folder" matches keys that start with it.
    assert ls_keys(aws, f"s3://{bucket}/logs/202") == [
        "logs/2024/a.log",
        "logs/2024/b.log",
        "logs/2025/c.log",
    ]
    line = next(ln for ln in aws("s3", "ls", f"s3://{bucket}/x.txt").stdout.splitlines())
    assert line.split()[2] == "5"  # date, time, size, key


def test_rm_recursive(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    keys = ("keep.txt", "junk/1", "junk/2", "junk/deeper/3")
    upload_tree(aws, bucket, tmp_path / "t", dict.fromkeys(keys, b"z"))
    out = aws("s3", "rm", "--recursive", f"s3://{bucket}/junk/").stdout
    assert out.count("delete:") == 3
    assert ls_keys(aws, f"s3://{bucket}") == ["keep.txt"]
    aws("s3", "rm", f"s3://{bucket}/keep.txt")
    assert ls_keys(aws, f"s3://{bucket}") == []
    aws("s3", "rb", f"s3://{bucket}")


# --- aws s3api ------------------------------------------------------------------------------------


def test_s3api_put_get_head_object(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    data = blob(150_000, seed=4)
    src = tmp_path / "body"
    src.write_bytes(data)
    put = api(
        aws,
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj",
        "--body",
        str(src),
        "--content-type",
        "application/x-test",
        "--metadata",
        "color=green,size=large",
    )
    assert put["ETag"].strip('"') == hashlib.md5(data).hexdigest()

    head = api(aws, "head-object", "--bucket", bucket, "--key", "api/obj")
    assert head["ContentLength"] == len(data)
    assert head["ContentType"] == "application/x-test"
    assert head["Metadata"] == {"color": "green", "size": "large"}

    out = tmp_path / "out"
    got = api(aws, "get-object", "--bucket", bucket, "--key", "api/obj", str(out))
    assert got["ContentLength"] == len(data)
    assert out.read_bytes() == data

    part = tmp_path / "part"
    ranged = api(
        aws,
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj",
        "--range",
        "bytes=100-199",
        str(part),
    )
    assert ranged["ContentRange"] == f"bytes 100-199/{len(data)}"
    assert part.read_bytes() == data[100:200]


def test_s3api_head_missing(aws: AwsCli, bucket: str) -> None:
    proc = aws("s3api", "head-object", "--bucket", bucket, "--key", "missing", check=False)
    assert proc.returncode != 0
    assert "404" in proc.stderr


def test_s3api_get_missing_error_code(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    proc = aws(
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "missing",
        str(tmp_path / "x"),
        check=False,
    )
    assert proc.returncode != 0
    assert "NoSuchKey" in proc.stderr


def test_s3api_list_objects_v2(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    keys = [f"p/{i:02d}" for i in range(7)] + ["q/0", "r"]
    upload_tree(aws, bucket, tmp_path / "t", dict.fromkeys(keys, b"abc"))

    everything = api(aws, "list-objects-v2", "--bucket", bucket, "--no-paginate")
    assert [o["Key"] for o in everything["Contents"]] == sorted(keys)
    assert everything["KeyCount"] == len(keys)
    assert all(o["Size"] == 3 for o in everything["Contents"])

    folders = api(aws, "list-objects-v2", "--bucket", bucket, "--delimiter", "/")
    assert [c["Prefix"] for c in folders["CommonPrefixes"]] == ["p/", "q/"]
    assert [o["Key"] for o in folders["Contents"]] == ["r"]

    # One page of 3, then the continuation token yields the next 3.
    page = api(
        aws,
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        "p/",
        "--max-keys",
        "3",
        "--no-paginate",
    )
    assert [o["Key"] for o in page["Contents"]] == ["p/00", "p/01", "p/02"]
    assert page["IsTruncated"] is True
    nxt = api(
        aws,
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        "p/",
        "--max-keys",
        "3",
        "--continuation-token",
        page["NextContinuationToken"],
        "--no-paginate",
    )
    assert [o["Key"] for o in nxt["Contents"]] == ["p/03", "p/04", "p/05"]

    # The CLI's own paginator walks every page.
    paged = api(aws, "list-objects-v2", "--bucket", bucket, "--page-size", "2")
    assert [o["Key"] for o in paged["Contents"]] == sorted(keys)

    after = api(aws, "list-objects-v2", "--bucket", bucket, "--start-after", "p/05")
    assert [o["Key"] for o in after["Contents"]] == ["p/06", "q/0", "r"]


def test_s3api_multipart_round_trip(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    parts = [blob(5 * MiB, seed=10), blob(5 * MiB, seed=11), blob(1234, seed=12)]
    upload = api(aws, "create-multipart-upload", "--bucket", bucket, "--key", "mp/obj")
    upload_id = upload["UploadId"]
    assert upload["Key"] == "mp/obj"

    listed = api(aws, "list-multipart-uploads", "--bucket", bucket)
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("mp/obj", upload_id)]

    etags = []
    for number, data in enumerate(parts, start=1):
        path = tmp_path / f"part{number}"
        path.write_bytes(data)
        res = api(
            aws,
            "upload-part",
            "--bucket",
            bucket,
            "--key",
            "mp/obj",
            "--upload-id",
            upload_id,
            "--part-number",
            str(number),
            "--body",
            str(path),
        )
        assert res["ETag"].strip('"') == hashlib.md5(data).hexdigest()
        etags.append(res["ETag"])

    listed_parts = api(
        aws, "list-parts", "--bucket", bucket, "--key", "mp/obj", "--upload-id", upload_id
    )
    assert [(p["PartNumber"], p["Size"]) for p in listed_parts["Parts"]] == [
        (n, len(d)) for n, d in enumerate(parts, start=1)
    ]

    layout = {"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, start=1)]}
    done = api(
        aws,
        "complete-multipart-upload",
        "--bucket",
        bucket,
        "--key",
        "mp/obj",
        "--upload-id",
        upload_id,
        "--multipart-upload",
        json.dumps(layout),
    )
    md5s = b"".join(hashlib.md5(d).digest() for d in parts)
    assert done["ETag"].strip('"') == f"{hashlib.md5(md5s).hexdigest()}-3"
    assert done["Key"] == "mp/obj"

    assert api(aws, "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []
    out = tmp_path / "out"
    api(aws, "get-object", "--bucket", bucket, "--key", "mp/obj", str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(b"".join(parts)).digest()


def test_s3api_abort_multipart(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    upload_id = api(aws, "create-multipart-upload", "--bucket", bucket, "--key", "ab")["UploadId"]
    body = tmp_path / "p"
    body.write_bytes(b"partial")
    aws(
        "s3api",
        "upload-part",
        "--bucket",
        bucket,
        "--key",
        "ab",
        "--upload-id",
        upload_id,
        "--part-number",
        "1",
        "--body",
        str(body),
    )
    aws(
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        bucket,
        "--key",
        "ab",
        "--upload-id",
        upload_id,
    )
    assert api(aws, "list-multipart-uploads", "--bucket", bucket).get("Uploads", []) == []
    gone = aws(
        "s3api",
        "list-parts",
        "--bucket",
        bucket,
        "--key",
        "ab",
        "--upload-id",
        upload_id,
        check=False,
    )
    assert gone.returncode != 0
    assert "NoSuchUpload" in gone.stderr
    assert api(aws, "list-objects-v2", "--bucket", bucket).get("Contents", []) == []


def test_s3api_complete_with_wrong_etag(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    upload_id = api(aws, "create-multipart-upload", "--bucket", bucket, "--key", "w")["UploadId"]
    body = tmp_path / "p"
    body.write_bytes(b"only part")
    aws(
        "s3api",
        "upload-part",
        "--bucket",
        bucket,
        "--key",
        "w",
        "--upload-id",
        upload_id,
        "--part-number",
        "1",
        "--body",
        str(body),
    )
    layout = {"Parts": [{"ETag": '"00000000000000000000000000000000"', "PartNumber": 1}]}
    proc = aws(
        "s3api",
        "complete-multipart-upload",
        "--bucket",
        bucket,
        "--key",
        "w",
        "--upload-id",
        upload_id,
        "--multipart-upload",
        json.dumps(layout),
        check=False,
    )
    assert proc.returncode != 0
    assert "InvalidPart" in proc.stderr
    aws(
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        bucket,
        "--key",
        "w",
        "--upload-id",
        upload_id,
    )


def test_s3api_delete_objects(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    upload_tree(aws, bucket, tmp_path / "t", dict.fromkeys(("d/1", "d/2", "d/3", "keep"), b"d"))
    request = {"Objects": [{"Key": k} for k in ("d/1", "d/2", "d/3", "d/never")]}
    res = api(aws, "delete-objects", "--bucket", bucket, "--delete", json.dumps(request))
    assert sorted(d["Key"] for d in res["Deleted"]) == ["d/1", "d/2", "d/3", "d/never"]
    assert res.get("Errors", []) == []
    quiet = {**request, "Quiet": True}
    res = api(aws, "delete-objects", "--bucket", bucket, "--delete", json.dumps(quiet))
    assert res.get("Deleted", []) == [] and res.get("Errors", []) == []
    listing = api(aws, "list-objects-v2", "--bucket", bucket)
    assert [o["Key"] for o in listing["Contents"]] == ["keep"]


def test_s3api_copy_conditional_and_bucket_calls(aws: AwsCli, bucket: str, tmp_path: Path) -> None:
    src = tmp_path / "c"
    src.write_bytes(b"conditional")
    etag = api(aws, "put-object", "--bucket", bucket, "--key", "c", "--body", str(src))["ETag"]

    not_modified = aws(
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "c",
        "--if-none-match",
        etag,
        str(tmp_path / "out"),
        check=False,
    )
    assert not_modified.returncode != 0
    assert "304" in not_modified.stderr
    failed = aws(
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "c",
        "--if-match",
        '"0000"',
        str(tmp_path / "out"),
        check=False,
    )
    assert "PreconditionFailed" in failed.stderr

    copied = api(
        aws,
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "c2",
        "--copy-source",
        f"{bucket}/c",
        "--metadata-directive",
        "REPLACE",
        "--metadata",
        "stage=copied",
        "--content-type",
        "text/x-copied",
    )
    assert copied["CopyObjectResult"]["ETag"] == etag
    head = api(aws, "head-object", "--bucket", bucket, "--key", "c2")
    assert head["Metadata"] == {"stage": "copied"}
    assert head["ContentType"] == "text/x-copied"

    aws("s3api", "head-bucket", "--bucket", bucket)
    missing = aws("s3api", "head-bucket", "--bucket", f"{bucket}-nope", check=False)
    assert missing.returncode != 0 and "404" in missing.stderr
    location = api(aws, "get-bucket-location", "--bucket", bucket)
    assert location.get("LocationConstraint") in (None, "", "us-east-1")
