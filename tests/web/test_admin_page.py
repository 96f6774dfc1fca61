"""The /admin web page: login, CSRF, headers, no token leaks, and a real browser clicking Retry.

The Flask test-client tests run on SQLite and PostgreSQL against real loopback platforms; the
browser test drives Debian's Chromium through Playwright against the hub served by a real
threaded server, and saves the screenshots the README shows (docs/screenshots/).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from hub.models import Message, utcnow
from hub.web import security
from hub.web.traffic import messages_per_minute
from tests.conftest import FAST, HubClient, Trio
from tests.support.loopback_platform import LoopbackPlatform, wait_for

ROOT = Path(__file__).resolve().parents[2]
ADMIN = FAST["HUB_ADMIN_TOKEN"]
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CHROMIUM = Path("/usr/bin/chromium")


# -- helpers ------------------------------------------------------------------------------------
def csrf_of(hub: HubClient) -> str:
    match = CSRF.search(hub.client.get("/admin").text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(hub: HubClient, token: str = ADMIN) -> Any:
    return hub.client.post("/admin/ui/login", data={"token": token, "csrf_token": csrf_of(hub)})


def logged_in(hub: HubClient) -> bool:
    return 'action="/admin/ui/logout"' in hub.client.get("/admin").text


def dead_letters(hub: HubClient) -> list[dict]:
    return hub.admin("GET", "/admin/deadletters").json


def platform_state(hub: HubClient, name: str) -> dict:
    return next(p for p in hub.admin("GET", "/admin/platforms").json if p["name"] == name)


def make_dead_letter(trio: Trio, text: str = "reject me", body: Any = None) -> dict:
    """Have B refuse one message for good (400); return its dead letter."""
    trio.b.respond_with(
        400, kind="message", when=lambda b: b.get("text") == text, times=1, body=body
    )
    trio.send(trio.a, text)
    wait_for(lambda: len(dead_letters(trio.hub)) == 1, message="a dead letter")
    return dead_letters(trio.hub)[0]


def take_down(trio: Trio) -> None:
    """Stop C and send it something, so that delivery fails and C is marked down."""
    trio.c.stop()
    trio.send(trio.a, "while C is away")
    wait_for(lambda: platform_state(trio.hub, "C")["health"] == "down", message="C down")


def seed_traffic(hub: HubClient, minutes_ago: dict[float, int]) -> None:
    """Store messages as if sent ``minutes_ago`` (minutes -> how many), for the traffic chart."""
    now = utcnow()
    with hub.hub.db.write() as session:
        for ago, count in minutes_ago.items():
            sent = now - timedelta(minutes=ago)
            session.add_all(Message(text="seed", sent_at=sent) for _ in range(count))


# -- login, logout, disabled --------------------------------------------------------------------
def test_login_shows_the_dashboard_and_logout_ends_it(trio: Trio) -> None:
    hub = trio.hub
    page = hub.client.get("/admin")
    assert page.status_code == 200 and 'name="token"' in page.text and "Platforms" not in page.text
    answer = login(hub)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    page = hub.client.get("/admin").text
    assert "Logged in." in page and 'data-platform="A"' in page and ADMIN not in page
    answer = hub.client.post("/admin/ui/logout", data={"csrf_token": csrf_of(hub)})
    assert answer.status_code == 303
    page = hub.client.get("/admin").text
    assert "Logged out." in page and 'name="token"' in page and 'data-platform="A"' not in page


def test_the_session_keeps_a_fingerprint_never_the_token(trio: Trio) -> None:
    login(trio.hub)
    cookie = trio.hub.client.get_cookie("hub_admin_session", path="/admin")
    assert cookie is not None
    serializer = trio.hub.app.session_interface.get_signing_serializer(trio.hub.app)
    session = serializer.loads(cookie.value)
    assert set(session) >= {"admin", "csrf"} and ADMIN not in repr(session)


def test_a_wrong_token_is_refused(trio: Trio) -> None:
    answer = login(trio.hub, "not-the-token")
    assert answer.status_code == 303
    page = trio.hub.client.get("/admin").text
    assert "Wrong admin token." in page and not logged_in(trio.hub)
    assert "not-the-token" not in page


def test_changing_the_admin_token_logs_everyone_out(trio: Trio) -> None:
    login(trio.hub)
    assert logged_in(trio.hub)
    trio.hub.app.config["HUB_ADMIN_TOKEN"] = "a-new-token"
    assert not logged_in(trio.hub)


def test_the_session_secret_is_derived_from_the_token_unless_set() -> None:
    one = security.session_secret({"HUB_ADMIN_TOKEN": "t1"})
    assert one == security.session_secret({"HUB_ADMIN_TOKEN": "t1"})  # every worker agrees
    assert one not in (None, "t1") and one != security.session_secret({"HUB_ADMIN_TOKEN": "t2"})
    assert security.session_secret({"HUB_ADMIN_TOKEN": "t1", "HUB_SECRET_KEY": "k"}) == "k"
    assert security.session_secret({"HUB_ADMIN_TOKEN": None}) is None


def test_without_an_admin_token_the_page_says_admin_is_disabled(platforms, make_hub) -> None:
    hub = make_hub(platforms("A"), HUB_ADMIN_TOKEN=None)
    page = hub.client.get("/admin")
    assert page.status_code == 200 and "Admin is disabled" in page.text
    assert 'name="token"' not in page.text
    answer = hub.client.post("/admin/ui/login", data={"token": "", "csrf_token": "x"})
    assert answer.status_code == 403 and "disabled" in answer.text


# -- CSRF -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_posts_without_the_session_csrf_token_do_nothing(trio: Trio, csrf: str | None) -> None:
    dead = make_dead_letter(trio)
    form = {} if csrf is None else {"csrf_token": csrf}
    hub = trio.hub
    # Logging in is refused, even with the right token.
    answer = hub.client.post("/admin/ui/login", data={"token": ADMIN, **form})
    assert answer.status_code == 400 and "CSRF" in answer.text and not logged_in(hub)
    login(hub)
    posts = {
        f"/admin/ui/deadletters/{dead['id']}/retry": {},
        "/admin/ui/replay": {"platform": "B"},
        "/admin/ui/logout": {},
    }
    for path, fields in posts.items():
        answer = hub.client.post(path, data={**fields, **form})
        assert answer.status_code == 400, path
        assert answer.mimetype == "text/html" and "CSRF" in answer.text
    assert [d["id"] for d in dead_letters(hub)] == [dead["id"]]  # not retried
    assert logged_in(hub)  # not logged out
    assert trio.b.texts().count("reject me") == 1  # nothing replayed


def test_a_post_from_a_logged_out_session_is_sent_to_the_login(trio: Trio) -> None:
    dead = make_dead_letter(trio)
    answer = trio.hub.client.post(
        f"/admin/ui/deadletters/{dead['id']}/retry", data={"csrf_token": csrf_of(trio.hub)}
    )
    assert answer.status_code == 303
    assert "Please log in again." in trio.hub.client.get("/admin").text
    assert len(dead_letters(trio.hub)) == 1


# -- headers, tokens -------------------------------------------------------------------------------
@pytest.mark.parametrize("logged", [False, True])
def test_admin_pages_forbid_framing_foreign_content_and_caching(trio: Trio, logged: bool) -> None:
    if logged:
        login(trio.hub)
    for path in ("/admin", "/admin/ui/static/admin.css", "/admin/ui/static/admin.js"):
        answer = trio.hub.client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["X-Frame-Options"] == "DENY"
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    page = trio.hub.client.get("/admin")
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in page.text and "style=" not in page.text  # all of it from 'self'
    refused = trio.hub.client.post("/admin/ui/logout", data={})
    assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
    assert refused.headers["X-Frame-Options"] == "DENY"


def test_no_token_appears_on_any_page(trio: Trio) -> None:
    secrets = [trio.a.token, trio.b.token, trio.c.token, ADMIN]
    # B echoes the request's Authorization header in its refusal, as debug pages do.
    echo = {"error": "refused", "echo": f"Authorization: Bearer {trio.b.token}", "x": ADMIN}
    dead = make_dead_letter(trio, body=echo)
    assert trio.b.token in dead["lastError"]  # the JSON API keeps the answer as it came
    take_down(trio)
    hub = trio.hub
    pages = [hub.client.get("/admin"), hub.client.post("/admin/ui/logout", data={})]
    login(hub)
    pages.append(hub.client.get("/admin"))
    form = {"csrf_token": csrf_of(hub)}
    hub.client.post("/admin/ui/replay", data={**form, "platform": "B", "from_seq": "1"})
    pages.append(hub.client.get("/admin"))
    hub.client.post(f"/admin/ui/deadletters/{dead['id']}/retry", data=form)
    pages.append(hub.client.get("/admin"))
    pages.append(hub.client.post("/admin/ui/replay", data={"platform": "B"}))  # 400 page
    assert "[redacted]" in pages[2].text and 'data-state="down"' in pages[2].text
    for page in pages:
        for secret in secrets:
            assert secret not in page.text, f"{secret!r} on a page"
        assert not any(secret in str(page.headers) for secret in secrets)


def test_the_json_admin_api_is_unchanged_and_a_session_does_not_open_it(trio: Trio) -> None:
    login(trio.hub)
    assert trio.hub.client.get("/admin/platforms").status_code == 401
    answer = trio.hub.admin("GET", "/admin/platforms")
    assert answer.status_code == 200 and {p["name"] for p in answer.json} == {"A", "B", "C"}
    assert answer.mimetype == "application/json"


# -- what the dashboard shows and does -------------------------------------------------------------
def test_the_dashboard_shows_health_queues_dead_letters_and_counts(trio: Trio) -> None:
    dead = make_dead_letter(trio)
    take_down(trio)
    login(trio.hub)
    page = trio.hub.client.get("/admin").text
    row_c = re.search(r'<tr data-platform="C" data-state="down">(.*?)</tr>', page, re.S)
    assert row_c, "C is not marked down"
    assert re.search(r'class="num queue-depth">[1-9]', row_c.group(1))
    assert re.search(r"in \d+ s|due now", row_c.group(1)) and "UTC" in row_c.group(1)
    assert "Connection refused" in row_c.group(1) or "POST http" in row_c.group(1)
    assert '<tr data-platform="A" data-state="up">' in page
    row = re.search(rf'<tr data-event-id="{dead["id"]}" data-platform="B">(.*?)</tr>', page, re.S)
    assert row and "HTTP 400" in row.group(1) and "<td>message<br>" in row.group(1)
    assert 'id="user-count">3<' in page and 'id="room-count">1<' in page
    assert 'id="dead-total">1<' in page and 'id="platforms-down">1<' in page


def test_the_retry_button_queues_the_dead_letter_again(trio: Trio) -> None:
    dead = make_dead_letter(trio)
    first = next(c for c in trio.b.calls if (c.json or {}).get("text") == "reject me")
    login(trio.hub)
    path = f"/admin/ui/deadletters/{dead['id']}/retry"
    answer = trio.hub.client.post(path, data={"csrf_token": csrf_of(trio.hub)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin#dead-letters"
    assert f"Dead letter {dead['id']} queued again" in trio.hub.client.get("/admin").text
    wait_for(lambda: "reject me" in trio.b.texts(acked=True), message="the retried event")
    again = [c for c in trio.b.acked("message") if c.json["text"] == "reject me"]
    assert again[0].webhook_id == first.webhook_id == dead["id"]
    answer = trio.hub.client.post(path, data={"csrf_token": csrf_of(trio.hub)})
    assert "already retried?" in trio.hub.client.get("/admin").text


def test_the_traffic_chart_counts_messages_per_minute(trio: Trio) -> None:
    seed_traffic(trio.hub, {5: 3, 30: 2, 61: 4, 120: 1})
    now = utcnow()
    with trio.hub.hub.db.read() as session:
        traffic = messages_per_minute(session, now)
    assert len(traffic.counts) == 60 and traffic.total == 5 and traffic.peak == 3
    assert traffic.counts[59 - 5] == 3 and traffic.counts[59 - 30] == 2
    bars = traffic.bars()
    assert bars[54].height > bars[29].height > 0 and bars[0].height == 0
    assert bars[54].label.endswith("3 messages")
    login(trio.hub)
    page = trio.hub.client.get("/admin").text
    assert 'id="messages-hour">5<' in page and page.count('class="bar"') == 2


def test_the_replay_form_queues_delivered_events_again(trio: Trio) -> None:
    trio.send(trio.a, "one")
    trio.send(trio.a, "two")
    trio.b.wait_for_texts(2)
    login(trio.hub)
    form = {"csrf_token": csrf_of(trio.hub), "platform": "b", "room_global_id": "A:10"}
    answer = trio.hub.client.post("/admin/ui/replay", data=form)
    assert answer.status_code == 303 and answer.headers["Location"] == "/admin#replay"
    page = trio.hub.client.get("/admin").text
    assert "Replay queued 3 events for b (whole stream, room A:10)." in page  # room + 2 messages
    wait_for(lambda: trio.b.texts(acked=True) == ["one", "two", "one", "two"])


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"platform": "nobody"}, "unknown platform"),
        ({"platform": "B", "from_seq": "-1"}, "'from seq' must be a whole number"),
        ({"platform": "B", "room_global_id": "no-colon"}, "not a global id"),
        ({"platform": "B", "since": "yesterday"}, "'since' is not a time"),
        ({"platform": ""}, "choose a platform"),
    ],
)
def test_the_replay_form_says_what_is_wrong(trio: Trio, fields: dict, says: str) -> None:
    login(trio.hub)
    answer = trio.hub.client.post(
        "/admin/ui/replay", data={"csrf_token": csrf_of(trio.hub), **fields}
    )
    assert answer.status_code == 303
    page = trio.hub.client.get("/admin").text
    assert "Replay refused:" in page and says in page.replace("&#39;", "'")


# -- a real browser ------------------------------------------------------------------------------
@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve the app on a free port with werkzeug's threaded server; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sync_playwright_or_skip() -> Callable[[], Any]:
    """Return Playwright's entry point; skip (never under CI) when Chromium or it is missing."""
    if not os.environ.get("CI"):
        if not CHROMIUM.exists():
            pytest.skip(f"no {CHROMIUM}: apt-get install chromium (.ci/run installs it)")
        pytest.importorskip("playwright", reason="pip install -r requirements-dev.txt")
    from playwright.sync_api import sync_playwright

    return sync_playwright


def chat_platforms(platforms: Callable[..., LoopbackPlatform], make_hub: Callable[..., HubClient]):
    """Three chat apps with a user each and a shared room, as on a real hub."""
    apps = [platforms(name) for name in ("GWT_CHAT", "NET_CHAT", "FLASK_CHAT")]
    hub = make_hub(*apps)
    for app, (user, name) in zip(apps, [(1, "alice"), (7, "bob"), ("c-3", "carol")], strict=True):
        assert hub.post(app, "/user", {"id": user, "name": name}).status_code == 201
    room = {"id": 10, "name": "lobby", "type": "public"}
    room["users"] = [{"GWT_CHAT": [1]}, {"NET_CHAT": [7]}, {"FLASK_CHAT": ["c-3"]}]
    assert hub.post(apps[0], "/room", room).status_code == 201
    for app in apps[1:]:
        wait_for(lambda a=app: len(a.acked("room")) == 1, message=f"{app.name} onboarded")
    return hub, apps


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_a_browser_an_admin_sees_the_outage_and_retries_a_dead_letter(
    platforms, make_hub, tmp_path
) -> None:
    sync_playwright = sync_playwright_or_skip()
    from playwright.sync_api import expect

    hub, (gwt, net, flask_chat) = chat_platforms(platforms, make_hub)
    # A dead letter: NET_CHAT refuses one message for good (400), then takes everything.
    net.respond_with(400, kind="message", when=lambda b: b.get("text") == "/shrug ¯\\_(ツ)_/¯",
                     times=1, body={"error": "unsupported command"})  # fmt: skip
    send = {"roomOriginalPlatform": "GWT_CHAT", "roomId": 10, "senderId": 1}
    hub.post(gwt, "/message", {**send, "text": "/shrug ¯\\_(ツ)_/¯"})
    wait_for(lambda: len(dead_letters(hub)) == 1, message="a dead letter")
    dead = dead_letters(hub)[0]
    first_try = next(c for c in net.calls if c.kind == "message")
    flask_chat.wait_for_texts(1)
    flask_chat.reset()
    # An outage: FLASK_CHAT goes away while messages keep coming.
    flask_chat.stop()
    for text in ("hello everyone", "is FLASK_CHAT down?", "it will get these later"):
        hub.post(gwt, "/message", {**send, "text": text})
    wait_for(lambda: platform_state(hub, "FLASK_CHAT")["health"] == "down", message="down")
    seed_traffic(hub, {ago: 2 + (ago * 7) % 11 for ago in range(1, 58)})

    # The README's screenshots are refreshed on request only, so a test run leaves git clean.
    update = os.environ.get("HUB_UPDATE_SCREENSHOTS") == "1"
    shots = ROOT / "docs" / "screenshots" if update else tmp_path
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with served(hub.app) as base, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{base}/admin")
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            page.screenshot(path=str(shots / "admin-login.png"))
            page.get_by_label("Admin token").fill("wrong")
            page.get_by_role("button", name="Log in").click()
            expect(page.locator(".flash-error")).to_have_text("Wrong admin token.")
            page.get_by_label("Admin token").fill(ADMIN)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator(".flash-ok")).to_have_text("Logged in.")
            assert "token" not in page.url and ADMIN not in page.content()

            down = page.locator('tr[data-platform="FLASK_CHAT"]')
            expect(down.locator(".badge")).to_have_text("down")
            expect(down.locator(".queue-depth")).to_have_text("3")
            expect(page.locator('tr[data-platform="NET_CHAT"] .badge')).to_have_text("up")
            letter = page.locator(f'tr[data-event-id="{dead["id"]}"]')
            expect(letter).to_contain_text("unsupported command")
            # The CSS and the script came through the CSP: styled badge, localised times.
            red = down.locator(".badge").evaluate("e => getComputedStyle(e).backgroundColor")
            assert red == "rgb(254, 228, 226)"
            expect(page.locator("time").first).to_have_attribute("title", re.compile("your time"))
            page.screenshot(path=str(shots / "admin-dashboard.png"), full_page=True)

            letter.get_by_role("button", name="Retry").click()
            expect(page.locator(".flash-ok")).to_contain_text("queued again")
            wait_for(lambda: "/shrug ¯\\_(ツ)_/¯" in net.texts(acked=True), message="retried")
            retried = [c for c in net.acked("message") if c.json["text"].startswith("/shrug")]
            assert retried[0].webhook_id == first_try.webhook_id == dead["id"]
            page.reload()
            expect(page.locator("#dead-letters tr[data-event-id]")).to_have_count(0)

            flask_chat.start()  # back: its queue is replayed in order
            flask_chat.wait_for_texts(3, timeout=15)
            page.locator("#replay select").select_option("NET_CHAT")
            page.locator("#replay input[name=room_global_id]").fill("GWT_CHAT:10")
            page.get_by_role("button", name="Replay").click()
            expect(page.locator(".flash-ok")).to_contain_text("Replay queued")
            page.reload()
            expect(page.locator('tr[data-platform="FLASK_CHAT"] .badge')).to_have_text("up")
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
        finally:
            browser.close()
    assert flask_chat.texts(acked=True) == [
        "hello everyone",
        "is FLASK_CHAT down?",
        "it will get these later",
    ]
    assert not problems, problems
