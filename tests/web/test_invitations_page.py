"""The Invitations page (issue 24): an organisation's owner invites someone by email with a role
and a project (the one-time link shown once when no mail is configured), sees it pending, revokes
it (its link is refused), invites again; the new person signs up through the link, accepts, and
lands on the project they joined. Plain members and the billing role do not reach the page."""

from __future__ import annotations

import re

from tests.conftest import LiveServer
from tests.web.helpers import client, csrf, logged_in
from tests.web.test_projects_pages import post, team


def test_invite_revoke_and_accept(web_server: LiveServer) -> None:
    s = team(web_server)
    org, a = s["org"], s["a"]
    with logged_in(web_server, "olga@example.com") as c:
        page = c.get(f"/app/orgs/{org}/invitations")
        assert page.status_code == 200 and "No invitation sent yet" in page.text
        r = post(c, f"/app/orgs/{org}/invitations", page, email="ann@example.com", role="member")
        assert r.status_code == 400 and "already a member" in r.text
        r = post(c, f"/app/orgs/{org}/invitations", page, email="not an email", role="member")
        assert r.status_code == 400
        r = post(
            c, f"/app/orgs/{org}/invitations", page, email="new@example.com", role="member", project="999999"
        )
        assert r.status_code == 400
        r = post(
            c, f"/app/orgs/{org}/invitations", page, email="new@example.com", role="member", project=str(a)
        )
        assert r.status_code == 200
        first = re.search(r'id="invite-link-value" class="secret">([^<]+)<', r.text)
        assert first and "/app/invite/" in first.group(1)
        page = c.get(f"/app/orgs/{org}/invitations")
        assert "invite-link-value" not in page.text  # shown once
        row = page.text.split('data-invite="new@example.com"')[1].split("</tr>")[0]
        assert 'data-state="pending"' in page.text and "Alpha (member)" in row
        invite_id = re.search(r"/invitations/(\d+)/revoke", page.text).group(1)  # type: ignore[union-attr]
        assert post(c, f"/app/orgs/{org}/invitations/{invite_id}/revoke", page).status_code == 303
        path = first.group(1).split("127.0.0.1", 1)[1].split("/", 1)[1]
        assert c.get(f"/{path}").status_code == 410  # the revoked link is refused
        assert "new@example.com" not in c.get(f"/app/orgs/{org}/invitations").text
        r = post(
            c, f"/app/orgs/{org}/invitations", page, email="new@example.com", role="member", project=str(a)
        )
        second = re.search(r'id="invite-link-value" class="secret">([^<]+)<', r.text)
        assert second

    for who in ("ann@example.com", "bill@example.com"):  # a plain member; the billing role
        with logged_in(web_server, who) as c:
            page = c.get(f"/app/orgs/{org}/invitations")
            assert page.status_code in (403, 404) and "new@example.com" not in page.text
            r = post(c, f"/app/orgs/{org}/invitations", c.get("/app/projects"), email="x@example.com")
            assert r.status_code in (403, 404)

    path = "/" + second.group(1).split("127.0.0.1", 1)[1].split("/", 1)[1]
    with client(web_server) as c:  # the new person signs up through the link and accepts
        signup = c.get(f"/app/signup?next={path}&email=new@example.com")
        r = c.post(
            "/app/signup",
            data={
                "email": "new@example.com",
                "password": "a long password",
                "csrf_token": csrf(signup),
                "next": path,
            },
        )
        assert r.status_code == 303 and r.headers["location"] == path
        page = c.get(path)
        r = c.post(path, data={"csrf_token": csrf(page)})
        assert r.status_code == 303 and r.headers["location"] == f"/app/projects/{a}?saved=joined"
        page = c.get(r.headers["location"])
        assert (
            page.status_code == 200
            and "you joined" in page.text
            and 'data-member="new@example.com"' in page.text
        )
        assert 'id="create-key"' in page.text  # a member creates keys in the project
    with logged_in(web_server, "olga@example.com") as c:
        page = c.get(f"/app/orgs/{org}/invitations")
        assert 'data-state="accepted"' in page.text
        assert "/revoke" not in page.text.split('data-invite="new@example.com"')[1].split("</tr>")[0]
