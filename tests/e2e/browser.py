"""A real headless browser for e2e tests: Debian's Chromium and its chromedriver, driven by
Selenium. Nothing is downloaded but Debian packages: when they are missing and the tests run as
root (as CI does), this fixture installs them with apt (`chromium chromium-driver`, about a
minute); as another user it skips, or fails under CI, saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

PACKAGES = ("chromium", "chromium-driver")


def _found() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def chromium_paths() -> tuple[str, str]:
    """(chromium, chromedriver), installed from Debian's packages when missing and root."""
    found = _found()
    if found:
        return found
    if os.geteuid() != 0:
        why = f"no Chromium: apt-get install {' '.join(PACKAGES)} (as root the tests do it)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", *PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = _found()
    assert found, f"{PACKAGES} installed, yet chromium or chromedriver is not on PATH"
    return found


@pytest.fixture(name="browser")
def browser_fixture() -> Iterator[Any]:
    """A headless Chromium window (1360x1100) under Selenium; quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = chromium_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium  # with the driver's path below: no Selenium Manager
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root, in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,1100",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()
