"""No token, password or code ever reaches the server's output: a prod server at debug level with the
access log on serves the real client suite and every way a credential travels, then its whole output
is searched for each one."""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.node_runner import NODE_DIR, assert_suite_passed, install_node_packages, run_script
from tests.support import ServerProcess, start_server

pytestmark = pytest.mark.slow
SUITE = "client_suite.mjs"
# The passwords the suite signs up and in with: every string literal of it that looks like one.
SUITE_PASSWORDS = re.compile(r'"([A-Za-z0-9_-]*pw[A-Za-z0-9_-]*)"')


def http(server: ServerProcess, method: str, path: str, body: Any = None, *, pk: str, token: str | None = None,
         data: bytes | None = None, content_type: str = "application/json") -> tuple[int, Any]:
    """One request; (status, JSON or text)."""
    payload = data if data is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"SB-PUBLIC-KEY": pk, **({"Content-Type": content_type} if payload is not None else {})}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(server.url + path, data=payload, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, raw, kind = resp.status, resp.read(), resp.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        with exc:
            status, raw, kind = exc.code, exc.read(), exc.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else raw.decode(errors="replace")


def ok(answer: tuple[int, Any]) -> Any:
    status, value = answer
    assert status == 200, answer
    return value


def upload(server: ServerProcess, pk: str, token: str) -> str:
    """A private file uploaded as the user; its URL."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"note.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nsecret-free content\r\n--{boundary}--\r\n").encode()
    answer = ok(http(server, "POST", "/storage/upload", pk=pk, token=token, data=body,
                     content_type=f"multipart/form-data; boundary={boundary}"))
    return str(answer["url"])


def banner_credentials(output: str) -> dict[str, str]:
    """What the prod banner printed on the first start."""
    found = {name: re.search(pattern, output) for name, pattern in {
        "SBLITE_PK": r"Public key:\t+(\S+)", "SBLITE_ADMIN_EMAIL": r"Email:\t+(\S+)",
        "SBLITE_ADMIN_PASSWORD": r"Password:\t+(\S+)", "SBLITE_ROOT_TOKEN": r"Real root token:\t+(\S+)"}.items()}
    assert all(found.values()), output
    return {name: match.group(1) for name, match in found.items() if match}


def exercise_credentials(server: ServerProcess, creds: dict[str, str]) -> list[str]:
    """Send a token, password and code every way the API takes them; every secret used."""
    pk, root = creds["SBLITE_PK"], creds["SBLITE_ROOT_TOKEN"]
    email, password, new_password = "logcheck@example.com", "first-Secret-pw-1", "second-Secret-pw-2"
    token = ok(http(server, "POST", "/register", {"email": email, "password": password}, pk=pk))
    login = ok(http(server, "POST", "/login", {"email": email, "password": password}, pk=pk))
    assert http(server, "POST", "/login", {"email": email, "password": "wrong-Secret-pw"}, pk=pk)[0] == 401
    ok(http(server, "GET", "/me", pk=pk, token=token))
    url = upload(server, pk, token)
    path = urlsplit(url).path
    ok(http(server, "GET", f"{path}?token={quote(login)}", pk=pk))  # a private file's link with the token
    ok(http(server, "GET", f"{path}?token={quote(root)}", pk=pk))
    code = ok(http(server, "GET", f"/password/resetcode?e={quote(email)}", pk=pk, token=root))
    ok(http(server, "POST", "/password/reset", {"email": email, "code": code, "password": new_password}, pk=pk))
    ok(http(server, "POST", "/login/magic", {"fromEmail": "login@example.com", "email": email, "subject": "Sign in",
                                             "body": "Sign in: [link]", "link": "https://app.example.com/in"},
            pk=pk))
    mail = ok(http(server, "GET", "/mail/outbox", pk=pk, token=root))
    mail = mail[0] if isinstance(mail, list) else mail["results"][0]
    text = json.dumps(ok(http(server, "GET", f"/mail/outbox/{mail['id']}", pk=pk, token=root)))
    magic = parse_qs(urlsplit(re.search(r"https://app\.example\.com/in\?[^\s\"\\]+", text).group(0)).query)
    magic_code = magic["code"][0]
    magic_token = ok(http(server, "GET", f"/login/magic?email={quote(email)}&code={magic_code}", pk=pk))
    ok(http(server, "GET", "/me", pk=pk, token=magic_token))
    dashboard = ok(http(server, "POST", "/_/session", {"email": creds["SBLITE_ADMIN_EMAIL"],
                                                       "password": creds["SBLITE_ADMIN_PASSWORD"]}, pk=pk))
    assert "csrf" in dashboard
    return [token, login, password, new_password, "wrong-Secret-pw", code, magic_code, magic_token]


def test_no_secret_reaches_the_logs_of_a_full_client_suite_run(tmp_path: Path) -> None:
    node = install_node_packages()
    first = start_server(tmp_path, "--prod")
    assert first.stop(signal.SIGTERM) == 0
    creds = banner_credentials(first.output())  # printed once, on the first start, by design
    server = start_server(tmp_path, "--prod", env={"SBLITE_LOG_LEVEL": "debug", "SBLITE_ACCESS_LOG": "true"})
    try:
        secrets = exercise_credentials(server, creds)
        code, output = run_script(node, SUITE, server, 120, env=creds)
        assert_suite_passed(SUITE, code, output, server)
    finally:
        assert server.stop(signal.SIGTERM) == 0, server.output()
    log = server.output()
    secrets += [creds["SBLITE_ROOT_TOKEN"], creds["SBLITE_ADMIN_PASSWORD"]]
    secrets += SUITE_PASSWORDS.findall((NODE_DIR / SUITE).read_text())
    secrets += re.findall(r'"token":\s*"([^"]{20,})"', output)  # any token the suite printed
    leaked = sorted({secret for secret in secrets if len(secret) >= 6 and secret in log})
    assert leaked == [], f"secrets in the server output: {leaked}\n{log}"
    # The log is really there: the requests that carried secrets have their lines, blanked.
    assert re.search(r"sblite\.access: GET /login/magic\?email=logcheck%40example\.com&code=\*\*\* 200 ", log), log
    assert re.search(r"sblite\.access: GET /localfs/\S+\?token=\*\*\* 200 ", log), log
    assert "sblite.access: POST /password/reset 200 " in log
