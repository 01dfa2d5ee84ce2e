"""The image API streams data: its own RSS barely grows while a big image goes up and down.

Runs ``bench/image_memory.py`` (the image API in a separate process, its RSS
sampled with psutil) with 256 MiB, big enough that buffering the body in
memory would show as 256 MiB of growth. The full 2 GiB run is the bench.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
@pytest.mark.parametrize("site", ["streaming", "plain"])
def test_uploading_and_downloading_256_mib_grows_the_api_process_by_less_than_64_mib(site):
    args = [sys.executable, os.path.join(ROOT, "bench", "image_memory.py"), "--size", "256M", "--json"]
    if site == "plain":
        args.append("--plain-site")
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.stdout.strip(), done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["checksums_match"], result
    assert result["range_ok"], result
    assert result["upload_growth_mib"] < 64, result
    assert result["download_growth_mib"] < 64, result
    assert done.returncode == 0, result
