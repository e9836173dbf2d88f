//! A message as the inbox shows it: what the user saw (a template filled in with its values,
//! with its header, footer and buttons; a list with its choices), its ticks, its media.

use std::collections::HashMap;

use serde_json::Value;
use wagate_engine::sending::views::MessageView;

pub(super) struct Bubble {
    pub id: String,
    pub direction: &'static str,
    pub status: String,
    pub ticks: &'static str,
    /// A template's header, filled in (or `[image]` and its link's file name).
    pub header: Option<String>,
    pub text: String,
    pub footer: Option<String>,
    /// Buttons and list choices, as the user saw them.
    pub buttons: Vec<String>,
    pub quote: Option<String>,
    pub time: String,
    pub failure: Option<String>,
    /// Media the user sent: its kind (`image`, `audio`, `video`, other) and where the console
    /// serves it.
    pub media: Option<(String, String)>,
}

/// The catalog's templates of the thread's account: `name|language` → components.
pub(super) type Catalog = HashMap<String, Value>;

/// A message as the thread shows it.
pub(super) fn bubble(m: &MessageView, catalog: &Catalog) -> Bubble {
    let mut b = Bubble {
        id: m.id.clone(),
        direction: if m.direction == "inbound" {
            "inbound"
        } else {
            "outbound"
        },
        status: m.status.clone(),
        ticks: ticks(&m.status),
        header: None,
        text: text(m),
        footer: None,
        buttons: Vec::new(),
        quote: m
            .content
            .pointer("/context/id")
            .or_else(|| m.content.pointer("/context/message_id"))
            .and_then(Value::as_str)
            .map(|w| format!("in reply to {}", w.chars().take(24).collect::<String>())),
        time: m.created_at.get(..16).unwrap_or(&m.created_at).replace('T', " "),
        failure: m.error.as_ref().map(|e| {
            let title = e.get("title").and_then(Value::as_str).unwrap_or("failed");
            match e.get("hint").and_then(Value::as_str) {
                Some(h) => format!("{title} — {h}"),
                None => title.to_string(),
            }
        }),
        media: media_of(m),
    };
    if m.direction != "inbound" {
        match m.message_type.as_str() {
            "template" => filled_template(&mut b, &m.content, catalog),
            "interactive" => interactive(&mut b, &m.content),
            _ => {}
        }
    }
    b
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The line a message shows (before a template or an interactive message is filled in).
fn text(m: &MessageView) -> String {
    let c = &m.content;
    let s = |p: &str| str_at(c, p).map(str::to_string);
    if m.direction == "inbound" {
        let text = s("/text").unwrap_or_default();
        return match (m.message_type.as_str(), text.is_empty()) {
            (_, false) => text,
            ("reaction", _) => format!("reacted {}", s("/content/emoji").unwrap_or_default()),
            (t, true) => format!("[{t}]"),
        };
    }
    match m.message_type.as_str() {
        "text" => s("/text/body").unwrap_or_default(),
        "template" => format!("Template {}", s("/template/name").unwrap_or_default()),
        "reaction" => format!("reacted {}", s("/reaction/emoji").unwrap_or_default()),
        "location" => s("/location/name").map_or_else(|| "[location]".into(), |n| format!("📍 {n}")),
        "interactive" => String::new(),
        t => s(&format!("/{t}/caption")).map_or_else(|| format!("[{t}]"), |cap| format!("[{t}] {cap}")),
    }
}

/// The values a sent template gave one of its components (`header`, `body`), in order, with
/// their names when named.
fn values(content: &Value, kind: &str) -> Vec<(Option<String>, String)> {
    content
        .pointer("/template/components")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| str_at(c, "/type").is_some_and(|t| t.eq_ignore_ascii_case(kind)))
        .flat_map(|c| {
            c.get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|p| {
            let name = str_at(&p, "/parameter_name").map(str::to_string);
            let kind = str_at(&p, "/type").unwrap_or("text");
            let value = match kind {
                "text" => str_at(&p, "/text").unwrap_or_default().to_string(),
                "currency" => str_at(&p, "/currency/fallback_value").unwrap_or_default().to_string(),
                "date_time" => str_at(&p, "/date_time/fallback_value").unwrap_or_default().to_string(),
                media => format!(
                    "[{media}] {}",
                    str_at(&p, &format!("/{media}/link"))
                        .and_then(|l| l.rsplit('/').next())
                        .or_else(|| str_at(&p, &format!("/{media}/id")))
                        .unwrap_or_default()
                )
                .trim()
                .to_string(),
            };
            (name, value)
        })
        .collect()
}

/// `{{1}}` and `{{name}}` replaced with the values given.
fn fill(text: &str, values: &[(Option<String>, String)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else { break };
        let key = rest[start + 2..start + end].trim();
        out.push_str(&rest[..start]);
        let value = match key.parse::<usize>() {
            Ok(n) => values.get(n.wrapping_sub(1)).map(|v| v.1.as_str()),
            Err(_) => values
                .iter()
                .find(|v| v.0.as_deref() == Some(key))
                .map(|v| v.1.as_str()),
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + end + 2]),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// A template as the user saw it: the catalog's components filled in with the values sent.
fn filled_template(b: &mut Bubble, content: &Value, catalog: &Catalog) {
    let name = str_at(content, "/template/name").unwrap_or_default();
    let language = str_at(content, "/template/language/code").unwrap_or_default();
    let Some(components) = catalog.get(&format!("{name}|{language}")).and_then(Value::as_array) else {
        // Not in the catalog (deleted, or never synced): its name and values.
        let given: Vec<String> = values(content, "body").into_iter().map(|v| v.1).collect();
        if !given.is_empty() {
            b.text = format!("Template {name}: {}", given.join(", "));
        }
        return;
    };
    for c in components {
        let kind = str_at(c, "/type").unwrap_or_default().to_ascii_uppercase();
        let text = str_at(c, "/text").unwrap_or_default();
        match kind.as_str() {
            "HEADER" => {
                let given = values(content, "header");
                b.header = Some(match str_at(c, "/format").unwrap_or("TEXT") {
                    "TEXT" => fill(text, &given),
                    media => given
                        .first()
                        .map(|v| v.1.clone())
                        .unwrap_or_else(|| format!("[{}]", media.to_ascii_lowercase())),
                });
            }
            "BODY" => b.text = fill(text, &values(content, "body")),
            "FOOTER" => b.footer = Some(text.to_string()),
            "BUTTONS" => {
                b.buttons = c
                    .get("buttons")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|button| {
                        let label = str_at(button, "/text").unwrap_or_default();
                        match str_at(button, "/type").unwrap_or_default() {
                            "URL" => format!("🔗 {label}"),
                            "PHONE_NUMBER" => format!("📞 {label}"),
                            _ => label.to_string(),
                        }
                    })
                    .collect();
            }
            _ => {}
        }
    }
}

/// An interactive message as the user saw it: header, body, footer, and its buttons or list.
fn interactive(b: &mut Bubble, content: &Value) {
    let i = content.get("interactive").unwrap_or(&Value::Null);
    b.header = str_at(i, "/header/text").map(str::to_string);
    b.text = str_at(i, "/body/text").unwrap_or_default().to_string();
    b.footer = str_at(i, "/footer/text").map(str::to_string);
    let action = i.get("action").unwrap_or(&Value::Null);
    b.buttons = match str_at(i, "/type").unwrap_or_default() {
        "button" => action
            .get("buttons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|b| str_at(b, "/reply/title").map(str::to_string))
            .collect(),
        "list" => {
            let mut lines = vec![format!("☰ {}", str_at(action, "/button").unwrap_or("Choose"))];
            for section in action.get("sections").and_then(Value::as_array).into_iter().flatten() {
                for row in section.get("rows").and_then(Value::as_array).into_iter().flatten() {
                    lines.push(str_at(row, "/title").unwrap_or_default().to_string());
                }
            }
            lines
        }
        "cta_url" => vec![format!(
            "🔗 {}",
            str_at(action, "/parameters/display_text").unwrap_or_default()
        )],
        // One line a card, in the order the user swipes them: what it shows, then its buttons.
        "carousel" => action
            .get("cards")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(card_line)
            .collect(),
        other => vec![format!("[{other}]")],
    };
}

/// A carousel card as one line: `▸ [image] Blue Echeveria · 🔗 Buy now`.
fn card_line(card: &Value) -> String {
    if str_at(card, "/type") == Some("product") {
        return format!(
            "▸ 🛍 {}",
            str_at(card, "/action/product_retailer_id").unwrap_or_default()
        );
    }
    let media = str_at(card, "/header/type").unwrap_or("media");
    let text = str_at(card, "/body/text")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default();
    let buttons: Vec<String> = match card.pointer("/action/buttons").and_then(Value::as_array) {
        Some(replies) => replies
            .iter()
            .filter_map(|b| str_at(b, "/quick_reply/title").map(str::to_string))
            .collect(),
        None => vec![format!(
            "🔗 {}",
            str_at(card, "/action/parameters/display_text").unwrap_or_default()
        )],
    };
    format!("▸ [{media}] {text} · {}", buttons.join(" / ")).replace("]  ·", "] ·")
}

fn ticks(status: &str) -> &'static str {
    match status {
        "queued" | "accepted" => "🕓",
        "sent" => "✓",
        "delivered" | "read" | "played" => "✓✓",
        "failed" => "✗",
        "cancelled" => "⊘",
        _ => "",
    }
}

/// An inbound message's stored media, as the console serves it.
fn media_of(m: &MessageView) -> Option<(String, String)> {
    let id = str_at(&m.content, "/content/media/media_id")?;
    let kind = match m.message_type.as_str() {
        "image" | "sticker" => "image",
        "audio" => "audio",
        "video" => "video",
        _ => "file",
    };
    Some((kind.to_string(), format!("/console/media/{id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_template_reads_as_the_user_saw_it() {
        let sent = json!({"template": {"name": "order", "language": {"code": "en"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "Acme"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#42"}]}
        ]}});
        let catalog: Catalog = [(
            "order|en".to_string(),
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "From {{1}}"},
                {"type": "BODY", "text": "Hi {{1}}, order {{2}} is on its way ({{3}})."},
                {"type": "FOOTER", "text": "Reply STOP to opt out"},
                {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track"}, {"type": "QUICK_REPLY", "text": "Thanks"}]}
            ]),
        )]
        .into();
        let mut b = bubble_for(&sent);
        filled_template(&mut b, &sent, &catalog);
        assert_eq!(b.header.as_deref(), Some("From Acme"));
        assert_eq!(b.text, "Hi Ada, order #42 is on its way ({{3}}).");
        assert_eq!(b.footer.as_deref(), Some("Reply STOP to opt out"));
        assert_eq!(b.buttons, ["🔗 Track", "Thanks"]);
    }

    #[test]
    fn a_carousel_shows_a_line_a_card() {
        let sent: Value = serde_json::from_slice(include_bytes!(
            "../../../../testdata/meta/send_interactive_carousel_request.json"
        ))
        .expect("fixture");
        let mut b = bubble_for(&sent);
        interactive(&mut b, &sent);
        assert!(b.text.starts_with("Of course!"), "{}", b.text);
        assert_eq!(
            b.buttons,
            [
                "▸ [image] *Blue Echeveria* · 🔗 Buy now",
                "▸ [image] *Jade Plant* · 🔗 Buy now",
                "▸ [video] · 🔗 Buy now"
            ]
        );
        let products = json!({"interactive": {"type": "carousel", "body": {"text": "Best sellers"}, "action": {"cards": [
            {"card_index": 0, "type": "product", "action": {"product_retailer_id": "SKU-1", "catalog_id": "1"}}]}}});
        let mut b = bubble_for(&products);
        interactive(&mut b, &products);
        assert_eq!(b.buttons, ["▸ 🛍 SKU-1"]);
    }

    #[test]
    fn named_values_fill_named_variables() {
        let given = vec![(Some("first_name".to_string()), "Ada".to_string())];
        assert_eq!(fill("Hi {{first_name}} {{x}}", &given), "Hi Ada {{x}}");
    }

    #[test]
    fn a_list_shows_its_button_and_its_rows() {
        let sent = json!({"interactive": {"type": "list", "body": {"text": "Pick a slot"}, "action": {
            "button": "Slots", "sections": [{"title": "Today", "rows": [{"id": "a", "title": "9:00"}, {"id": "b", "title": "10:00"}]}]
        }}});
        let mut b = bubble_for(&sent);
        interactive(&mut b, &sent);
        assert_eq!(b.text, "Pick a slot");
        assert_eq!(b.buttons, ["☰ Slots", "9:00", "10:00"]);
    }

    fn bubble_for(_content: &Value) -> Bubble {
        Bubble {
            id: String::new(),
            direction: "outbound",
            status: String::new(),
            ticks: "",
            header: None,
            text: String::new(),
            footer: None,
            buttons: Vec::new(),
            quote: None,
            time: String::new(),
            failure: None,
            media: None,
        }
    }
}
