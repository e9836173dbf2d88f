// whatsapp-api-js, unmodified, against `wagate sim`.
//
// Sends every message type, uploads, retrieves, downloads and deletes media, marks as read; then
// has the simulator's users write, and checks that the library's own webhook handler
// (`WhatsAppAPI.post`, signature verification on) parses each update. Prints one JSON line per
// operation: {"op", "lib", "result", "note"}.
//
// Environment: SIM_URL, SIM_TOKEN, SIM_APP_SECRET, SIM_PHONE_ID, SIM_WABA_ID.

import http from "node:http";
import { webcrypto } from "node:crypto";
import { WhatsAppAPI } from "whatsapp-api-js";
import { Text } from "whatsapp-api-js/messages";
import { run } from "./wajs_client.mjs";

const SIM = process.env.SIM_URL.replace(/\/$/, "");
const PHONE_ID = process.env.SIM_PHONE_ID;
const USER = "16505551234";
const LIB = "whatsapp-api-js";

// The library's handler has no callback for template updates (it throws 'Unexpected payload' with
// HTTP 200): that row says so instead of failing.
const NOT_OFFERED = {
    "receive template status update": "the library's handler has no callback for template updates (it throws 'Unexpected payload' with HTTP 200)",
};

function emit(op, ok, note = "") {
    console.log(JSON.stringify({ op, lib: LIB, result: ok ? "ok" : "FAIL", note: String(note).slice(0, 300) }));
}

async function check(op, fn) {
    try {
        const out = await fn();
        if (out === false) emit(op, false, "unexpected result");
        else emit(op, true);
        return out;
    } catch (e) {
        emit(op, false, `${e?.name}: ${e?.message}`);
        if (process.env.INTEROP_DEBUG) console.error(e);
        return undefined;
    }
}

// The library addresses graph.facebook.com; its documented `ponyfill.fetch` sends it here.
const toSimulator = (url, options) => {
    const u = new URL(url);
    if (u.hostname === "graph.facebook.com") {
        const target = new URL(SIM);
        u.protocol = target.protocol;
        u.host = target.host;
    }
    return fetch(u, options);
};

const Whatsapp = new WhatsAppAPI({
    token: process.env.SIM_TOKEN,
    appSecret: process.env.SIM_APP_SECRET,
    webhookVerifyToken: "interop",
    v: "v23.0",
    ponyfill: { fetch: toSimulator, subtle: webcrypto.subtle },
});

async function control(path, body) {
    const r = await fetch(`${SIM}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    return r.json();
}

const received = [];
const rejected = [];
Whatsapp.on.message = (args) => { received.push({ kind: "message", ...args }); };
Whatsapp.on.status = (args) => { received.push({ kind: "status", ...args }); };

// The library's webhook handler, behind Node's own HTTP server (raw body and signature header).
const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        try {
            await Whatsapp.post(JSON.parse(raw), raw, req.headers["x-hub-signature-256"]);
            res.writeHead(200).end();
        } catch (e) {
            // Updates the library has no callback for (template reviews) end here with 200.
            const status = typeof e?.httpStatus === "number" ? e.httpStatus : 500;
            if (status === 401) rejected.push(raw);
            res.writeHead(status).end();
        }
    });
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
await control("/_sim/settings", { webhook_url: `http://127.0.0.1:${server.address().port}/` });

async function waitFor(pred, what, ms = 5000) {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        const found = received.find(pred);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`${what} never reached the handler${rejected.length ? `; ${rejected.length} rejected by the signature check` : ""}`);
}

async function userSends(message) {
    const r = await control(`/_sim/users/${USER}/messages`, message);
    if (!r?.wamid) throw new Error(`simulator refused: ${JSON.stringify(r)}`);
    return r.wamid;
}

async function receive(op, message, test) {
    await check(op, async () => {
        received.length = 0;
        const wamid = await userSends(message);
        const u = await waitFor((x) => x.kind === "message" && x.message?.id === wamid, op);
        if (!test(u)) throw new Error(`parsed but wrong: ${JSON.stringify(u.message)}`);
    });
}

// ---- receiving ----
await receive("receive text", { type: "text", text: { body: "hello" } },
    (u) => u.message.text.body === "hello" && u.from === USER && !!u.contact.user_id && u.name === "Sim User");
await receive("receive non-ASCII and emoji", { type: "text", text: { body: "Olá 👋🏽 日本語" } },
    (u) => u.message.text.body === "Olá 👋🏽 日本語");
for (const kind of ["image", "video", "audio", "document", "sticker"]) {
    await receive(`receive ${kind}`, { type: kind }, (u) => !!u.message[kind]?.id && !!u.message[kind]?.url);
}
await receive("receive location", { type: "location", location: { latitude: 38.7, longitude: -9.1, name: "Lisboa" } },
    (u) => u.message.location.latitude === 38.7);
await receive("receive contacts", { type: "contacts", contacts: [{ name: { formatted_name: "Ana Silva", first_name: "Ana" },
    phones: [{ phone: "+5511999999999", wa_id: "5511999999999", type: "CELL" }] }] },
    (u) => u.message.contacts[0].name.formatted_name === "Ana Silva");
await receive("receive reaction", { type: "reaction", reaction: { message_id: "wamid.x", emoji: "👍" } },
    (u) => u.message.reaction.emoji === "👍");
await receive("receive reply (context)", { type: "text", text: { body: "yes" }, context: { id: "wamid.business" } },
    (u) => u.message.context.id === "wamid.business" && !!u.message.context.from);
await receive("receive button reply", { type: "interactive", interactive: { type: "button_reply",
    button_reply: { id: "yes", title: "Yes" } }, context: { id: "wamid.business" } },
    (u) => u.message.interactive.button_reply.id === "yes");
await receive("receive list reply", { type: "interactive", interactive: { type: "list_reply",
    list_reply: { id: "row-1", title: "Row 1", description: "first" } }, context: { id: "wamid.business" } },
    (u) => u.message.interactive.list_reply.id === "row-1");
await receive("receive template quick reply", { type: "button", button: { payload: "stop", text: "Stop" },
    context: { id: "wamid.business" } }, (u) => u.message.button.payload === "stop");

received.length = 0;
const inbound = await userSends({ type: "text", text: { body: "window opener" } });

// ---- the client operations (the same list runs against the front door) ----
await run(Whatsapp, check, {
    phoneId: PHONE_ID, user: USER, inbound, tag: "sim",
    emit: (op, result, note) => console.log(JSON.stringify({ op, lib: LIB, result, note })),
});
const send = (msg) => Whatsapp.sendMessage(PHONE_ID, USER, msg).then((r) => {
    if (!r.messages?.[0]?.id) throw new Error(JSON.stringify(r));
    return r.messages[0].id;
});

for (const [op, why] of Object.entries(NOT_OFFERED)) {
    console.log(JSON.stringify({ op, lib: LIB, result: "n/a", note: why }));
}

// ---- statuses ----
await check("receive statuses sent, delivered, read", async () => {
    received.length = 0;
    const id = await send(new Text("track me"));
    for (const s of ["sent", "delivered", "read"]) {
        const u = await waitFor((x) => x.kind === "status" && x.id === id && x.status === s, `status ${s}`);
        if (u.phone !== USER || !u.contact.user_id) throw new Error(`status without the recipient's ids: ${JSON.stringify(u.contact)}`);
    }
});
await check("receive status failed", async () => {
    received.length = 0;
    const r = await Whatsapp.sendMessage(PHONE_ID, "4915112345678", new Text("out of window"));
    const u = await waitFor((x) => x.kind === "status" && x.id === r.messages[0].id, "failed status");
    return u.status === "failed" && u.error.code === 131047;
});
emit("signature verification", rejected.length === 0, rejected.length ? `${rejected.length} webhooks rejected` : "");
server.close();
process.exit(0);
