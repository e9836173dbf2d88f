// whatsapp-api-js's client operations, the same against the simulator and against wagate's front
// door: every send type (carousels included), mark as read, typing indicator, media
// upload/retrieve/download/delete, QR codes. Each operation is one row through `check`.

import {
    Text, Image, Video, Audio, Document, Sticker, Location, Contacts, Name, Phone,
    Interactive, ActionButtons, Button, ActionList, ListSection, Row, ActionCTA, ActionLocation,
    Body, Reaction, Template, Language,
} from "whatsapp-api-js/messages";

const JPEG = Buffer.from("ffd8ffe000104a46494600010100000100010000ffd9", "hex");

// Operations this library does not offer (rows say so instead of failing).
export const NOT_OFFERED = {
    "list templates": "the library has no template management API",
    "create template": "the library has no template management API",
    "get phone number": "the library has no phone number API",
    "get business profile": "the library has no business profile API",
};

export async function run(Whatsapp, check, { phoneId, user, inbound, tag, emit }) {
    const send = (msg) => Whatsapp.sendMessage(phoneId, user, msg).then((r) => {
        if (!r.messages?.[0]?.id) throw new Error(JSON.stringify(r));
        return r.messages[0].id;
    });
    await check("send text", () => send(new Text("hi from whatsapp-api-js")));
    await check("send buttons", () => send(new Interactive(
        new ActionButtons(new Button("yes", "Yes"), new Button("no", "No")), new Body("Pick"))));
    await check("send list", () => send(new Interactive(
        new ActionList("Open", new ListSection("S", new Row("a", "A", "first"))), new Body("Choose"))));
    await check("send cta url", () => send(new Interactive(new ActionCTA("Open", "https://example.com"), new Body("Visit"))));
    await check("send location request", () => send(new Interactive(new ActionLocation(), new Body("Where are you?"))));
    await check("send image by link", () => send(new Image("https://example.com/pic.jpg", false, "pic")));
    await check("send video", () => send(new Video("https://example.com/v.mp4")));
    await check("send audio", () => send(new Audio("https://example.com/a.ogg")));
    await check("send document", () => send(new Document("https://example.com/d.pdf", false, "doc", "d.pdf")));
    await check("send sticker", () => send(new Sticker("https://example.com/s.webp")));
    await check("send location", () => send(new Location(-9.1, 38.7, "Lisboa", "Praça do Comércio")));
    await check("send contact", () => send(new Contacts(
        [new Name("Ana Silva", "Ana"), new Phone("+5511999999999", "CELL")])));
    await check("send reaction", () => send(new Reaction(inbound, "👍")));
    await check("remove reaction", () => send(new Reaction(inbound)));
    await check("send template", () => send(new Template("hello_world", new Language("en_US"))));
    await check("mark as read", async () => (await Whatsapp.markAsRead(phoneId, inbound)).success === true);
    await check("typing indicator", async () => (await Whatsapp.markAsRead(phoneId, inbound, "text")).success === true);

    const uploaded = await check("upload media", async () => {
        const form = new FormData();
        form.append("file", new Blob([JPEG], { type: "image/jpeg" }), "a.jpg");
        const r = await Whatsapp.uploadMedia(phoneId, form);
        if (!r.id) throw new Error(JSON.stringify(r));
        return r.id;
    });
    if (uploaded) {
        await check("send image by id", () => send(new Image(uploaded, true)));
        const media = await check("get media url", async () => {
            const r = await Whatsapp.retrieveMedia(uploaded, phoneId);
            if (!r.url) throw new Error(JSON.stringify(r));
            return r;
        });
        if (media) {
            await check("download media", async () => {
                const r = await Whatsapp.fetchMedia(media.url);
                return Buffer.from(await r.arrayBuffer()).equals(JPEG);
            });
        }
        await check("delete media", async () => (await Whatsapp.deleteMedia(uploaded)).success === true);
    }

    const qr = await check("create qr code", async () => {
        const r = await Whatsapp.createQR(phoneId, `Hi ${tag}`);
        if (!r.code) throw new Error(JSON.stringify(r));
        return r.code;
    });
    if (qr) {
        await check("get qr code", async () => (await Whatsapp.retrieveQR(phoneId, qr)).data?.[0]?.code === qr);
        await check("update qr code", async () => (await Whatsapp.updateQR(phoneId, qr, "Hello again")).code === qr);
        await check("delete qr code", async () => (await Whatsapp.deleteQR(phoneId, qr)).success === true);
    }
    for (const [op, why] of Object.entries(NOT_OFFERED)) emit(op, "n/a", why);
}
