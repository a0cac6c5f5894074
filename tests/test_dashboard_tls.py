"""`stalwart dashboard --certfile/--keyfile` serves HTTPS itself, with HSTS; with
`--http2`, HTTP/2 (Hypercorn), HTTP/1.1 still offered."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import stalwart

pytestmark = pytest.mark.slow


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("*** openssl is not installed: cannot make a test certificate ***")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("http2", [False, True], ids=["uvicorn-http1.1", "hypercorn-http2"])
def test_https_with_hsts(tmp_path: Path, certificate: tuple[Path, Path], http2: bool) -> None:
    cert, key = certificate
    url = f"sqlite:///{tmp_path / 'tls.db'}"
    stalwart.App(url).migrate()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STALWART_DASHBOARD_ADMINS": "ops:pw-123"}
    exe = str(Path(sys.executable).with_name("stalwart"))
    cmd = [exe, "--database", url, "dashboard", "--port", str(port),
           "--certfile", str(cert), "--keyfile", str(key)]  # fmt: skip
    cmd += ["--http2"] if http2 else []
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(cert)), http2=True, timeout=5
        ) as client:
            deadline = time.monotonic() + 20
            while True:
                try:
                    client.get(base + "/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and proc.poll() is None, "no server"
                    time.sleep(0.1)
            r = client.get(base + "/", auth=("ops", "pw-123"))
            assert r.status_code == 200
            assert r.headers["strict-transport-security"] == "max-age=31536000"
            assert r.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        with httpx.Client(
            verify=ssl.create_default_context(cafile=str(cert)), http2=False, timeout=5
        ) as old:
            assert old.get(base + "/healthz").http_version == "HTTP/1.1"
    finally:
        proc.terminate()
        out = proc.communicate(timeout=20)[0]
    assert proc.returncode in (0, -15), out


def test_http2_needs_tls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    exe = str(Path(sys.executable).with_name("stalwart"))
    done = subprocess.run(
        [exe, "--database", url, "dashboard", "--http2"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "--http2 needs --certfile" in done.stderr
