// whatsapp-api-js, unmodified, against wagate's front door (Meta's paths on the gateway, a
// wagate API key as the token): the client operations of wajs_client.mjs, the media of a user's
// message, and Meta's errors.
//
// Prints one JSON line per operation: {"op", "lib", "result", "note"}.
// Environment: GATEWAY_URL, GATEWAY_KEY, SIM_URL, SIM_PHONE_ID.

import { webcrypto } from "node:crypto";
import { WhatsAppAPI } from "whatsapp-api-js";
import { Text, Template, Language } from "whatsapp-api-js/messages";
import { run } from "./wajs_client.mjs";

const GW = process.env.GATEWAY_URL.replace(/\/$/, "");
const KEY = process.env.GATEWAY_KEY;
const SIM = process.env.SIM_URL.replace(/\/$/, "");
const PHONE_ID = process.env.SIM_PHONE_ID;
const USER = "16505551234";
const LIB = "whatsapp-api-js";

function emit(op, ok, note = "") {
    console.log(JSON.stringify({ op: `front door: ${op}`, lib: LIB, result: ok ? "ok" : "FAIL", note: String(note).slice(0, 300) }));
}

async function check(op, fn) {
    try {
        const out = await fn();
        emit(op, out !== false, out === false ? "unexpected result" : "");
        return out;
    } catch (e) {
        emit(op, false, `${e?.name}: ${e?.message}`);
        return undefined;
    }
}

// The library addresses graph.facebook.com; its documented `ponyfill.fetch` sends it here.
const toGateway = (url, options) => {
    const u = new URL(url);
    if (u.hostname === "graph.facebook.com") {
        const target = new URL(GW);
        u.protocol = target.protocol;
        u.host = target.host;
    }
    return fetch(u, options);
};

const api = (token) => new WhatsAppAPI({
    token, appSecret: "unused", secure: false, v: "v23.0", ponyfill: { fetch: toGateway, subtle: webcrypto.subtle },
});
const Whatsapp = api(KEY);

async function call(url, body, key) {
    const headers = { "content-type": "application/json" };
    if (key) headers.authorization = `Bearer ${key}`;
    const r = await fetch(url, { method: body === undefined ? "GET" : "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
    return r.json();
}

async function receivedEvent(wamid) {
    for (let i = 0; i < 250; i++) {
        const events = (await call(`${GW}/v1/events?type=message.received&limit=500`, undefined, KEY)).data;
        const e = events.find((x) => x.payload.wamid === wamid);
        if (e) return e;
        await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`the gateway never got ${wamid}`);
}

const inbound = (await call(`${SIM}/_sim/users/${USER}/messages`, { type: "text", text: { body: "hello gateway" } })).wamid;
await receivedEvent(inbound);

const send = async (msg, client = Whatsapp, to = USER) => client.sendMessage(PHONE_ID, to, msg);
// The same client operations as against the simulator (interop/run compares the two tables).
await run(Whatsapp, check, {
    phoneId: PHONE_ID, user: USER, inbound, tag: "gw",
    emit: (op, result, note) => console.log(JSON.stringify({ op: `front door: ${op}`, lib: LIB, result, note })),
});

await check("get media url and download (user's image)", async () => {
    const wamid = (await call(`${SIM}/_sim/users/${USER}/messages`, { type: "image" })).wamid;
    const mediaId = (await receivedEvent(wamid)).payload.content.media.id;
    for (let i = 0; i < 250; i++) {
        const r = await Whatsapp.retrieveMedia(mediaId);
        if (r.url) {
            const bytes = Buffer.from(await (await Whatsapp.fetchMedia(r.url)).arrayBuffer());
            return bytes.length > 0 && r.mime_type.startsWith("image/");
        }
        await new Promise((res) => setTimeout(res, 20));
    }
    throw new Error("the media never became available");
});

const refused = (r, code) => {
    if (r?.error?.code !== code) throw new Error(`expected Meta code ${code}: ${JSON.stringify(r)}`);
    return true;
};
await check("bad token answers 190", async () => refused(await send(new Text("x"), api("wg_wrong_key_0000")), 190));
await check("invalid recipient answers 100", async () => refused(await send(new Text("x"), Whatsapp, "not a number"), 100));
await check("unknown template answers 132001", async () =>
    refused(await send(new Template("no_such_template", new Language("en_US"))), 132001));
