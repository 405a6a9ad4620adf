"""Every platform of chalicelib.platforms.registry(), through the generic
interface only, against its simulator module (simulator/platforms/<name>.py):
what a new marketplace gets checked without a test of its own (docs/new-platform.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from chalicelib.domain.actions import Action, ReturnAddress, refusal
from chalicelib.domain.model import (
    CanonicalEvent,
    CaseSnapshot,
    OrderSnapshot,
    OrderStatus,
    ThinMessage,
)
from chalicelib.domain.pulls import windows
from chalicelib.platforms import registry
from chalicelib.platforms.api import CallOutcome
from chalicelib.platforms.base import (
    ApiSession,
    AppCredentials,
    Platform,
    Pulled,
    UnsupportedActionError,
)
from chalicelib.platforms.oauth import OAuthExchangeError
from chalicelib.settings import platform_variable
from chalicelib.store.records import EventLogRecord
from simulator.platforms import registry as simulated_registry
from simulator.platforms.base import SimulatedPlatform
from simulator.server import api_urls, hold_records, issue_session, oauth_urls
from simulator.webhooks import Message, SignedWebhook
from tests.support import NOW, approve, inbound_request, parsed, set_env

START = NOW - timedelta(days=6)
ORDER_ID = "8100001"
ADDRESS = ReturnAddress("杭州市西湖区文三路 1 号", "退货仓", "13800000000", "310012")
# A reason every platform takes: as text, or as a number from the platform's
# own list where it wants one (Taobao-style refusing returned goods).
REASON = "12"


@pytest.fixture(params=sorted(registry()))
def platform(request, monkeypatch) -> Platform:
    """Each platform, with its simulator's demo app as ShopHook's app."""
    name = request.param
    app = simulated_registry()[name].demo_credentials
    set_env(
        monkeypatch,
        {
            platform_variable(name, "app_key"): app.app_key,
            platform_variable(name, "app_secret"): app.app_secret,
        },
    )
    return registry()[name]


def simulated(platform: Platform) -> SimulatedPlatform:
    return simulated_registry()[platform.name]


def story(platform: Platform) -> list[Message]:
    return simulated(platform).order_story(ORDER_ID, START)


def demo_session(simulator: str, platform: Platform) -> str:
    return str(issue_session(simulator, simulated(platform).demo_seller)["access_token"])


def test_every_platform_has_a_simulator_module():
    assert set(simulated_registry()) == set(registry())


def test_a_signed_push_verifies_parses_and_is_acked(stack, platform):
    app = simulated(platform).demo_credentials
    demo_shop = f"{platform.name}:{simulated(platform).demo_seller}"
    for message in story(platform):
        webhook = message.signed(app, NOW)
        (delivery,) = platform.messages(platform.verify(inbound_request(webhook), app, NOW))
        inbound = platform.parse(delivery)
        assert (inbound.platform, inbound.message_id) == (platform.name, message.message_id)
        assert inbound.shop_id in (None, demo_shop)
        answer = stack.send(webhook)
        assert (answer.status, answer.body) == (200, platform.ack()), message.topic
    assert EventLogRecord.count() == len(story(platform))


def test_a_tampered_or_forged_push_is_refused_401_and_stores_nothing(stack, platform):
    app = simulated(platform).demo_credentials
    first = story(platform)[0]
    webhook = first.signed(app, NOW)
    other_order = ORDER_ID[:-1] + "9"
    tampered = SignedWebhook(
        webhook.platform,
        webhook.message_id,
        webhook.path.replace(ORDER_ID, other_order),
        webhook.headers,
        webhook.body.replace(ORDER_ID.encode(), other_order.encode()),
    )
    assert tampered.body != webhook.body
    forged = first.signed(AppCredentials(app.app_key, "not-the-app-secret"), NOW)
    for refused in (tampered, forged):
        answer = stack.send(refused)
        assert answer.status == 401, answer.body
        assert set(answer.body) == set(platform.failure("code", "text"))
    assert EventLogRecord.count() == 0


def test_oauth_connects_a_shop_and_refreshes_its_tokens(simulator, platform):
    app = simulated(platform).demo_credentials
    base_url = oauth_urls(simulator)[platform.name]
    redirect_uri = f"https://shophook.test/oauth/{platform.name}/callback"
    authorize_url = platform.authorize_url(base_url, app, redirect_uri, "state-81")
    granted = approve(authorize_url, "81000001")
    assert granted["state"] == "state-81"
    shop = platform.exchange_code(base_url, app, redirect_uri, granted["code"], NOW)
    assert shop.shop_id == f"{platform.name}:81000001"
    assert shop.tokens.expires_at > NOW
    refreshed = platform.refresh(base_url, app, shop.tokens.refresh_token, NOW)
    assert refreshed.access_token != shop.tokens.access_token
    # A refresh token is good once.
    with pytest.raises(OAuthExchangeError):
        platform.refresh(base_url, app, shop.tokens.refresh_token, NOW)
    # The refreshed session is the one the platform's API honours.
    method, business = platform.ship_request(ORDER_ID, "SF81000001", "SF")
    url = api_urls(simulator)[platform.name]
    result = platform.call(url, app, refreshed.access_token, method, business, NOW)
    assert result.outcome is CallOutcome.SUCCESS, result


def completed(simulator: str, platform: Platform, message: Message) -> CanonicalEvent:
    """The message's canonical event; a thin one's as the platform's detail call
    (`read`) completes it, from what the platform holds."""
    event = parsed(message).event
    if not isinstance(event, ThinMessage):
        return event
    hold_records(simulator, [message])
    session = ApiSession(
        api_urls(simulator)[platform.name],
        simulated(platform).demo_credentials,
        demo_session(simulator, platform),
        NOW,
    )
    shop_id = f"{platform.name}:{simulated(platform).demo_seller}"
    (record,) = platform.read(session, shop_id, event.needs).records
    return record.event


def test_shipping_a_paid_order_is_accepted_by_the_platform(simulator, platform):
    (paid,) = {
        event.order_id
        for event in (completed(simulator, platform, message) for message in story(platform))
        if isinstance(event, OrderSnapshot) and event.status is OrderStatus.PAID
    }
    method, business = platform.ship_request(paid, "SF81000001", "SF")
    url = api_urls(simulator)[platform.name]
    app = simulated(platform).demo_credentials
    result = platform.call(url, app, demo_session(simulator, platform), method, business, NOW)
    assert result.outcome is CallOutcome.SUCCESS, result


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [
        ("rate_limit", CallOutcome.RETRYABLE),
        ("server_error", CallOutcome.RETRYABLE),
        ("invalid_session", CallOutcome.REFRESH_TOKEN),
    ],
)
def test_the_platforms_refusals_map_to_what_shophook_should_do(simulator, platform, fault, outcome):
    requests.post(f"{simulator}/_sim/faults", json={platform.name: [fault]}, timeout=5)
    method, business = platform.ship_request(ORDER_ID, "SF81000001", "SF")
    url = api_urls(simulator)[platform.name]
    app = simulated(platform).demo_credentials
    session = demo_session(simulator, platform)
    assert platform.call(url, app, session, method, business, NOW).outcome is outcome
    assert platform.call(url, app, session, method, business, NOW).outcome is CallOutcome.SUCCESS
    # The platform refuses to take a step twice: ShopHook reads that as done.
    again = platform.call(url, app, session, method, business, NOW)
    assert again.outcome is CallOutcome.ALREADY_DONE


def test_every_action_a_case_allows_is_accepted_by_the_platform(simulator, platform):
    """Each after-sale state of the story, each action the domain allows there and
    the platform supports: the call is one the platform's API carries out."""
    cases = [
        event
        for event in (parsed(message).event for message in story(platform))
        if isinstance(event, CaseSnapshot)
    ]
    url = api_urls(simulator)[platform.name]
    app = simulated(platform).demo_credentials
    session = demo_session(simulator, platform)
    shop_id = f"{platform.name}:{simulated(platform).demo_seller}"
    accepted = []
    for case in cases:
        for action in Action:
            if refusal(action, case) is not None:
                continue
            try:
                method, business = platform.action_request(shop_id, action, case, REASON, ADDRESS)
            except UnsupportedActionError:
                continue
            # Each call on its own: the platform refuses to repeat a step.
            requests.post(f"{simulator}/_sim/reset", timeout=5).raise_for_status()
            result = platform.call(url, app, session, method, business, NOW)
            assert result.outcome is CallOutcome.SUCCESS, (action, case.status, result)
            accepted.append(action)
    assert accepted, "the story should give the seller something to do"


def every_page(platform: Platform, session: ApiSession, shop_id: str, listing: str, window) -> list:
    pages: list[Pulled] = []
    page = None
    while not pages or page is not None:
        pulled = platform.pull(session, shop_id, listing, window, page)
        assert pulled.refused is None, pulled.refused
        pages.append(pulled)
        page = pulled.next_page
    return [record for pulled in pages for record in pulled.records]


def test_what_the_platform_holds_is_pulled_as_the_latest_version_of_each_record(
    simulator, platform
):
    """The story held on the platform, none of it pushed: pulling every listing over
    windows from before the story to now finds each record the platform's listings
    show, as the latest push about it parses, named by entity and modified."""
    shop_id = f"{platform.name}:{simulated(platform).demo_seller}"
    listed = [m for m in story(platform) if simulated(platform).held_record(m) is not None]
    assert listed, "the story should have records a listing shows"
    latest = {}
    for message in listed:
        event = completed(simulator, platform, message)
        latest[type(event), getattr(event, "case_id", event.order_id)] = event
    # Only the listings are called from here on.
    requests.post(f"{simulator}/_sim/reset", timeout=5).raise_for_status()
    hold_records(simulator, story(platform))
    session = ApiSession(
        api_urls(simulator)[platform.name],
        simulated(platform).demo_credentials,
        demo_session(simulator, platform),
        NOW,
    )
    pulled = {
        record.message_id: record
        for window in windows(START - timedelta(minutes=1), NOW)
        for listing in platform.listings
        for record in every_page(platform, session, shop_id, listing, window)
    }
    assert {record.shop_id for record in pulled.values()} == {shop_id}
    assert all(record.pulled for record in pulled.values())
    assert {record.event for record in pulled.values()} == set(latest.values())
    calls = requests.get(f"{simulator}/_sim/calls", timeout=5).json()
    assert {call["method"] for call in calls} == set(platform.listings)
    assert all(call["query"] and call["carried_out"] for call in calls)


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [("rate_limit", CallOutcome.RETRYABLE), ("invalid_session", CallOutcome.REFRESH_TOKEN)],
)
def test_a_refused_pull_says_what_shophook_should_do(simulator, platform, fault, outcome):
    requests.post(f"{simulator}/_sim/faults", json={platform.name: [fault]}, timeout=5)
    session = ApiSession(
        api_urls(simulator)[platform.name],
        simulated(platform).demo_credentials,
        demo_session(simulator, platform),
        NOW,
    )
    (window, *_) = windows(NOW - timedelta(minutes=20), NOW)
    shop_id = f"{platform.name}:{simulated(platform).demo_seller}"
    refused = platform.pull(session, shop_id, platform.listings[0], window, None)
    assert refused.records == () and refused.refused is not None
    assert refused.refused.outcome is outcome
