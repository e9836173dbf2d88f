//! Every other call under Meta's paths (`/{version}/{id}[/{edge}…]`, any method): media upload,
//! read and delete, the template catalog, and an audited pass-through to Meta for the rest of an
//! account's objects. Which account an id belongs to, and what each call may do, is the engine's
//! ([`wagate_engine::frontdoor`]); this reads the request and answers in Meta's shapes.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, State};
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use wagate_engine::auth::Caller;
use wagate_engine::frontdoor::{self, Object, Owned};
use wagate_engine::media::files;

use super::{
    caller, from_api_error, from_graph_error, is_version, meta_error, no_such_endpoint, unknown_object, unsupported,
};
use crate::bounds::{API_BODY_LIMIT, MEDIA_UPLOAD_LIMIT};
use crate::state::AppState;

/// The query as pairs, in order, and as a map (last value wins, as Graph reads it).
fn query_of(raw: Option<&str>) -> (Vec<(String, String)>, HashMap<String, String>) {
    let pairs: Vec<(String, String)> = raw
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let map = pairs.iter().cloned().collect();
    (pairs, map)
}

/// `/{version}/{id}` and `/{version}/{id}/{edge…}`, any method. The body is read once the
/// caller is known, up to Meta's largest media file for an upload and the API's limit otherwise.
pub async fn graph(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_string();
    let (version, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(v, r)| (v.to_string(), r.to_string()))
        .unwrap_or_default();
    if !is_version(&version) {
        return no_such_endpoint(method.as_str(), &path);
    }
    let (pairs, query) = query_of(uri.query());
    let caller = match caller(&state, &headers, &query).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let segments: Vec<String> = rest.split('/').map(str::to_string).collect();
    let id = segments.first().cloned().unwrap_or_default();
    if id.is_empty() || segments.iter().any(String::is_empty) {
        return unsupported(method.as_str(), &path);
    }
    let edges: Vec<&str> = segments[1..].iter().map(String::as_str).collect();
    if let Err(e) = caller.require(frontdoor::scope_for(method.as_str(), &edges)) {
        return from_api_error(e);
    }
    let upload = method == Method::POST && segments.len() == 2 && segments[1] == "media";
    let limit = if upload { MEDIA_UPLOAD_LIMIT } else { API_BODY_LIMIT };
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(b) => b,
        Err(_) => {
            return meta_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                100,
                "Invalid parameter",
                Some(format!(
                    "the request body is over {limit} bytes, or did not arrive whole"
                )),
            )
        }
    };
    if method == Method::POST && segments.len() == 2 && segments[1] == "messages" {
        return super::send(&state, caller, &id, &query, &headers, body).await;
    }
    let owned = match frontdoor::owner(&state, &caller, &id).await {
        Ok(Some(o)) => o,
        Ok(None) => return unknown_object(method.as_str(), &id),
        Err(e) => return from_api_error(e),
    };
    let call = Call {
        state: &state,
        caller: &caller,
        method: &method,
        query: &query,
        headers: &headers,
    };
    let answer = match (method.as_str(), &owned.object, edges.as_slice()) {
        ("POST", Object::PhoneNumber, ["media"]) => call.upload(&owned, &id, body).await,
        ("GET", Object::Media(m), []) => Ok(call.describe(m)),
        ("DELETE", Object::Media(m), []) if m.message_id.is_empty() => {
            files::delete_uploaded(&state, &caller, (**m).clone())
                .await
                .map_err(from_api_error)
        }
        ("GET", Object::Waba, ["message_templates"]) => {
            let base = format!("{}{path}", call.base());
            frontdoor::templates(&state, &caller, &owned.account, &query, &base)
                .await
                .map_err(from_api_error)
        }
        ("POST", Object::Waba, ["message_templates"]) => match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => frontdoor::create_template(&state, &caller, &owned.account, v)
                .await
                .map_err(from_api_error),
            _ => Err(meta_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid parameter",
                Some("the body must be a JSON object: name, language, category, components".into()),
            )),
        },
        ("DELETE", Object::Waba, ["message_templates"]) => frontdoor::delete_template(
            &state,
            &caller,
            &owned.account,
            query.get("name").map(String::as_str),
            query.get("hsm_id").map(String::as_str),
        )
        .await
        .map_err(from_api_error),
        ("GET", Object::Template(t), []) => match caller.require("read") {
            Ok(()) => Ok(wagate_core::graphjson::select(
                frontdoor::template_json(t).as_object().cloned().unwrap_or_default(),
                query.get("fields"),
                &wagate_core::graphjson::TEMPLATE_DEFAULT_FIELDS,
            )),
            Err(e) => Err(from_api_error(e)),
        },
        _ => call.forward(&owned, segments, pairs, body).await,
    };
    match answer {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

struct Call<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    method: &'a Method,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    /// The gateway's own address, for the URLs it gives.
    fn base(&self) -> String {
        self.state.config.public_url.clone().unwrap_or_else(|| {
            let host = self
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1");
            format!("http://{host}")
        })
    }

    /// `GET /{media-id}`: a user's file or one uploaded through the gateway, as Meta describes
    /// it, with a URL on the gateway that takes the same token.
    fn describe(&self, m: &wagate_store::Media) -> Value {
        json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/v1/media/{}", self.base(), m.id),
            "mime_type": m.mime_type,
            "sha256": m.sha256,
            "file_size": m.size,
            "id": m.meta_media_id,
        })
    }

    /// `POST /{phone-number-id}/media` (multipart, as Meta takes it): checked against Meta's
    /// limits, kept in the gateway's media store and uploaded to Meta: `{"id"}`.
    async fn upload(&self, owned: &Owned, phone: &str, body: Bytes) -> Result<Value, Response> {
        self.caller.require("send").map_err(from_api_error)?;
        let bad = |why: String| {
            meta_error(
                StatusCode::BAD_REQUEST,
                100,
                "Invalid parameter",
                Some(format!(
                    "{why}: send multipart/form-data with the file in a part named `file`"
                )),
            )
        };
        let mut req = Request::builder().method(Method::POST);
        if let Some(ct) = self.headers.get("content-type") {
            req = req.header("content-type", ct);
        }
        let req = req.body(Body::from(body)).map_err(|e| bad(e.to_string()))?;
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| bad(e.body_text()))?;
        let upload = crate::upload::read_upload(form, self.query.get("type").cloned())
            .await
            .map_err(bad)?;
        let target = files::upload_target(
            self.state,
            self.caller,
            Some(&owned.account.id),
            Some(phone.to_string()),
        )
        .map_err(from_api_error)?;
        let answer = files::upload(self.state, target, upload)
            .await
            .map_err(from_api_error)?;
        Ok(json!({"id": answer["id"]}))
    }

    /// Anything else under the account's object: forwarded to Meta with the account's token.
    async fn forward(
        &self,
        owned: &Owned,
        segments: Vec<String>,
        query: Vec<(String, String)>,
        body: Bytes,
    ) -> Result<Value, Response> {
        let body = (!body.is_empty()).then(|| {
            let ct = self
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/json")
                .to_string();
            (ct, body.to_vec())
        });
        match frontdoor::pass_through(
            self.state,
            self.caller,
            &owned.account,
            self.method.as_str(),
            segments,
            query,
            body,
        )
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(from_graph_error(e)),
            Err(e) => Err(from_api_error(e)),
        }
    }
}
