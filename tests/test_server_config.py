"""The configuration gate (issue 14, point 6): the shipped config binds the app to this machine with
XSRF and CORS protection on, a started server answers on loopback only and refuses an upload without
the XSRF token or over the size cap, and a deliberate ``--server.address`` opens it to the network."""
import os
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_browser import free_port

from bdcore.uploads import MAX_ZIP_BYTES

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())


def _network_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one: where another
    machine would connect."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def _answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


@contextmanager
def _server(*options: str) -> Iterator[int]:
    """`streamlit run app.py` with the shipped config (run from the repository root) plus ``options``;
    yields its port once it answers on loopback."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               *options], cwd=ROOT, env=os.environ.copy(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not _answers("127.0.0.1", port):
            assert server.poll() is None and time.time() < deadline, "streamlit did not start within 60 s"
            time.sleep(0.3)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _put_upload(port: int, size: int) -> int:
    """The HTTP status of an upload posted straight to the server's upload endpoint, no token."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/_stcore/upload_file/session/file",
                                     data=b"x" * size, method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as err:
        return err.code
    except (ConnectionError, urllib.error.URLError):  # the server cut the oversize body short
        return 413


def test_shipped_config_binds_to_localhost_with_protection_on():
    server = CONFIG["server"]
    assert server["address"] == "localhost"
    assert server["enableXsrfProtection"] is True
    assert server["enableCORS"] is True
    # a 50 MB zip of images fits; the server's cap is the library's, so a zip it admits is not then
    # refused for its size alone
    assert server["maxUploadSize"] == 200 and server["maxUploadSize"] * 2**20 == MAX_ZIP_BYTES
    assert CONFIG["browser"]["gatherUsageStats"] is False


def test_started_app_answers_on_loopback_only_and_refuses_forged_or_oversize_uploads():
    network = _network_address()
    with _server() as port:
        if network:
            assert not _answers(network, port), f"the app answered on {network}, beyond this machine"
        assert _put_upload(port, 1000) == 403  # no XSRF token: refused before the upload is read
        assert _put_upload(port, (CONFIG["server"]["maxUploadSize"] + 1) * 2**20) == 413  # over the cap


def test_server_address_opens_the_app_deliberately():
    network = _network_address()
    if network is None:
        pytest.skip("this machine has no network address besides loopback")
    with _server("--server.address", "0.0.0.0") as port:
        assert _answers(network, port)
