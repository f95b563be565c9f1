"""The bench page in a real browser (Debian's chromium, headless, driven by Selenium): a slot
goes from a step to its verdict during a simulated run; an operator clears a slot through the
page; a page from another origin cannot.

Without chromium and its driver these tests skip on a workstation, and FAIL in CI (CI=true):
.ci/run installs them, so a missing browser there is a broken CI, not a reason to pass."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time

import pytest

from rig.serve.server import ThreadedServer
from rig.sim.bench import SimBench, SimSlot
from rig.sim.camera import SimFaults
from tests.serve_support import BASE, MAC_BLOCK, run_batch, served
from tests.test_serve_security import out_of_service_bench

CHROME_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-dev-shm-usage")


def need_browser() -> tuple[str, str]:
    """chromium and chromedriver, or a skip (a failure when CI is set)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromium-driver", driver))
               if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        why = f"browser tests need {', '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(why + " and CI is set: .ci/run should have installed them")
        pytest.skip(why)
    return chromium, driver


@pytest.fixture
def browser(tmp_path):
    chromium, driver_path = need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (*CHROME_ARGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, condition, timeout: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def alert(driver):
    """The next alert or prompt, waited for (it comes after a fetch answers)."""
    from selenium.webdriver.support import expected_conditions
    return wait_for(driver, expected_conditions.alert_is_present(), 10)


def text_of(driver, selector: str) -> str | None:
    """An element's text read in one go (the cards are redrawn on every change: an element
    found a moment ago may be gone by the time its text is asked for)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        selector)


def card_attr(driver, slot: str, name: str) -> str:
    return driver.execute_script(
        f"const c = document.getElementById('slot-{slot}'); return c ? c.dataset.{name} : null;")


RECORDER = """
window.seen = [];
const note = () => { for (const c of document.querySelectorAll('.card')) {
  const step = c.querySelector('.step-name');
  window.seen.push([c.id, c.dataset.state, step ? step.textContent : '',
                    c.querySelector('.verdict').textContent]); } };
new MutationObserver(note).observe(document.getElementById('slots'), {childList: true});
"""


def test_a_slot_goes_from_its_step_to_its_verdict_live(browser, tmp_path):
    db = tmp_path / "records.sqlite"
    spec = [SimSlot("gpio", "current"), SimSlot("poe", "current", SimFaults(jammed_button=True))]
    with SimBench.start(spec, directory=tmp_path, time_scale=20, base=BASE, first=40,
                        mac_block=MAC_BLOCK, provision="Browser-pass1") as sim:
        with served(db, bench=sim.bench) as (url, _store):
            browser.get(url + "/")
            wait_for(browser, lambda d: d.find_element("id", "live").text == "live", 15)
            assert card_attr(browser, "1", "state") == "idle"
            browser.execute_script(RECORDER)
            batch = threading.Thread(target=run_batch, args=(sim, db), kwargs={"method": "hard"})
            batch.start()
            try:
                wait_for(browser, lambda d: card_attr(d, "1", "state") == "running")
                elapsed = wait_for(browser, lambda d: text_of(d, "#slot-1 .elapsed"), 30)
                assert re.fullmatch(r"\d+\.\d s( of \d+\.\d s)?", elapsed), elapsed
            finally:
                batch.join(timeout=120)
            wait_for(browser, lambda d: card_attr(d, "2", "verdict") == "not-default", 15)
            wait_for(browser, lambda d: card_attr(d, "1", "verdict") == "factory-default", 15)
            passed = browser.find_element("css selector", "#slot-1 .verdict")
            failed = browser.find_element("css selector", "#slot-2 .verdict")
            assert (passed.text, failed.text) == ("PASS", "FAIL")
            assert passed.value_of_css_property("background-color") == "rgba(26, 127, 55, 1)"
            assert failed.value_of_css_property("background-color") == "rgba(207, 34, 46, 1)"
            reason = text_of(browser, "#slot-2 .reason")
            assert "inactive-sadp" in reason or "Activated" in reason
            seen = browser.execute_script("return window.seen;")
    steps_of_2 = [step for card, state, step, _ in seen if card == "slot-2" and state == "running"]
    assert "hold" in steps_of_2 or "wait for boot" in steps_of_2, seen
    assert [v for card, _, _, v in seen if card == "slot-2"][-1] == "FAIL"


def test_an_operator_clears_a_slot_from_the_page(browser, tmp_path):
    with served(tmp_path / "r.sqlite") as (url, store):
        out_of_service_bench(store)
        browser.get(url + "/")
        wait_for(browser, lambda d: card_attr(d, "1", "state") == "out-of-service", 15)
        text = browser.find_element("id", "slot-1").text
        assert "solenoid sticks" in text and "tech" in text
        browser.find_element("css selector", "#slot-1 button.clear").click()
        for answer in ("ann", "new solenoid fitted"):
            prompt = alert(browser)
            prompt.send_keys(answer)
            prompt.accept()
        wait_for(browser, lambda d: card_attr(d, "1", "state") == "idle", 10)
        event = store.slots.events("b", "1")[0]
        assert (event.event, event.actor, event.reason) == ("cleared", "ann (local)",
                                                            "new solenoid fitted")


def attacker_app(target: str):
    """A page on another origin that tries to clear slot 1 twice: a script's fetch with the
    action header (needs a CORS preflight rig never grants) and a plain auto-submitted form."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route
    html = f"""<!DOCTYPE html><html><body>
<form id="f" method="post" action="{target}/api/slots/1/clear" target="sink">
<input name="by" value="eve"><input name="why" value="csrf"></form>
<iframe name="sink"></iframe>
<script>
window.result = "pending";
fetch("{target}/api/slots/1/clear", {{method: "POST", credentials: "include",
  headers: {{"Content-Type": "application/json", "X-Rig-Request": "1"}},
  body: JSON.stringify({{by: "eve", why: "csrf"}})}})
  .then(r => {{ window.result = "status " + r.status; }})
  .catch(e => {{ window.result = "blocked"; }});
document.getElementById("f").submit();
</script></body></html>"""

    async def evil(request):
        return HTMLResponse(html)
    return Starlette(routes=[Route("/", evil)])


def test_a_scanner_pins_a_slot_and_a_redraw_mid_scan_loses_nothing(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    with served(tmp_path / "r.sqlite") as (url, store):
        out_of_service_bench(store)
        browser.get(url + "/")
        wait_for(browser, lambda d: card_attr(d, "1", "state") == "out-of-service", 15)
        browser.find_element("id", "pin-2").click()
        scanner = ActionChains(browser)                 # types into whatever has the focus
        scanner.send_keys("DS-2CD2143G0").perform()
        store.slots.clear("b", "1", by="tech")          # the cards are redrawn mid-scan
        wait_for(browser, lambda d: card_attr(d, "1", "state") == "idle", 10)
        scanner = ActionChains(browser)
        scanner.send_keys("-I0001\n").perform()         # the rest of the code, then Enter
        wait_for(browser, lambda d: "DS-2CD2143G0-I0001" in (text_of(d, "#pinned-2") or ""), 10)
        assert browser.execute_script("return document.getElementById('pin-2').value") == ""
        [pin] = store.pins.open("b").values()
        assert (pin.slot, pin.serial, pin.mac, pin.pinned_by) == ("2", "DS-2CD2143G0-I0001",
                                                                   None, "local")
        browser.find_element("css selector", "#slot-2 button.unpin").click()
        wait_for(browser, lambda d: text_of(d, "#pinned-2") is None, 10)
        assert store.pins.open("b") == {} and store.pins.history("b", "2")[0].cleared_by == \
            "local"


def test_a_page_from_another_origin_cannot_act(browser, tmp_path):
    with served(tmp_path / "r.sqlite") as (url, store):
        out_of_service_bench(store)
        with ThreadedServer(attacker_app(url)) as evil:
            browser.get(evil.url + "/")
            wait_for(browser, lambda d: d.execute_script("return window.result") != "pending",
                     10)
            assert browser.execute_script("return window.result") == "blocked"
            time.sleep(0.5)                          # the form's POST has landed by now
        assert store.slots.status("b", "1").out_of_service
        assert [e.event for e in store.slots.events("b", "1")] == ["taken-out"]


def test_the_page_starts_a_run_and_says_why_a_stop_is_refused(browser, tmp_path):
    db = tmp_path / "records.sqlite"
    spec = [SimSlot("relay", "current")]
    with SimBench.start(spec, directory=tmp_path, time_scale=50, base=BASE, first=60,
                        mac_block=MAC_BLOCK, provision="Page-pass1") as sim:
        with served(db, bench=sim.bench) as (url, store):
            browser.get(url + "/")
            wait_for(browser, lambda d: d.find_element("id", "live").text == "live", 15)
            browser.find_element("id", "stop").click()
            prompt = alert(browser)
            prompt.send_keys("ann")
            prompt.accept()
            refusal = alert(browser)
            assert "no run of this bench is running" in refusal.text
            refusal.accept()
            browser.find_element("css selector", "#method option[value='poe-cycle']").click()
            browser.find_element("id", "start").click()
            prompt = alert(browser)
            prompt.send_keys("ann")
            prompt.accept()
            wait_for(browser, lambda d: card_attr(d, "1", "verdict") == "not-default", 60)
            assert store.runs.load_run(1).run.method == "poe-cycle"
