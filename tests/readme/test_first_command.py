"""The README's first command, run exactly as it is written, in a clean checkout of this tree,
with nothing in the environment that points anywhere (no AWS_*, no AZURE_*): it must start the
whole backend on its embedded defaults, print where the page is, and let a person connect from
what it serves alone, offline (the page's values from GET /local/azure, the role assigned through
the page's emulator route), to `connected`.

The build shares this repository's target directory (CARGO_TARGET_DIR), so only the first run
compiles."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def first_command():
    """The first `sh` block under "The two commands": its first line that is not a comment."""
    text = README.read_text()
    section = text.split("## The two commands", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    lines = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    return lines[0]


def clean_checkout(into):
    """The tracked files as they are now (committed or not), nothing else: no target/, no store,
    no virtualenv."""
    stash = subprocess.run(["git", "stash", "create"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    archive = subprocess.run(["git", "archive", "--format=tar", stash or "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    tar = into / "tree.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as t:
        t.extractall(into / "azure-connect", filter="data")
    tar.unlink()
    return into / "azure-connect"


def fresh_env():
    keep = ("PATH", "HOME", "CARGO_HOME", "RUSTUP_HOME", "LANG", "TMPDIR", "USER")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["CARGO_TARGET_DIR"] = os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target"))
    return env


def call(method, url, body=None, org="org-1"):
    headers = {"X-Org-Id": org}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and r.headers.get_content_subtype() in ("json", "problem+json") else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


@pytest.fixture(scope="module")
def served():
    command = first_command()
    assert command == "cargo run --release -p azure-connect-dev", f"the README's first command changed: {command}"
    work = pathlib.Path(tempfile.mkdtemp(prefix="readme-"))
    tree = clean_checkout(work)
    stderr = open(work / "stderr.log", "w+")
    proc = subprocess.Popen(command, shell=True, cwd=tree, env=fresh_env(), stdout=subprocess.DEVNULL,
                            stderr=stderr, start_new_session=True)
    banner = ""
    # The first run compiles (release); later runs start at once.
    deadline = time.time() + 1200
    while time.time() < deadline:
        stderr.seek(0)
        banner = stderr.read()
        if "Ctrl-C stops it" in banner:
            break
        if proc.poll() is not None:
            pytest.fail(f"the README's first command exited {proc.returncode}:\n{banner[-4000:]}")
        time.sleep(0.5)
    else:
        pytest.fail(f"no banner after 20 minutes:\n{banner[-4000:]}")
    yield {"tree": tree, "banner": banner[banner.index("azure-connect is running locally"):]}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    stderr.close()
    shutil.rmtree(work, ignore_errors=True)


def test_it_prints_for_a_person_where_everything_is(served):
    banner = served["banner"]
    assert "The wizard:  http://127.0.0.1:3000/" in banner, banner
    assert f"embedded, in {served['tree'] / '.azure-connect-local'}" in banner, banner
    assert "the Azure emulator with its demo world, at http://127.0.0.1:" in banner, banner
    assert "--azure cloud" in banner, banner
    # The store is where it says, and made by this run.
    assert (served["tree"] / ".azure-connect-local").is_dir()


def test_a_person_connects_from_what_it_serves_alone_offline(served):
    api = re.search(r"The wizard:  (http://[^/ ]+)/", served["banner"]).group(1)
    status, page = call("GET", api + "/")
    assert status == 200 and b"Connect Azure Subscription" in page
    # What the page shows with the emulator: the values a person types in.
    status, local = call("GET", api + "/local/azure")
    assert status == 200 and local["azure"] == "emulator", local
    demo = local["demo"]
    status, c = call("POST", api + "/connections", {"accountId": "act-0ead0ead"})
    assert status == 201, c
    cid = c["connectionId"]
    base = f"{api}/connections/{cid}"
    for method, path, body in [
        ("PUT", "/app-registration", {"tenantId": demo["tenantDomain"], "clientId": demo["clientId"]}),
        ("PUT", "/client-secret", {"clientSecret": demo["clientSecret"], "expiresAt": demo["clientSecretExpiresAt"]}),
        # The demo's second subscription: the first is the one command's (below), and a
        # subscription is one Spot account's.
        ("PUT", "/subscription", {"subscriptionId": demo["subscriptions"][1]["subscriptionId"]}),
    ]:
        status, c = call(method, base + path, body)
        assert status == 200, (path, c)
    status, role = call("GET", base + "/custom-role?format=portal")
    assert status == 200, role
    # Before the role is assigned: refused at 3.6, quickly (the emulator's budget).
    started = time.time()
    status, refused = call("POST", base + "/connect")
    assert status == 422 and refused["code"] == "role-not-assigned", refused
    assert time.time() - started < 8, "role-not-assigned took too long locally"
    # The page's "Assign the role (emulator)": the exported role's actions at its scope.
    scope = role["properties"]["assignableScopes"][0]
    sub = scope.split("/")[2]
    status, answer = call("POST", f"{api}/local/azure/emulator/subscriptions/{sub}/grants",
                          {"appId": demo["clientId"], "actions": role["properties"]["permissions"][0]["actions"]})
    assert status == 204, answer
    status, c = call("POST", base + "/connect")
    assert status == 200 and c["status"] == "connected", c
    # The emulator's control routes refuse a body that does not hold, naming the field.
    status, bad = call("POST", f"{api}/local/azure/emulator/subscriptions/{sub}/grants", {})
    assert status == 400 and bad["error"]["field"] == "appId", bad


def test_the_one_command_runs_locally_through_scripts_local_az(served):
    """The page's one command, pasted into the shell `scripts/local-az` prepares (the real Azure
    CLI pointed at the server's emulator, signed in as the demo administrator), connects."""
    api = re.search(r"The wizard:  (http://[^/ ]+)/", served["banner"]).group(1)
    az = os.environ.get("AZ_CLI") or str(ROOT / ".venv-az/bin/az")
    assert pathlib.Path(az).exists(), "the Azure CLI is not installed (scripts/test installs it into .venv-az)"
    status, c = call("POST", api + "/connections", {"accountId": "act-0ead1234", "credentialType": "federated"})
    assert status == 201, c
    cid = c["connectionId"]
    status, issued = call("POST", f"{api}/connections/{cid}/setup-command")
    assert status == 201, issued
    env = dict(fresh_env(), AZ_CLI=az, AZURE_CONNECT_LOCAL=api)
    # No terminal here to answer the consent question on: --yes, as automation would.
    run = subprocess.run([str(served["tree"] / "scripts/local-az"), "bash", "-c", issued["command"] + " --yes"],
                         cwd=served["tree"], env=env, capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "connected: subscription" in run.stdout, run.stdout
    status, c = call("GET", f"{api}/connections/{cid}")
    assert status == 200 and c["status"] == "connected" and c["credentialType"] == "federated", c
