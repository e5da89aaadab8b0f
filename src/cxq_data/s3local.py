"""A local S3-compatible server for the demo (moto in server mode on 127.0.0.1).

The demo reaches it through boto3 with ``S3_ENDPOINT_URL`` — the same code path a user takes to AWS,
MinIO or R2. Tests use their own fixtures (moto for functional tests, SeaweedFS for integrity).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass
class LocalS3:
    bucket: str = "cxq-demo"
    endpoint_url: str = ""
    access_key_id: str = "AKIALOCALDEMO0000001"
    secret_access_key: str = field(default_factory=lambda: secrets.token_hex(16), repr=False)
    _server: Any = None

    def __enter__(self) -> Self:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log in the demo

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
                              aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key)
        client.create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()

    def env(self) -> dict[str, str]:
        return {
            "S3_ENDPOINT_URL": self.endpoint_url,
            "S3_BUCKET_NAME": self.bucket,
            "S3_PREFIX": "options/cbbo-1m",
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }
