"""pywa's client operations, the same against the simulator and against wagate's front door: every
send type, media upload/retrieve/download/delete, templates list/get/create/delete, the phone
number(s), its settings, the business profile and its update, flows, blocked users, QR codes,
commerce settings and call permissions. `run` returns nothing; each operation is one row.
"""

import time

from pywa import types
from pywa.types import templates as t
from pywa.types.templates import TemplateLanguage

LINK = "https://example.com/pic.jpg"
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def run(wa, check, user, inbound, phone_id, tag):
    """`check(op, fn)` makes one row; `inbound` is the wamid of a message the user sent (it opened
    the customer-service window); `tag` makes created names unique per run."""
    check("send text", lambda: wa.send_message(to=user, text="hi from pywa").id)
    check("send buttons", lambda: wa.send_message(to=user, text="Pick", buttons=[
        types.Button(title="Yes", callback_data="yes"), types.Button(title="No", callback_data="no")]).id)
    check("send list", lambda: wa.send_message(to=user, text="Choose", buttons=types.SectionList(
        button_title="Open", sections=[types.Section(title="S", rows=[types.SectionRow(title="A", callback_data="a")])])).id)
    check("send cta url", lambda: wa.send_message(to=user, text="Visit", buttons=types.URLButton(
        title="Open", url="https://example.com")).id)
    check("send image by link", lambda: wa.send_image(to=user, image=LINK, caption="pic").id)
    check("send video", lambda: wa.send_video(to=user, video="https://example.com/v.mp4").id)
    check("send audio", lambda: wa.send_audio(to=user, audio="https://example.com/a.ogg").id)
    check("send document", lambda: wa.send_document(to=user, document="https://example.com/d.pdf", filename="d.pdf").id)
    check("send sticker", lambda: wa.send_sticker(to=user, sticker="https://example.com/s.webp").id)
    check("send location", lambda: wa.send_location(to=user, latitude=38.7, longitude=-9.1, name="Lisboa").id)
    check("send contact", lambda: wa.send_contact(to=user, contact=types.Contact(
        name=types.Contact.Name(formatted_name="Ana Silva", first_name="Ana"),
        phones=[types.Contact.Phone(phone="+5511999999999", type="CELL")])).id)
    check("send location request", lambda: wa.request_location(to=user, text="Where are you?").id)
    check("send reaction", lambda: wa.send_reaction(to=user, emoji="👍", message_id=inbound).id)
    check("remove reaction", lambda: wa.remove_reaction(to=user, message_id=inbound).id)
    check("send template", lambda: wa.send_template(to=user, name="hello_world", language=TemplateLanguage.ENGLISH_US).id)
    check("mark as read", lambda: wa.mark_message_as_read(message_id=inbound).success)
    check("typing indicator", lambda: wa.indicate_typing(message_id=inbound).success)

    # ---- media ----
    media = check("upload media", lambda: wa.upload_media(media=JPEG, mime_type="image/jpeg", filename="a.jpg"))
    if media is not None:
        check("send image by id", lambda: wa.send_image(to=user, image=media.id).id)
        url = check("get media url", lambda: wa.get_media_url(media.id))
        if url is not None:
            check("download media", lambda: wa.get_media_bytes(url=url.url) == JPEG)
        check("delete media", lambda: wa.delete_media(media.id).success)
    check("send document by upload (invoice PDF)", lambda: wa.send_document(
        to=user, document=PDF, mime_type="application/pdf", filename="invoice.pdf").id)

    # ---- templates ----
    templates = check("list templates", lambda: list(wa.get_templates()))
    if templates:
        check("get template", lambda: wa.get_template(templates[0].id).name == templates[0].name)
    name = f"order_update_{tag}"
    created = check("create template", lambda: wa.create_template(template=t.Template(
        name=name, language=TemplateLanguage.ENGLISH_US, category=t.TemplateCategory.UTILITY,
        parameter_format=t.ParamFormat.POSITIONAL,
        components=[t.BodyText("Your order {{1}} has shipped.", "A-1001")])))
    if created is not None:
        check("list templates finds the new one", lambda: any(
            x.name == name for x in wa.get_templates(name=name)))
        check("delete template", lambda: wa.delete_template(template_name=name).success)

    # ---- the number and the business ----
    check("get phone number", lambda: wa.get_business_phone_number().id == phone_id)
    check("get phone numbers", lambda: any(n.id == phone_id for n in wa.get_business_phone_numbers()))
    check("get phone number settings", lambda: wa.get_business_phone_number_settings() is not None)
    check("get business profile", lambda: wa.get_business_profile().about is not None)
    check("update business profile", lambda: wa.update_business_profile(about="Open 9-5").success)
    check("get commerce settings", lambda: wa.get_commerce_settings() is not None)
    check("list flows", lambda: len(list(wa.get_flows())) > 0)
    check("get call permissions", lambda: wa.get_call_permissions(from_user=user).permission is not None)
    qr = check("create qr code", lambda: wa.create_qr_code(prefilled_message=f"Hi {tag}"))
    if qr is not None:
        check("get qr code", lambda: wa.get_qr_code(qr.code).prefilled_message == f"Hi {tag}")
        check("delete qr code", lambda: wa.delete_qr_code(qr.code).success)
    blocked = f"1650555{int(time.time()) % 10000:04d}"
    check("block user", lambda: len(wa.block_users([blocked]).added_users) == 1)
    check("unblock user", lambda: len(wa.unblock_users([blocked]).removed_users) == 1)
