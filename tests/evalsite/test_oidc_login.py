"""Sign-in through an organisation's OpenID Connect provider (allauth socialaccount), against a
minimal provider started here on 127.0.0.1: discovery, authorize, token (HS256 id_token),
userinfo. Off by default: without OIDC settings the login page offers no such button."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
import requests
from django.test import override_settings
from django.urls import reverse

from tests.conftest import make_user

pytestmark = pytest.mark.django_db
CLIENT_ID, SECRET = "evalsite-test", "a-shared-secret-for-the-test-provider-only"


class Provider(BaseHTTPRequestHandler):
    email = "ana@example.org"

    def log_message(self, *args):  # keep the test output quiet
        pass

    def _json(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    @property
    def base(self):
        return f"http://127.0.0.1:{self.server.server_port}"

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/.well-known/openid-configuration":
            return self._json(
                {
                    "issuer": self.base,
                    "authorization_endpoint": f"{self.base}/authorize",
                    "token_endpoint": f"{self.base}/token",
                    "userinfo_endpoint": f"{self.base}/userinfo",
                    "jwks_uri": f"{self.base}/jwks",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                }
            )
        if url.path == "/authorize":
            query = parse_qs(url.query)
            assert query["client_id"] == [CLIENT_ID]
            back = {"code": "the-code", "state": query["state"][0]}
            self.send_response(302)
            self.send_header("Location", f"{query['redirect_uri'][0]}?{urlencode(back)}")
            self.end_headers()
            return None
        if url.path == "/userinfo":
            assert self.headers["Authorization"] == "Bearer the-access-token"
            return self._json({"sub": "u-1", "email": self.email, "email_verified": True})
        if url.path == "/jwks":
            return self._json({"keys": []})
        return self._json({"error": "not_found"}, 404)

    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        if self.path != "/token" or form.get("code") != ["the-code"]:
            return self._json({"error": "invalid_grant"}, 400)
        now = int(time.time())
        claims = {"iss": self.base, "aud": CLIENT_ID, "sub": "u-1", "iat": now, "exp": now + 300}
        claims["email"] = self.email
        id_token = jwt.encode(claims, SECRET, algorithm="HS256")
        return self._json(
            {"access_token": "the-access-token", "token_type": "Bearer", "id_token": id_token}
        )


@pytest.fixture
def provider(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = HTTPServer(("127.0.0.1", 0), Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_port
    apps = [
        {
            "provider_id": "acme",
            "name": "Acme SSO",
            "client_id": CLIENT_ID,
            "secret": SECRET,
            "settings": {"server_url": f"http://127.0.0.1:{port}/.well-known/openid-configuration"},
        }
    ]
    with override_settings(SOCIALACCOUNT_PROVIDERS={"openid_connect": {"APPS": apps}}):
        yield server
    server.shutdown()
    server.server_close()


def sign_in_through(client):
    start = client.post("/accounts/oidc/acme/login/")
    assert start.status_code == 302, start.content
    at_provider = requests.get(start["Location"], allow_redirects=False, timeout=5)
    callback = urlparse(at_provider.headers["Location"])
    return client.get(f"{callback.path}?{callback.query}")


def test_login_page_offers_the_organisation_and_signs_an_invited_reviewer_in(client, provider):
    reviewer = make_user("ana@example.org", "reviewer")
    page = client.get(reverse("account_login")).content.decode()
    assert "Sign in with Acme SSO" in page
    done = sign_in_through(client)
    assert done.status_code == 302
    assert int(client.session["_auth_user_id"]) == reviewer.pk
    assert client.get(reverse("reviews:queue")).status_code == 200


def test_an_unknown_person_gets_no_account(client, provider):
    Provider.email = "stranger@example.org"
    try:
        sign_in_through(client)
    finally:
        Provider.email = "ana@example.org"
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("reviews:queue")).status_code == 302


def test_off_by_default(client):
    assert b"Sign in with" not in client.get(reverse("account_login")).content
