"""The wizard page in real headless Chromium (Debian's chromium + chromedriver, driven by Selenium),
against the local server on its defaults: its own Azure emulator with the demo world, the page
showing the values to enter and doing in the emulator what the portal would (assign the role, add
the federated credential). The app also knows a second, canary secret that the tests type: it
must appear nowhere the page can see. Screenshots of every step go to target/screenshots/ (kept
out of git)."""

import json
import os
import pathlib
import sys
import tempfile
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import pystack  # noqa: E402
from pystack import ROOT  # noqa: E402

SHOTS = ROOT / "target" / "screenshots"
# The demo world's own secret is shown by the page (emulator only); the tests type this canary.
DEMO_SECRET = "Dem8Q~demo.Secret_Value-0123456789abcdef"
SECRET = "Cnr9Q~browser.CANARY_secret-0123456789ab"
TENANT = "contoso.onmicrosoft.com"
APP = "11111111-2222-4333-8444-555555555555"
SUB = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab"


def world_file():
    """The demo world, its app knowing the canary secret too."""
    world = json.loads((ROOT / "emulator/worlds/demo.json").read_text())
    world["tenants"][0]["apps"][0]["passwords"].append({"keyId": "1f8fad5b-d9cb-469f-a165-70867728950e",
                                                       "displayName": "canary", "secretText": SECRET})
    path = pathlib.Path(tempfile.mkdtemp(prefix="azc-world-")) / "world.json"
    path.write_text(json.dumps(world))
    return path


@pytest.fixture()
def stack():
    with pystack.stack(world_file(), budget_ms="3000", embedded_azure=True) as s:
        yield s


@pytest.fixture()
def browser(request):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tempfile.mkdtemp(prefix='azc-chromium-')}"]:
        options.add_argument(arg)
    width, height = getattr(request, "param", (1280, 900))
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def shot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def wait(driver, condition, seconds=15):
    # An element the page has just replaced (a re-rendered row) is looked up again.
    return WebDriverWait(driver, seconds, ignored_exceptions=[StaleElementReferenceException]).until(condition)


def active(driver):
    return driver.switch_to.active_element


def type_and_tab(driver, text):
    """Types into the focused field, then moves on with Tab (keyboard only)."""
    active(driver).send_keys(text)
    active(driver).send_keys(Keys.TAB)


def console_errors(driver):
    """Script errors. (Chromium also logs every 4xx answer of the API as a failed resource: those are
    answers the page renders, not errors.)"""
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and e.get("source") != "network"]


def assign_role(stack, actions):
    body = json.dumps({"appId": APP, "actions": actions}).encode()
    req = urllib.request.Request(f"{stack['emu']}/_emulator/subscriptions/{SUB}/grants", data=body,
                                 headers={"Content-Type": "application/json"}, method="POST")
    urllib.request.urlopen(req).read()


def focused_id(driver):
    return active(driver).get_attribute("id")


def test_the_whole_walk_to_connected_with_the_keyboard_only(stack, browser):
    d = browser
    d.get(stack["api"] + "/")
    # Azure here is the emulator: the page says so and shows what to enter.
    wait(d, lambda d: d.find_element(By.ID, "local-azure").is_displayed())
    assert d.find_element(By.ID, "demo-client").text == APP
    assert d.find_element(By.ID, "demo-subscription").text == SUB
    assert DEMO_SECRET in d.find_element(By.ID, "demo-secret").text
    shot(d, "01-start")
    # Start: focus the account field by keyboard (Tab from the top) and fill the form.
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(30):
        if focused_id(d) == "orgId":
            break
        active(d).send_keys(Keys.TAB)
    assert focused_id(d) == "orgId", "the form is reachable with Tab"
    active(d).send_keys(Keys.TAB)  # organization prefilled: org-1
    assert focused_id(d) == "accountId"
    active(d).send_keys("act-1a2b3c4d")
    # The recommended way (one command) is selected; this walk takes the portal with a secret:
    # into the radio group, two down, back to the account and Enter.
    active(d).send_keys(Keys.TAB)
    assert active(d).get_attribute("value") == "command", "the recommended way is selected"
    active(d).send_keys(Keys.ARROW_DOWN)
    active(d).send_keys(Keys.ARROW_DOWN)
    assert d.find_element(By.CSS_SELECTOR, "input[name=credentialType][value=secret]").is_selected()
    active(d).send_keys(Keys.SHIFT + Keys.TAB)
    assert focused_id(d) == "accountId"
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "tenantId")
    shot(d, "02-app-registration")
    assert d.find_element(By.ID, "side-next").text == "3.2 App registration"

    type_and_tab(d, TENANT)
    assert focused_id(d) == "clientId"
    active(d).send_keys(APP + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "clientSecret")
    shot(d, "03-client-secret")

    active(d).send_keys(SECRET + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "subscriptionId")
    assert d.find_element(By.ID, "side-secret").text.startswith(SECRET[:3])
    shot(d, "04-subscription")

    active(d).send_keys(SUB + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "roleFormat")
    shot(d, "05-custom-role")
    active(d).send_keys(Keys.TAB)  # to "Export JSON Policy"
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "role-copy")
    role = json.loads(d.find_element(By.ID, "role-json").text)
    actions = role["properties"]["permissions"][0]["actions"]
    assert len(actions) == 85
    shot(d, "06-role-exported")
    # On to 3.6 with the keyboard: the continue button after the JSON.
    for _ in range(6):
        if focused_id(d) == "role-next":
            break
        active(d).send_keys(Keys.TAB)
    assert focused_id(d) == "role-next"
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "connect")
    shot(d, "07-role-assignment")

    # Connect before the role is assigned: the diagnosis at 3.6, retryable.
    active(d).send_keys(Keys.ENTER)
    retry = wait(d, EC.presence_of_element_located((By.ID, "connect-retry")), 20)
    result = d.find_element(By.ID, "connect-result").text
    assert "3.6 Role assignment" in result and "No role assignment visible yet" in result, result
    shot(d, "08-not-assigned")
    # A role short of three actions: the missing ones are listed.
    assign_role(stack, actions[3:])
    assert focused_id(d) == "connect-retry"
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: "Missing actions (3)" in d.find_element(By.ID, "connect-result").text, 20)
    missing = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#connect-result .missing li")]
    assert missing == sorted(actions[:3]) or sorted(missing) == sorted(actions[:3]), missing
    shot(d, "09-missing-actions")
    # The customer fixes the role (here the page's emulator button does what the portal would);
    # connect again.
    d.find_element(By.ID, "emu-assign").click()
    wait(d, lambda d: d.find_element(By.ID, "status-emu-assign").text.startswith("Assigned"))
    d.find_element(By.ID, "connect").send_keys(Keys.ENTER)
    wait(d, lambda d: d.find_element(By.ID, "side-status").text == "connected", 20)
    assert "Connected" in d.find_element(By.ID, "connect-result").text
    assert "Contoso Production" in d.find_element(By.ID, "connect-result").text
    wait(d, lambda d: "Account Connected" in d.find_element(By.ID, "events").text)
    shot(d, "10-connected")
    assert console_errors(d) == []

    # The secret is nowhere: DOM, storage, the answers the page received.
    assert SECRET not in d.page_source
    storage = d.execute_script("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    assert SECRET not in storage
    for entry in d.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.responseReceived":
            continue
        request_id = message["params"]["requestId"]
        try:
            body = d.execute_cdp_cmd("Network.getResponseBody", {"requestId": request_id})["body"]
        except Exception:
            continue  # streamed or gone (server-sent events)
        assert SECRET not in body, message["params"]["response"]["url"]


def start_connection(d, stack, account="act-0c0c0c0c"):
    """A connection walked in the portal with a client secret."""
    d.get(stack["api"] + "/")
    d.find_element(By.CSS_SELECTOR, "input[name=credentialType][value=secret]").click()
    d.find_element(By.ID, "accountId").send_keys(account + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "tenantId")


def test_a_bad_tenant_is_shown_at_3_2(stack, browser):
    d = browser
    start_connection(d, stack)
    active(d).send_keys("not a tenant" + Keys.TAB)
    active(d).send_keys(APP + Keys.ENTER)
    err = wait(d, lambda d: d.find_element(By.ID, "err-tenantId").text or None)
    assert "Directory (tenant) ID" in err
    assert focused_id(d) == "tenantId", "focus on the first error"
    assert d.find_element(By.ID, "tenantId").get_attribute("aria-invalid") == "true"
    shot(d, "11-bad-tenant")
    # A well-formed tenant that does not exist: Azure's answer at the step.
    field = d.find_element(By.ID, "tenantId")
    field.clear()
    field.send_keys("nowhere.onmicrosoft.com" + Keys.ENTER)
    status = wait(d, lambda d: d.find_element(By.ID, "status-app-registration").text or None)
    assert "Directory not found" in status, status
    assert console_errors(d) == []


def test_the_secret_id_pasted_at_3_3_is_explained_at_the_field(stack, browser):
    d = browser
    start_connection(d, stack)
    active(d).send_keys(TENANT + Keys.TAB)
    active(d).send_keys(APP + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "clientSecret")
    secret_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    active(d).send_keys(secret_id + Keys.ENTER)
    err = wait(d, lambda d: d.find_element(By.ID, "err-clientSecret").text or None)
    assert "Secret ID" in err and "Value" in err, err
    assert focused_id(d) == "clientSecret"
    assert d.find_element(By.ID, "clientSecret").get_attribute("value") == "", "a refused secret is not kept"
    shot(d, "12-secret-id")


@pytest.mark.parametrize("browser", [(360, 780)], indirect=True)
def test_a_phone_sized_screen_shows_every_step_without_sideways_scrolling(stack, browser):
    d = browser
    d.get(stack["api"] + "/")
    width = d.execute_script("return document.documentElement.scrollWidth")
    viewport = d.execute_script("return window.innerWidth")
    assert width <= viewport, f"{width} > {viewport}"
    for label in d.find_elements(By.CSS_SELECTOR, "input:not([type=radio]):not([type=checkbox]), select"):
        if label.is_displayed():
            assert d.find_element(By.CSS_SELECTOR, f"label[for='{label.get_attribute('id')}']")
    shot(d, "13-phone")
    assert console_errors(d) == []


def test_a_secretless_connection_shows_the_values_to_enter_and_connects(stack, browser):
    d = browser
    d.get(stack["api"] + "/")
    d.find_element(By.ID, "accountId").send_keys("act-0d0d0d0d")
    d.find_element(By.CSS_SELECTOR, "input[name=credentialType][value=federated]").click()
    d.find_element(By.ID, "accountId").send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "tenantId")
    active(d).send_keys(TENANT + Keys.TAB)
    active(d).send_keys(APP + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "fed-show")
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: d.find_element(By.ID, "fed-subject").text)
    issuer = d.find_element(By.ID, "fed-issuer").text
    subject = d.find_element(By.ID, "fed-subject").text
    assert issuer == stack["api"] + "/oidc" and subject.startswith("azure-connect:org:org-1:connection:")
    shot(d, "14-federated-credential")
    # The page adds it to the app in the emulator, as the customer would in the portal.
    d.find_element(By.ID, "emu-federated").click()
    wait(d, lambda d: d.find_element(By.ID, "status-federated-credential").text.startswith("Added"))
    d.find_element(By.CSS_SELECTOR, "#stepper [data-step=subscription]").click()
    active(d).send_keys(SUB + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "roleFormat")
    active(d).send_keys(Keys.TAB)
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "role-copy")
    d.find_element(By.ID, "role-next").click()
    d.find_element(By.ID, "emu-assign").click()
    wait(d, lambda d: d.find_element(By.ID, "status-emu-assign").text.startswith("Assigned"))
    d.find_element(By.ID, "connect").click()
    wait(d, lambda d: d.find_element(By.ID, "side-status").text == "connected", 20)
    assert d.find_element(By.ID, "side-credential").text == "federated credential"
    assert d.find_element(By.ID, "side-secret").text == "-"
    shot(d, "15-federated-connected")
    assert console_errors(d) == []


def setup_call(api, method, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/plain"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    with urllib.request.urlopen(urllib.request.Request(api + path, data=data, headers=headers, method=method)) as r:
        return dict(line.split("=", 1) for line in r.read().decode().splitlines() if "=" in line)


def test_the_one_command_is_offered_first_and_its_run_shows_on_the_page(stack, browser):
    d = browser
    d.get(stack["api"] + "/")
    assert d.find_element(By.CSS_SELECTOR, "input[name=credentialType][value=command]").is_selected()
    d.find_element(By.ID, "accountId").send_keys("act-0c0c0c0c" + Keys.ENTER)
    wait(d, lambda d: d.find_element(By.ID, "setup-command").get_attribute("textContent").startswith(" curl -fsSL "))
    assert focused_id(d) == "setup-copy"
    # Azure here is the emulator: the page says where to paste the command on this machine.
    assert "scripts/local-az" in d.find_element(By.ID, "setup-local").text
    command = d.find_element(By.ID, "setup-command").text
    assert f"{stack['api']}/setup/scripts/azure-connect.sh | bash -s -- --token acs1." in command, command
    shot(d, "16-one-command")
    token = command.split("--token ")[1].split(" ")[0]
    # What the script does in Azure (tests/tests/it/setup_script.rs runs the real one with az):
    # here the emulator is told directly, and the script's reports are sent as it sends them.
    plan = setup_call(stack["api"], "GET", f"/setup/plan?subscription={SUB}", token)
    cred = json.dumps({"name": plan["federated_name"], "issuer": plan["federated_issuer"], "subject": plan["federated_subject"],
                       "audiences": [plan["federated_audience"]]}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{stack['emu']}/_emulator/apps/{APP}/federated-credentials", data=cred,
                                                  headers={"Content-Type": "application/json"}, method="POST")).read()
    assign_role(stack, plan["role_actions"].split(" "))
    for phase in ["checked", "application", "credential", "role", "assignment"]:
        setup_call(stack["api"], "POST", "/setup/report", token, {"phase": phase, "scriptVersion": "1"})
    wait(d, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#setup-progress li")) == 5)
    done = setup_call(stack["api"], "POST", "/setup/report", token,
                      {"phase": "done", "scriptVersion": "1", "tenantId": TENANT, "clientId": APP, "subscriptionId": SUB})
    assert done["status"] == "connected", done
    wait(d, lambda d: d.find_element(By.ID, "side-status").text == "connected", 20)
    wait(d, lambda d: d.find_element(By.ID, "status-setup").text == "Connected.")
    assert d.find_element(By.ID, "side-credential").text == "federated credential"
    items = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#setup-progress li")]
    assert items[0].startswith("Checks passed") and items[-1] == "Spot is validating the connection", items
    shot(d, "17-one-command-connected")
    assert console_errors(d) == []


def test_with_a_dev_token_the_page_takes_it_and_its_stream_needs_a_ticket(browser):
    """The server takes tokens: the page sends the token (not X-Org-Id), and its event stream comes
    through a one-time ticket, showing the token's organization's events."""
    with pystack.stack(ROOT / "emulator/worlds/demo.json", server_args=("--dev-token", "page-token=org-page"),
                       budget_ms="3000") as s:
        browser.get(s["api"] + "/")
        wait(browser, EC.element_to_be_clickable((By.ID, "accountId")))
        browser.find_element(By.ID, "devToken").send_keys("page-token")
        browser.find_element(By.ID, "accountId").send_keys("act-1a2b3c4d")
        browser.find_element(By.ID, "accountId").send_keys(Keys.ENTER)
        wait(browser, lambda d: any("Step Completed" in li.text for li in d.find_elements(By.CSS_SELECTOR, "#events li")))
        shot(browser, "dev-token")
        stored = browser.execute_script("return JSON.stringify(sessionStorage)")
        assert "page-token" not in stored
        assert not console_errors(browser)


def test_a_whole_management_group_connects_and_its_subscriptions_take_accounts(stack, browser):
    d = browser
    start_connection(d, stack, account="act-0e0e0e0e")
    active(d).send_keys(TENANT + Keys.TAB)
    active(d).send_keys(APP + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "clientSecret")
    active(d).send_keys(SECRET + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "subscriptionId")
    d.find_element(By.CSS_SELECTOR, "input[name=scope][value=managementGroup]").click()
    assert not d.find_element(By.ID, "subscriptionId").is_displayed()
    d.find_element(By.ID, "managementGroupId").send_keys("contoso-prod")
    d.find_element(By.ID, "defaultSubscriptionId").send_keys(SUB + Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "roleFormat")
    active(d).send_keys(Keys.TAB)
    active(d).send_keys(Keys.ENTER)
    wait(d, lambda d: focused_id(d) == "role-copy")
    role = json.loads(d.find_element(By.ID, "role-json").text)["properties"]
    assert role["assignableScopes"] == ["/providers/Microsoft.Management/managementGroups/contoso-prod"]
    d.find_element(By.ID, "role-next").click()
    # The page's emulator button grants the role at the group, where the portal would.
    d.find_element(By.ID, "emu-assign").click()
    wait(d, lambda d: "managementGroups/contoso-prod" in d.find_element(By.ID, "status-emu-assign").text)
    d.find_element(By.ID, "connect").click()
    wait(d, lambda d: d.find_element(By.ID, "side-status").text == "connected", 20)
    result = d.find_element(By.ID, "connect-result").text
    assert "Management group contoso-prod: 3 subscriptions found" in result, result
    rows = wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#estate-table tbody tr"))
    assert len(rows) == 3
    own = d.find_element(By.ID, f"sub-{SUB}").text
    assert "linked" in own and "act-0e0e0e0e" in own, own
    shot(d, "16-estate")
    # One awaiting an account takes one; the connection's own account is refused for another.
    awaiting = d.find_elements(By.CSS_SELECTOR, "#estate-table input[id^=account-]")
    assert len(awaiting) == 2
    first, second = [a.get_attribute("id").removeprefix("account-") for a in awaiting]
    d.find_element(By.ID, f"account-{first}").send_keys("act-0f0f0f0f" + Keys.ENTER)
    wait(d, lambda d: "act-0f0f0f0f" in d.find_element(By.ID, f"sub-{first}").text)
    assert "linked" in d.find_element(By.ID, f"sub-{first}").text
    d.find_element(By.ID, f"account-{second}").send_keys("act-0e0e0e0e" + Keys.ENTER)
    err = wait(d, lambda d: d.find_element(By.CSS_SELECTOR, f"#sub-{second} .error").text or None)
    assert "already holds" in err, err
    assert focused_id(d) == f"account-{second}"
    shot(d, "17-estate-linked")
    assert console_errors(d) == []
