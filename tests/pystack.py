"""What the Python tests share: the built binaries, free ports, and the Azure emulator with the
local server pointed at it (tests/python, tests/browser)."""
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, seconds=15):
    """Until `url` answers over HTTP (any status); fails if `proc` exited or time ran out."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


@contextlib.contextmanager
def stack(world_file, server_args=(), budget_ms="2000", embedded_azure=False):
    """The emulator serving `world_file` and the local server pointed at it, on free ports; with
    `embedded_azure`, the server's own emulator (its default: no AZURE_* endpoints) with that world.
    Yields {api, emu, work}; the logs are work/emulator.log and work/server.log, kept after."""
    if embedded_azure:
        with embedded(world_file, server_args, budget_ms) as s:
            yield s
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix="azc-stack-"))
    emu_port, api_port = free_port(), free_port()
    emu_url, api_url = f"http://127.0.0.1:{emu_port}", f"http://127.0.0.1:{api_port}"
    emu = subprocess.Popen([str(BIN / "azure-emulator"), "--listen", f"127.0.0.1:{emu_port}", "--world", str(world_file)],
                           stdout=open(work / "emulator.log", "w"), stderr=subprocess.STDOUT)
    env = dict(os.environ, AZURE_AUTHORITY_HOST=emu_url, AZURE_RESOURCE_MANAGER_ENDPOINT=emu_url,
               AZURE_GRAPH_ENDPOINT=emu_url, AZURE_VALIDATION_BUDGET_MS=budget_ms)
    api = subprocess.Popen([str(BIN / "azure-connect-local"), "--listen", f"127.0.0.1:{api_port}",
                            "--store", f"embedded:{work / 'store'}", "--events-file", str(work / "events.jsonl"),
                            *server_args],
                           env=env, stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_http(emu_url + "/_emulator/world", emu)
        wait_http(api_url + "/connections", api)
        yield {"api": api_url, "emu": emu_url, "work": work}
    finally:
        for p in (api, emu):
            p.terminate()
            p.wait(timeout=10)


@contextlib.contextmanager
def embedded(world_file, server_args, budget_ms):
    work = pathlib.Path(tempfile.mkdtemp(prefix="azc-stack-"))
    api_port = free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_") and k != "LOCAL_AZURE"}
    env["AZURE_VALIDATION_BUDGET_MS"] = budget_ms
    api = subprocess.Popen([str(BIN / "azure-connect-local"), "--listen", f"127.0.0.1:{api_port}",
                            "--store", f"embedded:{work / 'store'}", "--events-file", str(work / "events.jsonl"),
                            "--emulator-world", str(world_file), *server_args],
                           env=env, stdout=open(work / "server.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_http(api_url + "/local/azure", api)
        with urllib.request.urlopen(api_url + "/local/azure") as r:
            about = json.loads(r.read())
        assert about["azure"] == "emulator", about
        yield {"api": api_url, "emu": about["emulatorUrl"], "work": work}
    finally:
        api.terminate()
        api.wait(timeout=10)
