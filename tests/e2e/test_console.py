"""The seller console in a real browser against `shophook local`: a seller signs
in with the (simulated) marketplace, sees a waiting case with its decision and
deadline, agrees it and watches it reach `sent` on the platform; what other
browsers, other sellers and forged forms get. Screenshots are kept under
$SHOPHOOK_SCREENSHOTS when set (to look at them), else in the test's tmp dir."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import requests

from tests.e2e.stack import simulate

SHOP = "taobao:2200000001"
OTHER_SELLER = "2200000002"
CASE = "R3060001"  # `shophook simulate awaiting-refund`: the goods are back


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SHOPHOOK_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sign_in(browser, url: str, platform: str, seller: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get(f"{url}/console")
    browser.find_element(By.CSS_SELECTOR, f"a[data-test=sign-in-{platform}]").click()
    field = browser.find_element(By.NAME, "seller")  # the simulated marketplace's page
    field.clear()
    field.send_keys(seller)
    browser.find_element(By.ID, "approve").click()
    WebDriverWait(browser, 30).until(
        lambda b: (
            b.current_url.rstrip("/").endswith("/console")
            and b.find_elements(By.CSS_SELECTOR, "[data-test=shop-name]")
        )
    )


def cookies_of(browser) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in browser.get_cookies()}


def csrf_of(browser) -> str:
    from selenium.webdriver.common.by import By

    return browser.find_element(By.NAME, "csrf").get_attribute("value")


@pytest.mark.e2e
def test_a_seller_signs_in_agrees_a_waiting_refund_and_sees_it_sent(
    local_stack, new_browser, tmp_path
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    url, *_, simulator_url = local_stack
    folder = shots(tmp_path)
    simulate(url, "awaiting-refund")
    browser = new_browser()
    browser.set_window_size(1280, 900)
    browser.get(f"{url}/console")
    assert browser.find_elements(By.CSS_SELECTOR, "a[data-test=sign-in-jd]")
    browser.save_screenshot(str(folder / "console-sign-in.png"))

    sign_in(browser, url, "taobao", "2200000001")
    assert browser.find_element(By.CSS_SELECTOR, "[data-test=shop-name]").text
    assert int(browser.find_element(By.CSS_SELECTOR, "[data-test=count-open]").text) >= 1
    row = browser.find_element(By.CSS_SELECTOR, f"[data-test=case-row][data-case-id={CASE}]")
    assert "law.no_reason_return" in row.find_element(By.CSS_SELECTOR, "[data-test=decision]").text
    browser.save_screenshot(str(folder / "console-dashboard.png"))

    row.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 10).until(lambda b: f"/after-sales/{CASE}" in b.current_url)
    decision = browser.find_element(By.CSS_SELECTOR, "[data-test=decision]").text
    assert "law.no_reason_return" in decision and "Source:" in decision
    deadlines = browser.find_elements(By.CSS_SELECTOR, "[data-test=deadline]")
    assert deadlines and all(d.get_attribute("data-due-at") for d in deadlines)
    # Returned goods: the refund is what the state allows; a return is agreed already.
    assert browser.find_elements(By.CSS_SELECTOR, "[data-test=agree-refund]")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-test=agree-return]")
    browser.save_screenshot(str(folder / "console-case.png"))

    browser.find_element(By.CSS_SELECTOR, "[data-test=agree-refund]").click()
    status = WebDriverWait(browser, 10).until(
        lambda b: b.find_element(By.CSS_SELECTOR, "[data-test=action-status]")
    )
    assert status.get_attribute("data-state") in ("queued", "sent")
    # No reload: the page's script follows the action until the platform took it.
    WebDriverWait(browser, 60).until(
        lambda b: (
            b.find_element(By.CSS_SELECTOR, "[data-test=action-status]").get_attribute("data-state")
            == "sent"
        )
    )
    browser.refresh()
    # Asked once: offered again only when the platform says what became of it.
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-test=agree-refund]")
    browser.save_screenshot(str(folder / "console-case-sent.png"))
    calls = requests.get(f"{simulator_url}/_sim/calls", timeout=10).json()
    agreed = [
        call
        for call in calls
        if call["method"] == "taobao.rp.refunds.agree" and CASE in str(call["params"])
    ]
    assert len(agreed) == 1 and agreed[0]["carried_out"]

    # The same pages on a phone, and in Chinese.
    browser.set_window_size(390, 844)
    browser.get(f"{url}/console")
    browser.save_screenshot(str(folder / "console-dashboard-phone.png"))
    browser.find_element(By.CSS_SELECTOR, "[data-test=language]").click()
    WebDriverWait(browser, 10).until(lambda b: "待处理售后" in b.page_source)
    browser.get(f"{url}/console/after-sales/{CASE}")
    assert "依据的规则" in browser.page_source
    browser.save_screenshot(str(folder / "console-case-phone-zh.png"))


@pytest.mark.e2e
def test_forms_without_the_sessions_token_change_nothing(local_stack, new_browser):
    from selenium.webdriver.common.by import By

    url, *_ = local_stack
    simulate(url, "awaiting-refund")
    mine, other = new_browser(), new_browser()
    sign_in(mine, url, "taobao", "2200000001")
    sign_in(other, url, "taobao", OTHER_SELLER)
    mine.get(f"{url}/console/after-sales/{CASE}")
    before = len(mine.find_elements(By.CSS_SELECTOR, "[data-test=action-status]"))
    session = requests.Session()
    session.cookies.update(cookies_of(mine))
    action = f"{url}/console/after-sales/{CASE}/actions"
    for token in ({}, {"csrf": ""}, {"csrf": csrf_of(other)}):
        answer = session.post(action, data={"action": "agree_refund", **token}, timeout=10)
        assert answer.status_code == 403, answer.text
        assert "expired" in answer.text
    mine.get(f"{url}/console/after-sales/{CASE}")
    assert len(mine.find_elements(By.CSS_SELECTOR, "[data-test=action-status]")) == before


@pytest.mark.e2e
def test_another_seller_and_no_session_see_nothing_of_the_case(local_stack, new_browser):
    url, *_ = local_stack
    simulate(url, "awaiting-refund")
    other = new_browser()
    sign_in(other, url, "taobao", OTHER_SELLER)
    for path in (f"/console/after-sales/{CASE}", "/console/orders/3060001"):
        other.get(f"{url}{path}")
        assert "Not found" in other.page_source and "¥" not in other.page_source
        assert (
            requests.get(f"{url}{path}", cookies=cookies_of(other), timeout=10).status_code == 404
        )
        signed_out = requests.get(f"{url}{path}", timeout=10)
        assert signed_out.status_code == 401
        assert "sign-in-taobao" in signed_out.text and "¥" not in signed_out.text


@pytest.mark.e2e
def test_a_key_issued_in_the_console_reads_its_own_shop_only(local_stack, new_browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    url, *_ = local_stack
    simulate(url, "awaiting-refund")
    browser = new_browser()
    sign_in(browser, url, "taobao", "2200000001")
    browser.get(f"{url}/console/integrations")
    browser.find_element(By.NAME, "name").send_keys("my ERP")
    browser.find_element(By.CSS_SELECTOR, "[data-test=create-key]").click()
    key = browser.find_element(By.CSS_SELECTOR, "[data-test=key-secret]").text
    assert re.fullmatch(r"shk_[\w-]{40,}", key)
    browser.save_screenshot(str(shots(tmp_path) / "console-integrations.png"))
    headers = {"Authorization": f"Bearer {key}"}
    own = requests.get(f"{url}/shops/{SHOP}/after-sales/{CASE}", headers=headers, timeout=10)
    assert own.status_code == 200 and own.json()["case_id"] == CASE
    for foreign in ("/shops/jd:10000001/orders/9001", f"/shops/taobao:{OTHER_SELLER}/orders/1"):
        assert requests.get(f"{url}{foreign}", headers=headers, timeout=10).status_code == 404
    # Shown once: the page holds it no more, and revoking it stops it.
    browser.get(f"{url}/console/integrations")
    assert key not in browser.page_source
    browser.find_element(By.CSS_SELECTOR, "[data-test=key-row] [data-test=revoke-key]").click()
    WebDriverWait(browser, 10).until(
        lambda b: not b.find_elements(By.CSS_SELECTOR, "[data-test=revoke-key]")
    )
    revoked = requests.get(f"{url}/shops/{SHOP}/after-sales/{CASE}", headers=headers, timeout=10)
    assert revoked.status_code == 401
