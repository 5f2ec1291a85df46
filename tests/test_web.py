"""The web page end to end in headless Chromium (Debian's package, driven by Playwright): ask, see citations,
open one in its context, upload a file and find it listed, delete it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from api.app import create_app
from tests.samples import LIGHTHOUSE
from tests.servers import serving, shared_engine, small_settings, wait_job, wait_ready

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, without a sandbox; nothing in the background reaches for the network.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, shared_models: dict[str, Any]) -> Iterator[str]:
    settings = small_settings(tmp_path_factory.mktemp("web") / "index")
    with serving(create_app(settings, shared_engine(settings, shared_models))) as url:
        wait_ready(url)
        with httpx.Client(base_url=url, timeout=120) as client:
            job = client.post("/v1/documents", files=[("files", ("lighthouse.md", LIGHTHOUSE.encode()))]).json()
            assert wait_job(client, job["job"]["id"])["state"] == "done"
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs Debian's chromium package"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_ask_see_citations_and_open_one_in_context(base: str, browser: Browser) -> None:
    page = browser.new_page()
    page.goto(base)
    page.fill("#q", "Who designed the Velmora lighthouse?")
    page.click("#askbtn")
    expect(page.locator("#steps li").first).to_be_visible(timeout=60_000)  # live research steps
    cite = page.locator("button.cite").first
    expect(cite).to_be_visible(timeout=180_000)
    assert "Ada Quist" in page.inner_text(".sources")
    cite.click()
    mark = page.locator("#quote mark")
    expect(mark).to_be_visible(timeout=30_000)
    quote = page.locator(".sources li").nth(int(cite.inner_text()) - 1).inner_text()
    assert mark.inner_text() in quote
    context = page.inner_text("#quote .context")
    assert len(context) > len(mark.inner_text()) and "lighthouse.md" in page.inner_text("#quote")
    page.close()


def test_upload_a_file_find_it_listed_and_delete_it(base: str, browser: Browser, tmp_path: Path) -> None:
    note = tmp_path / "kelp-survey.md"
    note.write_text("# Kelp survey\n\nThe kelp forest off Velmora grew by a third in 2023.\n")
    page = browser.new_page()
    page.goto(base)
    expect(page.locator("#docs")).to_contain_text("Velmora Lighthouse", timeout=30_000)
    page.set_input_files("#files", str(note))
    page.click("#uploadbtn")
    expect(page.locator("#jobstatus")).to_contain_text("ingested 1", timeout=120_000)
    row = page.locator("#docs li", has_text="Kelp survey")
    expect(row).to_be_visible()
    row.locator("button").click()
    row.locator("button", has_text="confirm delete").click()
    expect(page.locator("#docs")).not_to_contain_text("Kelp survey", timeout=30_000)
    expect(page.locator("#docs")).to_contain_text("Velmora Lighthouse")
    expect(page.locator("#docstatus")).to_contain_text("removed Kelp survey (1 chunk)")
    expect(page.locator("#jobstatus")).to_contain_text("ingested 1")  # the upload's outcome stays readable
    page.close()
