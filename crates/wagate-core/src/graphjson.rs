//! Graph API answers as Meta shapes them, shared by the simulator and the gateway's front door so
//! that both answer a client alike: `fields` selection, and the template list with its filters,
//! cursors, `next` link and `summary`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

/// The fields Graph returns for a template when `fields` is not given.
pub const TEMPLATE_DEFAULT_FIELDS: [&str; 7] = [
    "name",
    "parameter_format",
    "components",
    "language",
    "status",
    "category",
    "id",
];

/// The most templates one WhatsApp Business Account may have (unverified business portfolio).
pub const TEMPLATE_LIMIT: usize = 250;

/// Keeps the `fields` asked for (comma-separated; `id` always), or `default` when none are.
/// Nested selections such as `quality_score{score}` keep the whole field.
pub fn select(mut obj: Map<String, Value>, fields: Option<&String>, default: &[&str]) -> Value {
    let wanted: Vec<String> = match fields.filter(|f| !f.trim().is_empty()) {
        Some(f) => f
            .split(',')
            .map(|x| x.split(['{', '.']).next().unwrap_or_default().trim().to_string())
            .collect(),
        None => default.iter().map(|s| s.to_string()).collect(),
    };
    obj.retain(|k, _| k == "id" || wanted.iter().any(|w| w == k));
    Value::Object(obj)
}

/// A template as Graph shows it, every field known (`select` narrows it).
pub struct TemplateFields<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub language: &'a str,
    pub status: &'a str,
    pub category: &'a str,
    pub parameter_format: &'a str,
    pub components: Value,
    pub quality: &'a str,
    pub quality_date_s: i64,
    pub rejected_reason: &'a str,
}

pub fn template(t: TemplateFields<'_>) -> Value {
    json!({
        "name": t.name,
        "parameter_format": t.parameter_format,
        "components": t.components,
        "language": t.language,
        "status": t.status,
        "category": t.category,
        "id": t.id,
        "quality_score": {"score": t.quality, "date": t.quality_date_s},
        "message_send_ttl_seconds": -1,
        "rejected_reason": t.rejected_reason,
    })
}

/// `GET /{waba_id}/message_templates` over `all` (templates as [`template`] makes them): Graph's
/// filters (`status`, `category`, `language`: comma-separated lists; `name`: part of the name),
/// `limit` (at most `page_max`), `after` cursors, a `next` link under `base`
/// (`http://host/v23.0/{waba}/message_templates`), `fields` and `summary`.
pub fn template_page(all: &[Value], q: &HashMap<String, String>, page_max: usize, base: &str) -> Value {
    let field = |t: &Value, k: &str| t[k].as_str().unwrap_or_default().to_string();
    let any_of = |key: &str, value: &str| {
        q.get(key)
            .is_none_or(|list| list.split(',').any(|x| x.trim().eq_ignore_ascii_case(value)))
    };
    let matching: Vec<&Value> = all
        .iter()
        .filter(|t| {
            any_of("status", &field(t, "status"))
                && any_of("category", &field(t, "category"))
                && any_of("language", &field(t, "language"))
                && q.get("name").is_none_or(|n| field(t, "name").contains(n.as_str()))
        })
        .collect();
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(25)
        .clamp(1, page_max.max(1));
    let start = q
        .get("after")
        .and_then(|a| a.strip_prefix("cursor_"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|t| {
            select(
                t.as_object().cloned().unwrap_or_default(),
                q.get("fields"),
                &TEMPLATE_DEFAULT_FIELDS,
            )
        })
        .collect();
    let end = start + page.len();
    let mut paging = json!({"cursors": {"before": format!("cursor_{start}"), "after": format!("cursor_{end}")}});
    if end < matching.len() {
        let mut next = format!("{base}?limit={limit}&after=cursor_{end}");
        for key in ["fields", "summary", "status", "category", "language", "name"] {
            if let Some(v) = q.get(key) {
                next.push_str(&format!("&{key}={}", encode(v)));
            }
        }
        paging["next"] = json!(next);
    }
    let mut answer = json!({"data": page, "paging": paging});
    if let Some(wanted) = q.get("summary") {
        let summary = json!({
            "total_count": matching.len(),
            "message_template_count": all.len(),
            "message_template_limit": TEMPLATE_LIMIT,
            "are_translations_complete": true,
        });
        answer["summary"] = select(
            summary.as_object().cloned().unwrap_or_default(),
            Some(wanted).filter(|w| *w != "true"),
            &[
                "total_count",
                "message_template_count",
                "message_template_limit",
                "are_translations_complete",
            ],
        );
    }
    answer
}

/// Graph takes parameters from the query string as well as the body, and decodes JSON-encoded
/// values of object and array parameters (whatsapp-api-js sends `contacts` as a JSON string).
/// Body values win over query values. Scalars that may legitimately look like JSON
/// (`biz_opaque_callback_data`) are left as they are.
pub fn merge_params(body: &mut Map<String, Value>, query: &HashMap<String, String>) {
    for (k, v) in query {
        if k != "access_token" && !body.contains_key(k) {
            body.insert(k.clone(), Value::String(v.clone()));
        }
    }
    const SCALARS: [&str; 9] = [
        "messaging_product",
        "recipient_type",
        "to",
        "recipient",
        "type",
        "status",
        "message_id",
        "biz_opaque_callback_data",
        "access_token",
    ];
    for (k, v) in body.iter_mut() {
        if SCALARS.contains(&k.as_str()) {
            continue;
        }
        if let Value::String(text) = v {
            let t = text.trim_start();
            if t.starts_with('{') || t.starts_with('[') {
                if let Ok(decoded @ (Value::Object(_) | Value::Array(_))) = serde_json::from_str::<Value>(text) {
                    *v = decoded;
                }
            }
        }
    }
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, status: &str) -> Value {
        template(TemplateFields {
            id: name,
            name,
            language: "en_US",
            status,
            category: "UTILITY",
            parameter_format: "POSITIONAL",
            components: json!([]),
            quality: "GREEN",
            quality_date_s: 0,
            rejected_reason: "NONE",
        })
    }

    #[test]
    fn pages_filter_and_link_the_next_page() {
        let all: Vec<Value> = (0..5)
            .map(|i| t(&format!("t{i}"), if i == 4 { "PAUSED" } else { "APPROVED" }))
            .collect();
        let q: HashMap<String, String> = [
            ("limit", "2"),
            ("status", "APPROVED"),
            ("fields", "name,status"),
            ("summary", "total_count"),
        ]
        .into_iter()
        .map(|(a, b)| (a.into(), b.into()))
        .collect();
        let page = template_page(&all, &q, 100, "http://gw/v23.0/1/message_templates");
        assert_eq!(page["data"].as_array().map(Vec::len), Some(2));
        assert_eq!(page["data"][0], json!({"id": "t0", "name": "t0", "status": "APPROVED"}));
        assert_eq!(page["summary"], json!({"total_count": 4}));
        assert_eq!(
            page["paging"]["next"],
            "http://gw/v23.0/1/message_templates?limit=2&after=cursor_2&fields=name%2Cstatus&summary=total_count&status=APPROVED"
        );
        let mut q2 = q.clone();
        q2.insert("after".into(), "cursor_2".into());
        let last = template_page(&all, &q2, 100, "x");
        assert_eq!(last["data"].as_array().map(Vec::len), Some(2));
        assert!(last["paging"].get("next").is_none());
    }
}
