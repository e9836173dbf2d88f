//! `/docs`: the OpenAPI document as a readable reference — endpoints by resource, their
//! parameters, bodies and answers, and the schemas — rendered on the server from the same
//! document `/openapi.json` serves, offline (no CDN, no script).

use askama::Template;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

struct Param {
    name: String,
    place: String,
    kind: String,
    required: bool,
    description: String,
}

struct Answer {
    status: String,
    description: String,
    schema: Option<String>,
}

struct Operation {
    anchor: String,
    method: String,
    method_upper: String,
    path: String,
    summary: String,
    params: Vec<Param>,
    body: Option<String>,
    example: Option<String>,
    responses: Vec<Answer>,
}

struct Tag {
    name: String,
    description: String,
    operations: Vec<Operation>,
}

struct Field {
    name: String,
    kind: String,
    required: bool,
    description: String,
}

struct Schema {
    name: String,
    description: String,
    fields: Vec<Field>,
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    intro: String,
    tags: Vec<Tag>,
    schemas: Vec<Schema>,
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// A schema's name when it is a reference (`#/components/schemas/X` → `X`).
fn reference(schema: &Value) -> Option<String> {
    let r = schema
        .get("$ref")
        .or_else(|| schema.pointer("/items/$ref"))
        .or_else(|| schema.pointer("/oneOf/0/$ref"))?;
    r.as_str()?.rsplit('/').next().map(str::to_string)
}

/// A schema's type as a person reads it.
fn kind(schema: &Value) -> String {
    if let Some(r) = reference(schema) {
        return match schema.get("items") {
            Some(_) => format!("[{r}]"),
            None => r,
        };
    }
    match schema.get("type") {
        Some(Value::String(t)) if t == "array" => format!("[{}]", kind(schema.get("items").unwrap_or(&Value::Null))),
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "object".into(),
    }
}

fn operations(doc: &Value) -> Vec<(String, Operation)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let params = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| Param {
                    name: text(p, "name"),
                    place: text(p, "in"),
                    kind: kind(&p["schema"]),
                    required: p["required"] == true,
                    description: text(p, "description"),
                })
                .collect();
            let content = op.pointer("/requestBody/content/application~1json");
            let body = content.and_then(|c| reference(&c["schema"]));
            let example = content
                .and_then(|c| c.get("example").or_else(|| c.pointer("/schema/example")))
                .map(|e| serde_json::to_string_pretty(e).unwrap_or_default());
            let responses = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, r)| Answer {
                    status: status.clone(),
                    description: text(r, "description"),
                    schema: r.pointer("/content/application~1json/schema").and_then(reference),
                })
                .collect();
            let tag = op["tags"][0].as_str().unwrap_or("other").to_string();
            let summary = [text(op, "summary"), text(op, "description")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
            out.push((
                tag,
                Operation {
                    anchor: format!("{method}-{}", path.replace(['/', '{', '}'], "-")),
                    method_upper: method.to_uppercase(),
                    method: method.clone(),
                    path: path.clone(),
                    summary,
                    params,
                    body,
                    example,
                    responses,
                },
            ));
        }
    }
    out
}

fn schemas(doc: &Value) -> Vec<Schema> {
    doc.pointer("/components/schemas")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, s)| {
            let required: Vec<&str> = s["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            Schema {
                name: name.clone(),
                description: text(s, "description"),
                fields: s["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(field, p)| Field {
                        required: required.contains(&field.as_str()),
                        name: field.clone(),
                        kind: kind(p),
                        description: text(p, "description"),
                    })
                    .collect(),
            }
        })
        .collect()
}

/// `GET /docs`.
pub async fn page() -> Response {
    let doc = crate::openapi::document();
    let mut tags: Vec<Tag> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| Tag {
            name: text(t, "name"),
            description: text(t, "description"),
            operations: Vec::new(),
        })
        .collect();
    for (tag, op) in operations(&doc) {
        match tags.iter_mut().find(|t| t.name == tag) {
            Some(t) => t.operations.push(op),
            None => tags.push(Tag {
                name: tag,
                description: String::new(),
                operations: vec![op],
            }),
        }
    }
    let page = DocsPage {
        intro: text(&doc["info"], "description"),
        schemas: schemas(&doc),
        tags,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => crate::error::ApiError::internal(format!("the reference could not be rendered: {e}")).into_response(),
    }
}
