"""reformer-zh-serve's page in a real headless Chromium (Debian's chromium and chromium-driver,
driven by selenium): start the server on loopback with the shipped model, submit a document of
two sections, wait for the summary, and check that every copied summary character is linked to
source characters of the same text and colour. `make test-browser` installs what it needs;
elsewhere this skips, saying what is missing, except under CI=true (`.ci/run`), where a browser
test that cannot run fails: CI must not pass without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
except ImportError:
    selenium = None
NO_BROWSER = ("no headless browser here (needs Debian's chromium and chromium-driver, and selenium): `make "
              "test-browser` installs them") if not (CHROMIUM and CHROMEDRIVER and selenium) else None
IN_CI = os.environ.get("CI", "").lower() == "true"
pytestmark = pytest.mark.skipif(bool(NO_BROWSER) and not IN_CI, reason=str(NO_BROWSER))


@pytest.fixture(scope="module", autouse=True)
def browser_present():  # module scope: before the module's server and driver fixtures
    if NO_BROWSER:  # only reached under CI=true
        pytest.fail(f"CI=true and {NO_BROWSER}; CI cannot pass without the browser test")


def sample_documents(count: int) -> list[str]:
    lines = (ROOT / "reformer_zh" / "sample" / "validation.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["document"] for line in lines[:count]]


@pytest.fixture(scope="module")
def server():
    process = subprocess.Popen([sys.executable, "-m", "reformer_zh.serving.serve", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()  # printed once the model is loaded and the page answers
    if not line.startswith("reformer-zh-serve: "):
        process.kill()
        pytest.fail(f"the server did not start: {line!r}")
    yield line.split()[1]
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def submit(browser, url: str, document: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    browser.execute_script("document.getElementById('document').value = arguments[0];", document)
    browser.find_element(By.ID, "summarize").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 120).until(lambda _: status.text.startswith(("Done", "error")))
    return status.text


def test_copied_summary_characters_are_highlighted_with_their_source(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    status = submit(browser, server, "\n\n".join(sample_documents(2)))
    assert status.startswith("Done"), status
    segments = browser.find_elements(By.CSS_SELECTOR, "#summary .segment")
    assert len(segments) == 2  # one segment per section
    copied = browser.find_elements(By.CSS_SELECTOR, "#summary span.copied")
    assert copied, "no summary character is shown as copied"
    for node in copied:
        ref = node.get_attribute("data-ref")
        marks = browser.find_elements(By.CSS_SELECTOR, f'#source mark[data-ref~="{ref}"]')
        assert "".join(mark.text for mark in marks) == node.text, ref
        colours = {mark.value_of_css_property("background-color") for mark in marks}
        assert colours == {node.value_of_css_property("background-color")}, ref
        section = node.find_element(By.XPATH, "./ancestor::p[@class='segment']").get_attribute("data-section")
        assert {mark.find_element(By.XPATH, "./ancestor::div[contains(@class, 'section')]")
                .get_attribute("data-section") for mark in marks} == {section}, ref
    screenshot = Path(os.environ.get("SERVE_SCREENSHOT") or tmp_path / "serve_page.png")
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_bad_input_shows_the_pipelines_error_on_the_page(server, browser):
    status = submit(browser, server, "   \n ")
    assert status.startswith("error: document 0 is empty (only whitespace)"), status
