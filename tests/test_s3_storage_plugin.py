"""Our uploader inside a process that loaded snakemake-storage-plugin-s3.

The plugin sets AWS_REQUEST_CHECKSUM_CALCULATION=when_required process-wide when it is imported (and
every job Snakemake spawns inherits it), so boto3 stops sending CRC32 for every client in the process.
The upload must still be protected by our own Content-MD5 and post-upload verification: a body corrupted
in transit is rejected by SeaweedFS (BadDigest) and uploaded again. Runs in a subprocess so the plugin's
environment change cannot leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from options_support import settings_for
from s3servers import ACCESS_KEY, SECRET_KEY, FaultProxy, Faults, make_client

PROGRAM = r"""
import json, os, sys
from pathlib import Path
before = os.environ.get("AWS_REQUEST_CHECKSUM_CALCULATION")
import snakemake_storage_plugin_s3  # noqa: F401 - imported for its side effect, as Snakemake does
after = os.environ.get("AWS_REQUEST_CHECKSUM_CALCULATION")
from cxq_data.options.s3 import S3Settings, make_client, upload_verified
endpoint, bucket, path = sys.argv[1:4]
settings = S3Settings(bucket=bucket, endpoint_url=endpoint, region="us-east-1", access_key_id=os.environ["KEY"],
                      secret_access_key=os.environ["SECRET"], backoff_base_s=0.01,
                      multipart_threshold=6 * 2**20, part_size=5 * 2**20)
remote = upload_verified(make_client(settings), Path(path), settings=settings, key="plugin/data.parquet")
print(json.dumps({"before": before, "after": after, "attempts": remote.attempts, "parts": remote.parts}))
"""


@pytest.mark.seaweedfs
@pytest.mark.parametrize("size", [3000, 11 * 2**20])
def test_uploader_keeps_its_integrity_checks_under_the_s3_storage_plugin(seaweed_endpoint: str, tmp_path: Path,
                                                                         size: int) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(os.urandom(size))
    bucket = settings_for(seaweed_endpoint).bucket
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(KEY=ACCESS_KEY, SECRET=SECRET_KEY)
    with FaultProxy(seaweed_endpoint, Faults(corrupt_puts=1)) as proxy:
        out = subprocess.run([sys.executable, "-c", PROGRAM, proxy.endpoint, bucket, str(path)], check=False, env=env,
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] is None and result["after"] == "when_required"  # the plugin's side effect
    assert [e["action"] for e in proxy.faults.log].count("corrupt") == 1
    assert result["attempts"] == 2  # the corrupted attempt was caught (BadDigest) and redone
    assert result["parts"] == (3 if size > 6 * 2**20 else 1)
    stored = make_client(seaweed_endpoint).get_object(Bucket=bucket, Key="plugin/data.parquet")["Body"].read()
    assert stored == path.read_bytes()
