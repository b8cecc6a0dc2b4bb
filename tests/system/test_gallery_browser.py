"""The class gallery in Chromium with three browser contexts at once, as in a lecture hall: the teacher opens a
room, a phone joins by its code (the notice first, no upload control before it is accepted) and uploads a photo,
the teacher approves it, and the projected grid shows it within 5 s of the approval without a reload. Neither
the phone nor the projector ever receives the teacher link. Once with one server on SQLite, once with two app
processes on one PostgreSQL database (started here on loopback), the phone on one and the projector on the other.

Debian's Chromium driven by Playwright; screenshots go to /tmp/shots/gallery_*.png.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import SAMPLES_DIR, fail_or_skip
from test_browser import (CHROMIUM, CHROMIUM_ARGS, PAGE_TIMEOUT_MS, SHOTS, assert_server_log_clean, running_app,
                          wait_until_idle)
from test_gallery_life import postgres_cluster

SHOWN_WITHIN_S = 5.0
QUEUE_WAIT_MS = 30_000  # the teacher's queue polls every few seconds
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@pytest.fixture(scope="module")
def gallery_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gallery-server")
    with running_app(folder, SHUFFLENET_LENS_GALLERY_DB=f"sqlite:///{folder / 'gallery.db'}") as served:
        yield served


def open_page(context, url: str):
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_test_id("stMain").locator("h1").first.wait_for()
    wait_until_idle(page)
    return page


def class_in_three_browsers(teacher_url: str, phone_url: str, projector_url: str, shots: str) -> float:
    """The teacher opens a room at `teacher_url`, a phone joins at `phone_url` and uploads, the teacher approves,
    the projector at `projector_url` shows it: returns the seconds from the approval to the photo on the
    projector. Screenshots go to /tmp/shots/gallery_<shots>_*.png."""
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            laptop = browser.new_context(viewport={"width": 1280, "height": 900})
            projector_screen = browser.new_context(viewport={"width": 1280, "height": 720})
            phone_browser = browser.new_context(**PHONE)

            # The teacher opens a room; the teacher link is that page's address.
            teacher = open_page(laptop, f"{teacher_url}/gallery")
            teacher.get_by_role("button", name="Open a room").click()
            code_box = teacher.locator(".st-key-gallery_teacher_code")
            expect(code_box).to_contain_text("Join code:", timeout=PAGE_TIMEOUT_MS)
            code = re.search(r"Join code:\s*([A-Z0-9]{6})", code_box.inner_text()).group(1)
            secret = re.search(r"[?&]teacher=([^&]+)", teacher.url).group(1)
            assert len(secret) >= 22

            # The projector shows the grid, the code and the QR code.
            projector = open_page(projector_screen, f"{projector_url}/gallery?show={code}&projector=1")
            expect(projector.locator(".st-key-gallery_join")).to_contain_text(code)
            expect(projector.locator(".st-key-gallery_join img")).to_be_visible()
            expect(projector.locator(".st-key-gallery_facts")).to_contain_text("No photo is on the grid yet.")

            # A phone joins by the code: the notice, and no upload control until it is accepted.
            phone = open_page(phone_browser, f"{phone_url}/gallery?code={code.lower()}")
            notice = phone.locator(".st-key-gallery_notice")
            expect(notice).to_contain_text("Avoid faces")
            expect(notice).to_contain_text("Two models classify it")
            main = phone.get_by_test_id("stMain")  # (the sidebar's own picture upload is another matter)
            assert main.locator("input[type=file]").count() == 0
            phone.screenshot(path=str(SHOTS / f"gallery_{shots}_phone_notice.png"))
            phone.get_by_role("button", name="I understand: let me send a photo").click()
            upload = main.locator("input[type=file]").first
            upload.wait_for(state="attached")
            upload.set_input_files(str(SAMPLES_DIR / "dog.jpg"))
            expect(phone.get_by_text("Sent. It appears on the projector once your teacher approves it.")) \
                .to_be_visible(timeout=PAGE_TIMEOUT_MS)
            wait_until_idle(phone)
            phone.screenshot(path=str(SHOTS / f"gallery_{shots}_phone_sent.png"))

            # The teacher's queue shows it within a poll; the approval reaches the projector within 5 s.
            approve = teacher.locator("[class*='st-key-gallery_approved_'] button").first
            approve.wait_for(state="visible", timeout=QUEUE_WAIT_MS)
            assert projector.locator("[class*='st-key-gallery_cell_']").count() == 0  # not before approval
            teacher.screenshot(path=str(SHOTS / f"gallery_{shots}_teacher_queue.png"))
            approve.click()
            approved_at = time.monotonic()
            cell = projector.locator("[class*='st-key-gallery_cell_']").first
            cell.locator("img").wait_for(state="visible", timeout=int(SHOWN_WITHIN_S * 1000) + 2000)
            shown_after = time.monotonic() - approved_at
            assert shown_after <= SHOWN_WITHIN_S, f"the projector showed the photo {shown_after:.1f} s after approval"
            expect(projector.locator(".st-key-gallery_facts")).to_contain_text("On your 1 photo, g=1 and g=3")
            expect(cell).to_contain_text("g=1:")
            projector.wait_for_timeout(1000)
            projector.screenshot(path=str(SHOTS / f"gallery_{shots}_projector.png"))

            for page, where in ((teacher, "teacher"), (projector, "projector"), (phone, "phone")):
                shown = page.locator('[data-testid="stException"]')
                assert shown.count() == 0, f"{where}: {shown.first.inner_text()}"
                assert "Traceback" not in page.content(), f"{where}: a traceback is on the page"
            for page in (projector, phone):
                assert secret not in page.content() and secret not in page.url
        finally:
            browser.close()
    return shown_after


def require_chromium() -> None:
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`")


def test_a_phone_joins_the_teacher_approves_the_projector_shows_it(gallery_server):
    require_chromium()
    url, log_path = gallery_server
    shown_after = class_in_three_browsers(url, url, url, "one_server")
    print(f"\nshown on the projector {shown_after:.2f} s after the teacher's approval (one server, SQLite)")
    assert_server_log_clean(log_path)


def test_a_photo_sent_through_one_replica_is_projected_by_the_other(tmp_path):
    # Two app processes on one PostgreSQL database, as behind the load balancer: the phone reaches one, the
    # teacher and the projector the other.
    require_chromium()
    for replica in ("a", "b"):
        (tmp_path / replica).mkdir()
    with postgres_cluster() as (database_url, _data):
        with running_app(tmp_path / "a", SHUFFLENET_LENS_GALLERY_DB=database_url) as (phone_url, log_a), \
                running_app(tmp_path / "b", SHUFFLENET_LENS_GALLERY_DB=database_url) as (other_url, log_b):
            shown_after = class_in_three_browsers(other_url, phone_url, other_url, "two_replicas")
    print(f"\nshown on replica B's projector {shown_after:.2f} s after the approval of a photo sent through "
          f"replica A (PostgreSQL)")
    assert_server_log_clean(log_a)
    assert_server_log_clean(log_b)
