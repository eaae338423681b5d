"""The staff side: accounts, sign-in and sign-out, sessions, CSRF, the sign-in rate limit,
the landing page, and the wall between staff and customer credentials."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Literal

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from typer.testing import CliRunner
from web_support import (
    ASKS_FOR_A_PERSON,
    ESCALATION_REASON,
    FAST_HASHER,
    STAFF_AUTH,
    STAFF_PASSWORD,
    TEST_WEB,
    Api,
    Escalates,
    count,
    create_conversation,
    open_api,
    say,
)

from db import Staff, StaffSession, utcnow
from shopbot.cli import app as cli
from shopbot.config import Settings
from shopbot.web import staff_cli
from shopbot.web.csrf import SIGNIN_COOKIE
from shopbot.web.limits import MemoryLimiter
from shopbot.web.sessions import COOKIE


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    # https: the session cookie is Secure off loopback, and the client sends it back.
    async for opened in open_api(settings, model=Escalates(), base_url="https://shopbot.test"):
        await opened.backend.accounts.add("Sam", STAFF_PASSWORD, "sam@shop.example")
        yield opened


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, name: str = "sam", password: str = STAFF_PASSWORD
) -> httpx.Response:
    form = await client.get("/staff/login")
    assert form.status_code == 200
    fields = {"name": name, "password": password, "csrf": csrf_of(form.text)}
    return await client.post("/staff/login", data=fields)


def cookie_names(response: httpx.Response) -> set[str]:
    return {h.split("=", 1)[0] for h in response.headers.get_list("set-cookie")}


def set_cookie(response: httpx.Response, name: str) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, response.headers
    return headers[0]


async def test_sign_in_opens_the_landing_page(api: Api) -> None:
    client = api.client
    away = await client.get("/staff")
    assert away.status_code == 303 and away.headers["location"] == "/staff/login"

    signed_in = await sign_in(client, name="SAM")  # names match ignoring case
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/staff"
    cookie = set_cookie(signed_in, COOKIE).lower()
    for attribute in ("httponly", "samesite=strict", "secure", "path=/"):
        assert attribute in cookie
    assert "max-age=0" in set_cookie(signed_in, SIGNIN_COOKIE).lower(), "the nonce is spent"
    assert await count(api, StaffSession) == 1

    home = await client.get("/staff")
    assert home.status_code == 200
    assert home.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in home.headers["content-security-policy"]
    assert re.search(r"Signed in as <strong[^>]*>Sam</strong>", home.text)
    assert "No live conversations" in home.text
    again = await client.get("/staff/login")
    assert again.status_code == 303, "a signed-in member is sent on to the inbox"


async def test_the_landing_page_lists_live_conversations_escalated_first(api: Api) -> None:
    first, auth = await create_conversation(api.client)
    await say(api, first, auth, "Hello <b>there</b>")  # stays open
    second, auth = await create_conversation(api.client)
    await say(api, second, auth, ASKS_FOR_A_PERSON)
    third, auth = await create_conversation(api.client)
    await say(api, third, auth, "Where is my parcel?")  # the newest open one
    await create_conversation(api.client)  # no turn yet: not listed

    await sign_in(api.client)
    home = await api.client.get("/staff")
    listed = re.findall(r'data-conversation="([^"]+)"', home.text)
    assert listed == [second, third, first], "escalated first, then the newest"
    row = home.text.split(f'data-conversation="{second}"')[1].split("</tr>")[0]
    assert "Escalated" in row and ESCALATION_REASON in row
    assert re.search(r"<time datetime=[^>]+>\d+ (s|min)</time>", row), "how long they waited"
    assert "3 live conversations" in home.text
    assert "<b>there</b>" not in home.text and "&lt;b&gt;there&lt;/b&gt;" in home.text


async def test_a_wrong_password_changes_nothing(api: Api) -> None:
    before = await _hash_of(api, "sam")
    for name, password in [("sam", STAFF_PASSWORD + "x"), ("nobody", STAFF_PASSWORD), ("", "")]:
        refused = await sign_in(api.client, name, password)
        assert refused.status_code == 401
        assert "That name and password do not match a staff account" in refused.text
        assert cookie_names(refused) == {SIGNIN_COOKIE}, "a fresh form, no session"
        assert STAFF_PASSWORD not in refused.text, "the password is never sent back"
    assert await count(api, StaffSession) == 0
    assert await _hash_of(api, "sam") == before
    assert (await api.client.get("/staff")).status_code == 303


async def test_an_unknown_name_costs_a_hash_as_a_known_one_does(settings: Settings) -> None:
    verified: list[str] = []

    class Counting(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash))
            return super().verify(hash, password)

    async for api in open_api(settings):
        api.backend.accounts.hasher = Counting(time_cost=1, memory_cost=8, parallelism=1)
        await api.backend.accounts.add("Sam", STAFF_PASSWORD)
        assert await api.backend.accounts.authenticate("nobody", STAFF_PASSWORD) is None
        assert await api.backend.accounts.authenticate("sam", "wrong password!") is None
        assert await api.backend.accounts.authenticate("Sam", STAFF_PASSWORD) is not None
    assert len(verified) == 3
    assert verified[1] == verified[2] != verified[0], "the unknown name met a dummy hash"


async def test_an_expired_session_asks_to_sign_in_again(api: Api) -> None:
    await sign_in(api.client)
    idle = api.backend.staff_sessions.idle
    await _age_sessions(api, last_seen_at=utcnow() - idle - timedelta(seconds=1))
    ended = await api.client.get("/staff")
    assert ended.status_code == 303
    assert ended.headers["location"] == "/staff/login?notice=expired"
    page = await api.client.get(ended.headers["location"])
    assert "Your session has ended. Please sign in again." in page.text
    assert await count(api, StaffSession) == 0, "the ended session's row is gone"

    # However active, a session ends `staff_session_max_hours` after sign-in.
    await sign_in(api.client)
    await _age_sessions(api, expires_at=utcnow() - timedelta(seconds=1))
    refused = await api.client.get("/v1/staff/conversations/x")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "The staff session has ended: sign in again."
    assert (await api.client.get("/staff")).status_code == 303


async def test_sign_out_ends_the_session(api: Api) -> None:
    await sign_in(api.client)
    kept = api.client.cookies.get(COOKIE)
    home = await api.client.get("/staff")
    out = await api.client.post("/staff/logout", data={"csrf": csrf_of(home.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/staff/login?notice=signed-out"
    cleared = SimpleCookie(set_cookie(out, COOKIE))[COOKIE]
    assert cleared["max-age"] == "0"
    assert await count(api, StaffSession) == 0
    assert "You have signed out." in (await api.client.get(out.headers["location"])).text
    # The old cookie, replayed, opens nothing.
    replayed = await api.client.get("/staff", headers={"Cookie": f"{COOKIE}={kept}"})
    assert replayed.status_code == 303


async def test_a_post_without_the_csrf_token_is_refused(api: Api) -> None:
    await sign_in(api.client)
    for fields in [{}, {"csrf": ""}, {"csrf": "forged"}]:
        refused = await api.client.post("/staff/logout", data=fields)
        assert refused.status_code == 403
        assert "did not carry the CSRF token of your session" in refused.text
    assert await count(api, StaffSession) == 1, "still signed in"
    assert (await api.client.get("/staff")).status_code == 200

    # The sign-in form: the nonce must come back in the form and in its cookie, both.
    fresh = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="https://shopbot.test"
    )
    nonce = csrf_of((await fresh.get("/staff/login")).text)
    bare = {"name": "sam", "password": STAFF_PASSWORD}
    for fields in [bare, {**bare, "csrf": nonce + "x"}]:
        refused = await fresh.post("/staff/login", data=fields)
        assert refused.status_code == 403
        assert "nothing was checked" in refused.text
    fresh.cookies.clear()
    refused = await fresh.post("/staff/login", data={**bare, "csrf": nonce})
    assert refused.status_code == 403, "no cookie: a cross-site post"
    await fresh.aclose()
    assert await count(api, StaffSession) == 1


async def test_failed_sign_ins_are_rate_limited(api: Api) -> None:
    limiter = api.backend.limiter
    assert isinstance(limiter, MemoryLimiter)
    limiter.clock = lambda: 1_000_000.0  # 100 s into a 15-minute window
    for _ in range(5):
        assert (await sign_in(api.client, "sam", "not the password")).status_code == 401
    locked = await sign_in(api.client)  # even the right password
    assert locked.status_code == 429
    assert locked.headers["retry-after"] == "800"
    assert "Too many failed sign-ins" in locked.text and "14 min" in locked.text
    assert await count(api, StaffSession) == 0

    # Per account, from any address; per address, for any account.
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app, client=("10.0.0.7", 5000)),
        base_url="https://shopbot.test",
    )
    assert (await sign_in(elsewhere)).status_code == 429
    await api.backend.accounts.add("Kim", STAFF_PASSWORD)
    assert (await sign_in(api.client, "kim")).status_code == 429
    assert (await sign_in(elsewhere, "kim")).status_code == 303
    await elsewhere.aclose()

    limiter.clock = lambda: 1_000_000.0 + 800
    assert (await sign_in(api.client)).status_code == 303, "a new window"


async def test_staff_and_customer_credentials_open_their_own_side_only(api: Api) -> None:
    cid, auth = await create_conversation(api.client)
    await say(api, cid, auth, "hello")

    # A customer's token opens no staff page or route.
    for path in ["/staff", f"/v1/staff/conversations/{cid}"]:
        refused = await api.client.get(path, headers=auth)
        assert refused.status_code in (303, 401), path
    # The machine's staff token opens the staff API, not the pages a person signs in to.
    assert (await api.client.get(f"/v1/staff/conversations/{cid}", headers=STAFF_AUTH)).is_success
    assert (await api.client.get("/staff", headers=STAFF_AUTH)).status_code == 303

    await sign_in(api.client)
    assert (await api.client.get(f"/v1/staff/conversations/{cid}")).status_code == 200
    # A staff session opens no customer route.
    for method, path, body in [
        ("GET", f"/v1/conversations/{cid}", None),
        ("GET", f"/v1/conversations/{cid}/events", None),
        ("POST", f"/v1/conversations/{cid}/messages", {"text": "hi"}),
        ("POST", f"/v1/conversations/{cid}/confirmations/x", {"approve": True}),
    ]:
        refused = await api.client.request(method, path, json=body)
        assert refused.status_code == 401, path
        assert refused.json()["error"]["code"] == "invalid_token"


async def test_a_staff_session_opens_the_staff_api_without_a_staff_token(
    settings: Settings,
) -> None:
    web = TEST_WEB.model_copy(update={"staff_token": None})
    async for api in open_api(settings, web, base_url="https://shopbot.test"):
        await api.backend.accounts.add("Sam", STAFF_PASSWORD)
        cid, _auth = await create_conversation(api.client)
        path = f"/v1/staff/conversations/{cid}"
        assert (await api.client.get(path)).status_code == 404, "absent to everyone else"
        await sign_in(api.client)
        assert (await api.client.get(path)).status_code == 200


async def test_on_loopback_over_http_the_cookie_is_not_secure(settings: Settings) -> None:
    async for api in open_api(settings, base_url="http://127.0.0.1:8000"):
        await api.backend.accounts.add("Sam", STAFF_PASSWORD)
        signed_in = await sign_in(api.client)
        assert signed_in.status_code == 303
        assert "secure" not in set_cookie(signed_in, COOKIE).lower()
        assert (await api.client.get("/staff")).status_code == 200


async def test_after_sign_in_the_member_goes_back_where_they_were(api: Api) -> None:
    away = await api.client.get("/staff", params={"x": "1"})
    assert away.headers["location"] == "/staff/login?next=%2Fstaff%3Fx%3D1"
    form = await api.client.get(away.headers["location"])
    for back_to, expected in [
        ("/staff?x=1", "/staff?x=1"),
        ("/staff/conversations/abc-1", "/staff/conversations/abc-1"),
        ("https://evil.example/staff", "/staff"),
        ("//evil.example", "/staff"),
        ("/staff//evil.example", "/staff"),
        ("/staff/../v1/x", "/staff"),
        ("/staff/%2e%2e/v1/x", "/staff"),
        ("/staffing", "/staff"),
        ("/staff/login", "/staff"),
    ]:
        fields = {"name": "sam", "password": STAFF_PASSWORD, "csrf": csrf_of(form.text)}
        done = await api.client.post("/staff/login", data={**fields, "next": back_to})
        assert done.headers["location"] == expected, back_to
        api.client.cookies.delete(COOKIE)
        form = await api.client.get("/staff/login")


def test_staff_accounts_from_the_command_line(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("SHOPBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(staff_cli, "password_hasher", lambda: FAST_HASHER)
    runner = CliRunner()

    typed = f"short\n{STAFF_PASSWORD}\n{STAFF_PASSWORD}-typo\n{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n"
    added = runner.invoke(cli, ["staff", "add", "Sam", "--email", "sam@shop.example"], input=typed)
    assert added.exit_code == 0, added.output
    assert "a password needs at least 12 characters" in added.output
    assert "the two passwords differ" in added.output
    assert "added staff account 'Sam'" in added.output
    assert STAFF_PASSWORD not in added.output, "never echoed"

    listed = runner.invoke(cli, ["staff", "list"])
    assert listed.exit_code == 0 and "Sam" in listed.output and "sam@shop.example" in listed.output
    twice = runner.invoke(
        cli, ["staff", "add", "sam"], input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n"
    )
    assert twice.exit_code == 2 and "already exists" in twice.output
    bad = runner.invoke(cli, ["staff", "add", "<script>"])
    assert bad.exit_code == 2 and "a staff name is" in bad.output

    new = "a brand new passphrase"
    changed = runner.invoke(cli, ["staff", "password", "SAM"], input=f"{new}\n{new}\n")
    assert changed.exit_code == 0, changed.output
    assert "changed the password of 'SAM' (0 sessions signed out)" in changed.output
    removed = runner.invoke(cli, ["staff", "remove", "sam"])
    assert removed.exit_code == 0 and "removed staff account 'sam'" in removed.output
    assert "no staff accounts yet" in runner.invoke(cli, ["staff", "list"]).output
    gone = runner.invoke(cli, ["staff", "remove", "sam"])
    assert gone.exit_code == 2 and "no staff account is named 'sam'" in gone.output


async def test_a_new_password_or_a_removal_signs_the_account_out(api: Api) -> None:
    await sign_in(api.client)
    assert await api.backend.accounts.set_password("sam", "another long passphrase") == 1
    assert (await api.client.get("/staff")).status_code == 303
    assert (await sign_in(api.client)).status_code == 401, "the old password is gone"
    assert (await sign_in(api.client, password="another long passphrase")).status_code == 303
    assert await api.backend.accounts.remove("Sam") == 1
    assert (await api.client.get("/staff")).status_code == 303
    assert await count(api, Staff) == 0


async def _hash_of(api: Api, login: str) -> str | None:
    async with api.backend.sessions() as session:
        return await session.scalar(select(Staff.password_hash).where(Staff.login == login))


async def _age_sessions(api: Api, **values: object) -> None:
    async with api.backend.sessions() as session:
        await session.execute(update(StaffSession).values(**values))
        await session.commit()
