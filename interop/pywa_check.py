"""pywa, unmodified, against `wagate sim`.

Sends every message type, uploads, reads and downloads media, reads templates, the phone number
and the business profile; then has the simulator's users write, and checks that pywa's own
webhook handler (signature verification on) parses each update. Prints one JSON line per
operation: {"op", "lib", "result", "note"}.

Environment: SIM_URL, SIM_TOKEN, SIM_APP_SECRET, SIM_PHONE_ID, SIM_WABA_ID.
"""

import json
import os
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from pywa import WhatsApp, types
from pywa import handlers as h
from pywa.types.templates import TemplateLanguage  # noqa: F401 - kept for ad-hoc checks

import pywa_client

SIM = os.environ["SIM_URL"].rstrip("/")
TOKEN = os.environ["SIM_TOKEN"]
SECRET = os.environ["SIM_APP_SECRET"]
PHONE_ID = os.environ["SIM_PHONE_ID"]
WABA_ID = os.environ["SIM_WABA_ID"]
USER = "16505551234"
LIB = "pywa"

# Known bugs of the library itself: operation -> where (file:line in pywa 4.5.0) and why.
KNOWN_BUGS = {
    "get call permissions": "pywa/api.py:2234 declares both user_wa_id and recipient without defaults, but "
    "WhatsApp.get_call_permissions passes only one of them (_helpers.resolve_call_permission_request_user), "
    "so every call raises TypeError before any request",
    "receive status failed": "pywa/types/message_status.py:204 reads value['contacts'][0], but Meta sends "
    "no contacts with failed statuses (cloud-api.md §4.4); pywa raises KeyError",
}


def emit(op, ok, note=""):
    result = "ok" if ok else ("library bug" if op in KNOWN_BUGS else "FAIL")
    if not ok and op in KNOWN_BUGS:
        note = KNOWN_BUGS[op] + (f" ({note})" if note else "")
    print(json.dumps({"op": op, "lib": LIB, "result": result, "note": note[:300]}), flush=True)


def check(op, fn):
    try:
        out = fn()
        if out is False:
            emit(op, False, "unexpected result")
        else:
            emit(op, True)
        return out
    except Exception as e:  # noqa: BLE001 - every failure becomes a row
        emit(op, False, f"{type(e).__name__}: {e}")
        if os.environ.get("INTEROP_DEBUG"):
            traceback.print_exc(file=sys.stderr)
        return None


class ToSimulator(httpx.HTTPTransport):
    """Sends what pywa addresses to graph.facebook.com to the simulator instead."""

    def __init__(self):
        super().__init__()
        self.target = httpx.URL(SIM)

    def handle_request(self, request):
        if request.url.host == "graph.facebook.com":
            request.url = request.url.copy_with(
                scheme=self.target.scheme, host=self.target.host, port=self.target.port
            )
        return super().handle_request(request)


def control(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{SIM}{path}", data=data, method="POST" if body is not None else "GET")
    req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b"null")


received = []  # (kind, update)
rejected = []
lock = threading.Lock()

wa = WhatsApp(
    phone_id=PHONE_ID,
    token=TOKEN,
    session=httpx.Client(transport=ToSimulator(), timeout=10),
    api_version=23.0,
    waba_id=WABA_ID,
    server=None,
    app_secret=SECRET,
    verify_token="interop",
)


def remember(kind):
    def handler(_, update):
        with lock:
            received.append((kind, update))

    return handler


wa.add_handlers(
    h.MessageHandler(remember("message")),
    h.CallbackButtonHandler(remember("button")),
    h.CallbackSelectionHandler(remember("selection")),
    h.MessageStatusHandler(remember("status")),
    h.TemplateStatusUpdateHandler(remember("template")),
)


class Webhook(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        error = wa.webhook_update_validator(body, self.headers.get("x-hub-signature-256"))
        if error:
            with lock:
                rejected.append(body)
            self.send_response(error[1])
            self.end_headers()
            return
        try:
            _, code = wa.webhook_update_handler(body)
        except Exception as e:  # noqa: BLE001
            with lock:
                received.append(("exception", f"{type(e).__name__}: {e} in {body[:200]!r}"))
            code = 500
        self.send_response(200 if code == 200 else code)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
threading.Thread(target=server.serve_forever, daemon=True).start()
control("/_sim/settings", {"webhook_url": f"http://127.0.0.1:{server.server_address[1]}/"})


def wait_for(pred, what, seconds=5.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        with lock:
            for kind, u in received:
                if pred(kind, u):
                    return u
            errors = [u for k, u in received if k == "exception"]
        time.sleep(0.02)
    extra = f"; handler raised: {errors[-1]}" if errors else ""
    with lock:
        extra += f"; {len(rejected)} rejected by signature check" if rejected else ""
    raise AssertionError(f"{what} never reached the handler{extra}")


def user_sends(message):
    r = control(f"/_sim/users/{USER}/messages", message)
    if not r or "wamid" not in r:
        raise AssertionError(f"simulator refused: {r}")
    return r["wamid"]


def receive(op, message, kind, check_update):
    def run():
        with lock:
            received.clear()
        wamid = user_sends(message)
        u = wait_for(lambda k, u: k == kind and getattr(u, "id", None) == wamid, op)
        res = check_update(u)
        if res is False:
            raise AssertionError(f"parsed but wrong: {u}")

    check(op, run)


# ---- receiving (the user writes first, which also opens the customer-service window) ----
receive("receive text", {"type": "text", "text": {"body": "hello"}}, "message",
        lambda m: m.text == "hello" and m.from_user.wa_id == USER and bool(m.from_user.bsuid))
receive("receive non-ASCII and emoji", {"type": "text", "text": {"body": "Olá 👋🏽 日本語"}}, "message",
        lambda m: m.text == "Olá 👋🏽 日本語")
for kind in ["image", "video", "audio", "document", "sticker"]:
    receive(f"receive {kind}", {"type": kind}, "message",
            lambda m, kind=kind: getattr(m, kind) is not None and bool(getattr(m, kind).id))
receive("receive location", {"type": "location", "location": {"latitude": 38.7, "longitude": -9.1, "name": "Lisboa"}},
        "message", lambda m: abs(m.location.latitude - 38.7) < 1e-9)
receive("receive contacts", {"type": "contacts", "contacts": [{"name": {"formatted_name": "Ana Silva", "first_name": "Ana"},
        "phones": [{"phone": "+5511999999999", "wa_id": "5511999999999", "type": "CELL"}]}]},
        "message", lambda m: m.contacts[0].name.formatted_name == "Ana Silva")
receive("receive reaction", {"type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": "👍"}},
        "message", lambda m: m.reaction.emoji == "👍")
receive("receive reply (context)", {"type": "text", "text": {"body": "yes"}, "context": {"id": "wamid.business"}},
        "message", lambda m: m.reply_to_message is not None and m.reply_to_message.id == "wamid.business")
receive("receive button reply", {"type": "interactive", "interactive": {"type": "button_reply",
        "button_reply": {"id": "yes", "title": "Yes"}}, "context": {"id": "wamid.business"}},
        "button", lambda b: b.data == "yes")
receive("receive list reply", {"type": "interactive", "interactive": {"type": "list_reply",
        "list_reply": {"id": "row-1", "title": "Row 1", "description": "first"}}, "context": {"id": "wamid.business"}},
        "selection", lambda s: s.data == "row-1")
receive("receive template quick reply", {"type": "button", "button": {"payload": "stop", "text": "Stop"},
        "context": {"id": "wamid.business"}}, "button", lambda b: b.data == "stop")

with lock:
    received.clear()
inbound = user_sends({"type": "text", "text": {"body": "window opener"}})

# ---- the client operations (the same list runs against the front door) ----
pywa_client.run(wa, check, USER, inbound, PHONE_ID, "sim")


# ---- statuses of a message pywa sent, and a template review ----
def status_flow():
    with lock:
        received.clear()
    sent = wa.send_message(to=USER, text="track me")
    for s in ["sent", "delivered", "read"]:
        u = wait_for(lambda k, u, s=s: k == "status" and u.id == sent.id and u.status.value == s, f"status {s}")
        if not u.from_user.bsuid:
            raise AssertionError("status without the recipient's BSUID")
    return True


check("receive statuses sent, delivered, read", status_flow)


def failed_status():
    with lock:
        received.clear()
    # Nobody wrote from this number: outside the window, Meta fails a free-form message (131047).
    sent = wa.send_message(to="4915112345678", text="out of window")
    u = wait_for(lambda k, u: k == "status" and u.id == sent.id, "failed status")
    return u.status.value == "failed" and u.error.code == 131047


check("receive status failed", failed_status)


def template_review():
    with lock:
        received.clear()
    control("/_sim/templates/hello_world/status", {"status": "PAUSED"})
    u = wait_for(lambda k, u: k == "template", "template status update")
    control("/_sim/templates/hello_world/status", {"status": "APPROVED"})
    return u.template_name == "hello_world"


check("receive template status update", template_review)
with lock:
    if rejected:
        emit("signature verification", False, f"{len(rejected)} webhooks rejected")
    else:
        emit("signature verification", True)
server.shutdown()
