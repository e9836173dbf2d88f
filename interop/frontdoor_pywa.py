"""pywa, unmodified, against wagate's front door (Meta's paths on the gateway, a wagate API key
as the token): sends, mark-as-read, media of a user's message, and Meta's errors.

Prints one JSON line per operation: {"op", "lib", "result", "note"}.
Environment: GATEWAY_URL, GATEWAY_KEY, SIM_URL, SIM_PHONE_ID.
"""

import json
import os
import sys
import time
import traceback
import urllib.request

import httpx
from pywa import WhatsApp
from pywa.types.templates import TemplateLanguage

import pywa_client

GW = os.environ["GATEWAY_URL"].rstrip("/")
KEY = os.environ["GATEWAY_KEY"]
SIM = os.environ["SIM_URL"].rstrip("/")
PHONE_ID = os.environ["SIM_PHONE_ID"]
WABA_ID = os.environ["SIM_WABA_ID"]
USER = "16505551234"
LIB = "pywa"


# Known bugs of the library itself (the same rows as pywa_check.py's).
KNOWN_BUGS = {
    "get call permissions": "pywa/api.py:2234 declares both user_wa_id and recipient without defaults, but "
    "WhatsApp.get_call_permissions passes only one of them, so every call raises TypeError before any request",
}


def emit(op, ok, note=""):
    result = "ok" if ok else ("library bug" if op in KNOWN_BUGS else "FAIL")
    if not ok and op in KNOWN_BUGS:
        note = KNOWN_BUGS[op] + (f" ({note})" if note else "")
    print(json.dumps({"op": f"front door: {op}", "lib": LIB, "result": result, "note": note[:300]}), flush=True)


def check(op, fn):
    try:
        out = fn()
        emit(op, out is not False, "" if out is not False else "unexpected result")
        return out
    except Exception as e:  # noqa: BLE001 - every failure becomes a row
        emit(op, False, f"{type(e).__name__}: {e}")
        if os.environ.get("INTEROP_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        return None


class ToGateway(httpx.HTTPTransport):
    """Sends what pywa addresses to graph.facebook.com to the gateway instead."""

    def __init__(self):
        super().__init__()
        self.target = httpx.URL(GW)

    def handle_request(self, request):
        if request.url.host == "graph.facebook.com":
            request.url = request.url.copy_with(scheme=self.target.scheme, host=self.target.host, port=self.target.port)
        return super().handle_request(request)


def call(url, body=None, key=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def received_event(wamid):
    """The gateway's message.received event of the user's message with this wamid."""
    for _ in range(250):
        events = call(f"{GW}/v1/events?type=message.received&limit=500", key=KEY)["data"]
        for e in events:
            if e["payload"].get("wamid") == wamid:
                return e
        time.sleep(0.02)
    raise AssertionError(f"the gateway never got {wamid}")


def wa_with(token):
    return WhatsApp(phone_id=PHONE_ID, token=token, session=httpx.Client(transport=ToGateway(), timeout=40),
                    api_version=23.0, server=None, waba_id=WABA_ID)


wa = wa_with(KEY)
# The user writes first: it opens the customer-service window at the gateway.
inbound = call(f"{SIM}/_sim/users/{USER}/messages", {"type": "text", "text": {"body": "hello gateway"}})["wamid"]
received_event(inbound)

# The same client operations as against the simulator (interop/run compares the two tables).
pywa_client.run(wa, check, USER, inbound, PHONE_ID, "gw")


def media_of_user():
    wamid = call(f"{SIM}/_sim/users/{USER}/messages", {"type": "image"})["wamid"]
    media_id = received_event(wamid)["payload"]["content"]["media"]["id"]
    for _ in range(250):
        try:
            url = wa.get_media_url(media_id)
            if url.url:
                data = wa.get_media_bytes(url=url.url)
                return len(data) > 0 and url.mime_type.startswith("image/")
        except Exception:  # noqa: BLE001 - not downloaded yet
            time.sleep(0.02)
    raise AssertionError("the media never became available")


check("get media url and download (user's image)", media_of_user)


def refused(fn, code):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - pywa raises its WhatsAppError subclasses
        got = getattr(e, "error_code", None) or getattr(e, "code", None)
        if got != code:
            raise AssertionError(f"expected Meta code {code}, got {got}: {e}") from e
        return True
    raise AssertionError("no error")


check("bad token answers 190", lambda: refused(lambda: wa_with("wg_wrong_key_0000").send_message(to=USER, text="x"), 190))
check("invalid recipient answers 100", lambda: refused(lambda: wa.send_message(to="not a number", text="x"), 100))
check("unknown template answers 132001", lambda: refused(
    lambda: wa.send_template(to=USER, name="no_such_template", language=TemplateLanguage.ENGLISH_US), 132001))
