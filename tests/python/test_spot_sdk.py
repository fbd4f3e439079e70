"""Spot's Python SDK (spotinst-sdk2), unchanged, against the local server and the Azure emulator.

scripts/test runs this after the Rust tests (the binaries are built by then). Each test starts its
own azure-emulator and azure-connect-local on free loopback ports.
"""
import json
import os
import pathlib
import sys
import tempfile

import pytest
import requests
from spotinst_sdk2 import SpotinstSession
from spotinst_sdk2.clients.setup import SetupAzureClient  # noqa: F401 (the client under test)
from spotinst_sdk2.client import SpotinstClientException
from spotinst_sdk2.models.setup.azure import AzureCredentials

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from pystack import ROOT, stack  # noqa: E402


TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "11111111-2222-4333-8444-555555555555"
SUB = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"
SECRET = "Py42Q~spot.SDK_canary-0123456789abcdefgh"
TOKEN = "spot-token-123"
ORG = "606079861234"
ACCOUNT = "act-1a2b3c4d"

with open(ROOT / "shared" / "data" / "spot-azure-role-actions.txt") as f:
    ACTIONS = [line.strip() for line in f if line.strip()]


def world(actions):
    grants = [] if actions is None else [{"appId": APP, "actions": actions}]
    return {
        "tenants": [{"id": TENANT, "domains": ["contoso.onmicrosoft.com"],
                     "apps": [{"appId": APP, "passwords": [{"secretText": SECRET}]}]}],
        "subscriptions": [{"id": SUB, "tenantId": TENANT, "displayName": "SDK", "state": "Enabled", "grants": grants}],
    }


@pytest.fixture
def backend():
    """The emulator and the local server; yields (base_url, emulator_url, work dir)."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="azc-sdk-"))
    world_file = work / "world.json"
    world_file.write_text(json.dumps(world(ACTIONS)))
    with stack(world_file, ["--dev-token", f"{TOKEN}={ORG}"]) as s:
        yield s["api"], s["emu"], s["work"]
    # Nothing of the secret in the server's logs or events.
    logs = (s["work"] / "server.log").read_text()
    events = (s["work"] / "events.jsonl").read_text()
    assert logs and SECRET not in logs, "the secret is in the server's logs"
    assert SECRET not in events, "the secret is in the events"


def azure(backend):
    url, _, _ = backend
    return SpotinstSession(base_url=url, auth_token=TOKEN, account_id=ACCOUNT).client("setup_azure", print_output=False)


def set_world(backend, actions):
    _, emu, _ = backend
    requests.put(emu + "/_emulator/world", json=world(actions), timeout=5).raise_for_status()


def creds(secret=SECRET):
    return AzureCredentials(client_id=APP, client_secret=secret, tenant_id=TENANT, subscription_id=SUB)


def test_a_good_connection_is_set_and_reads_back_masked(backend):
    status = azure(backend).set_credentials(creds())
    assert status == {"code": 200, "message": "OK"}
    url, _, _ = backend
    r = requests.get(url + "/azure/setup/credentials", params={"accountId": ACCOUNT},
                     headers={"Authorization": "Bearer " + TOKEN}, timeout=10)
    body = r.json()
    assert r.status_code == 200, body
    item = body["response"]["items"][0]
    assert item["clientSecret"] == SECRET[:3] + "****"
    assert (item["clientId"], item["tenantId"], item["subscriptionId"]) == (APP, TENANT, SUB)
    assert SECRET not in r.text
    # The wizard's view shows the same connection.
    view = requests.get(f"{url}/connections/{item['connectionId']}", headers={"Authorization": "Bearer " + TOKEN}, timeout=10).json()
    assert view["status"] == "connected" and view["clientSecret"]["hint"] == SECRET[:3]
    # Older clients send no expirationDate: the answer says what that costs.
    r = requests.post(url + "/azure/setup/credentials", params={"accountId": ACCOUNT},
                      headers={"Authorization": "Bearer " + TOKEN}, timeout=10,
                      json={"clientId": APP, "clientSecret": SECRET, "tenantId": TENANT, "subscriptionId": SUB})
    assert r.json()["response"]["warnings"][0]["code"] == "expiration-date-missing"


def test_validate_saves_nothing(backend):
    assert azure(backend).validate_credentials(creds()) == {"code": 200, "message": "OK"}
    url, _, _ = backend
    r = requests.get(url + "/azure/setup/credentials", params={"accountId": ACCOUNT},
                     headers={"Authorization": "Bearer " + TOKEN}, timeout=10)
    assert r.status_code == 404, r.text


def test_a_bad_secret_raises_with_our_diagnosis(backend):
    with pytest.raises(SpotinstClientException) as e:
        azure(backend).set_credentials(creds("Wr0ng~secret.value_0123456789abcdefghijk"))
    assert "client-secret-invalid" in e.value.message
    assert "not its Secret ID" in e.value.message
    with pytest.raises(SpotinstClientException) as e:
        azure(backend).validate_credentials(creds("Wr0ng~secret.value_0123456789abcdefghijk"))
    assert "client-secret-invalid" in e.value.message


def test_a_missing_role_raises_with_our_diagnosis(backend):
    set_world(backend, None)
    with pytest.raises(SpotinstClientException) as e:
        azure(backend).set_credentials(creds())
    assert "role-not-assigned" in e.value.message
    assert "role-assignment" in e.value.message


def test_a_missing_action_raises_naming_it(backend):
    set_world(backend, [a for a in ACTIONS if a != "Microsoft.Compute/disks/write"])
    with pytest.raises(SpotinstClientException) as e:
        azure(backend).set_credentials(creds())
    assert "missing-actions" in e.value.message
    assert "Microsoft.Compute/disks/write" in e.value.message


def test_bad_bodies_unknown_tokens_and_accounts_are_spot_shaped_4xx(backend):
    url, _, _ = backend
    auth = {"Authorization": "Bearer " + TOKEN}
    cases = [
        ({"accountId": ACCOUNT}, auth, "{not json"),
        ({"accountId": ACCOUNT}, auth, json.dumps({"clientId": APP})),
        ({"accountId": ACCOUNT}, auth, json.dumps({"clientId": "x", "clientSecret": SECRET, "tenantId": TENANT, "subscriptionId": SUB})),
        ({"accountId": "nope"}, auth, json.dumps({})),
        ({}, auth, json.dumps({})),
        ({"accountId": ACCOUNT}, {"Authorization": "Bearer unknown"}, json.dumps({})),
        ({"accountId": ACCOUNT}, {}, json.dumps({})),
    ]
    for params, headers, body in cases:
        r = requests.post(url + "/azure/setup/credentials", params=params, timeout=10,
                          headers=dict(headers, **{"Content-Type": "application/json"}), data=body)
        assert 400 <= r.status_code < 500, (params, body, r.status_code, r.text)
        env = r.json()
        assert env["response"]["status"]["code"] == r.status_code
        assert env["response"]["errors"][0]["code"]
        assert env["request"]["method"] == "POST"
        assert SECRET not in r.text
    r = requests.get(url + "/azure/setup/credentials", params={"accountId": "act-00000000"}, headers=auth, timeout=10)
    assert r.status_code == 404 and r.json()["response"]["errors"][0]["code"] == "connection-not-found"
