//! A client of Meta's Graph API for the WhatsApp Cloud API. The base URL is configurable, so the
//! same client talks to graph.facebook.com and to the simulator. Errors are classified: Meta's
//! own error (with its code and a retry class), or a transport problem (always retryable).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use serde_json::Value;
use wagate_core::meta::{GraphErrorBody, MetaError, RetryClass, SendResponse};

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with its error body.
    #[error("Meta refused the request (HTTP {status}): {}", .error.summary())]
    Meta { status: u16, error: Box<MetaError> },
    /// No answer to a request that may have reached Meta: timeout, reset mid-call.
    #[error("no answer from the Graph API: {0}")]
    Transport(String),
    /// The request never left: connection refused, name not resolved.
    #[error("could not reach the Graph API: {0}")]
    Unreached(String),
    /// An answer we could not read.
    #[error("unexpected answer from the Graph API (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
    /// A request that must not be made: a path segment that would name another object.
    #[error("refused to call the Graph API: {0}")]
    InvalidRequest(String),
}

/// A Graph API object path and its query. Every segment and every query value is
/// percent-encoded when the URL is built (by the `url` crate), so no value, however it is
/// spelt (`#`, `&`, `/`, `?`, `..`), can reach another object or add a parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphPath {
    segments: Vec<String>,
    query: Vec<(String, String)>,
}

impl GraphPath {
    /// `GraphPath::new([waba_id, "message_templates"])`.
    pub fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Self {
        Self {
            segments: segments.into_iter().map(Into::into).collect(),
            query: Vec::new(),
        }
    }

    /// Adds `key=value` to the query string.
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }
}

impl GraphError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            GraphError::Meta { error, .. } => error.class(),
            GraphError::Transport(_) | GraphError::Unreached(_) => RetryClass::Retry,
            GraphError::Unexpected { status, .. } if *status >= 500 || *status == 429 => RetryClass::Retry,
            GraphError::Unexpected { .. } | GraphError::InvalidRequest(_) => RetryClass::Fix,
        }
    }

    pub fn meta(&self) -> Option<&MetaError> {
        match self {
            GraphError::Meta { error, .. } => Some(error.as_ref()),
            _ => None,
        }
    }

    pub fn metric_code(&self) -> String {
        match self {
            GraphError::Meta { error, .. } => error.code.to_string(),
            GraphError::Transport(_) => "transport".into(),
            GraphError::Unreached(_) => "unreached".into(),
            GraphError::Unexpected { status, .. } => format!("http_{status}"),
            GraphError::InvalidRequest(_) => "invalid_request".into(),
        }
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: reqwest::Url,
    version: String,
}

impl GraphClient {
    /// `base_url` such as `https://graph.facebook.com`; `version` such as `v23.0`.
    pub fn new(base_url: &str, version: &str, timeout: Duration) -> Result<Self, GraphError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        let base_url = reqwest::Url::parse(base_url)
            .ok()
            .filter(|u| !u.cannot_be_a_base())
            .ok_or_else(|| GraphError::InvalidRequest(format!("`{base_url}` is not a base URL")))?;
        Ok(Self {
            http,
            base_url,
            version: version.to_string(),
        })
    }

    /// The URL of `path` under the base URL and API version, every part percent-encoded.
    pub fn url(&self, path: &GraphPath) -> Result<reqwest::Url, GraphError> {
        let mut url = self.base_url.clone();
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| GraphError::InvalidRequest("the Graph base URL cannot take a path".into()))?;
            segments.pop_if_empty().push(&self.version);
            for s in &path.segments {
                // `url` would drop these silently; an empty one would change the object named.
                if s.is_empty() || s == "." || s == ".." {
                    return Err(GraphError::InvalidRequest(format!(
                        "`{s}` is not an object id or edge name"
                    )));
                }
                segments.push(s);
            }
        }
        if !path.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&path.query);
        }
        Ok(url)
    }

    /// `POST /{phone_number_id}/messages` with a Meta message object.
    pub async fn send_message(
        &self,
        token: &str,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<SendResponse, GraphError> {
        let path = GraphPath::new([phone_number_id, "messages"]);
        let v = self
            .call(reqwest::Method::POST, &path, token, Some(body), "messages")
            .await?;
        serde_json::from_value(v.clone()).map_err(|_| GraphError::Unexpected {
            status: 200,
            body: v.to_string(),
        })
    }

    /// `POST /{path}` with a JSON body (mark-as-read, typing indicator, management calls).
    pub async fn post(&self, token: &str, path: &GraphPath, body: &Value) -> Result<Value, GraphError> {
        self.call(reqwest::Method::POST, path, token, Some(body), "post").await
    }

    /// `DELETE /{path}`.
    pub async fn delete(&self, token: &str, path: &GraphPath) -> Result<Value, GraphError> {
        self.call(reqwest::Method::DELETE, path, token, None, "delete").await
    }

    /// `POST /{phone_number_id}/media` (multipart): uploads a file; Meta answers with its id.
    pub async fn upload_media(
        &self,
        token: &str,
        phone_number_id: &str,
        bytes: Vec<u8>,
        mime_type: &str,
        filename: &str,
    ) -> Result<String, GraphError> {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(filename.to_string())
            .mime_str(mime_type)
            .map_err(|e| GraphError::Unexpected {
                status: 0,
                body: e.to_string(),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime_type.to_string())
            .part("file", part);
        let url = self.url(&GraphPath::new([phone_number_id, "media"]))?;
        let req = self.http.post(url).bearer_auth(token).multipart(form);
        let v = Self::timed(req, "media").await?;
        v.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| GraphError::Unexpected {
                status: 200,
                body: v.to_string(),
            })
    }

    /// Downloads a media URL Meta gave (it needs the token too). Returns the bytes.
    pub async fn download(&self, token: &str, url: &str) -> Result<Vec<u8>, GraphError> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| GraphError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| GraphError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            Ok(bytes.to_vec())
        } else {
            Err(GraphError::Unexpected {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            })
        }
    }

    /// Any call as a client made it (method, path and query, body with its `Content-Type`,
    /// JSON or multipart alike): the front door's pass-through, with the account's token.
    pub async fn forward(
        &self,
        token: &str,
        method: &str,
        path: &GraphPath,
        body: Option<(String, Vec<u8>)>,
    ) -> Result<Value, GraphError> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|_| GraphError::InvalidRequest(format!("`{method}` is not an HTTP method")))?;
        let mut req = self.http.request(method, self.url(path)?).bearer_auth(token);
        if let Some((content_type, bytes)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, content_type).body(bytes);
        }
        Self::timed(req, "forward").await
    }

    /// `GET /{path}`.
    pub async fn get(&self, token: &str, path: &GraphPath) -> Result<Value, GraphError> {
        self.call(reqwest::Method::GET, path, token, None, "get").await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &GraphPath,
        token: &str,
        body: Option<&Value>,
        endpoint: &'static str,
    ) -> Result<Value, GraphError> {
        let mut req = self.http.request(method, self.url(path)?).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::timed(req, endpoint).await
    }

    /// Sends a request, timing it and counting its errors by endpoint.
    async fn timed(req: reqwest::RequestBuilder, endpoint: &'static str) -> Result<Value, GraphError> {
        let started = Instant::now();
        let result = Self::read(req.send().await).await;
        metrics::histogram!("wagate_graph_request_duration_seconds", "endpoint" => endpoint)
            .record(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            metrics::counter!("wagate_graph_errors_total", "endpoint" => endpoint, "code" => e.metric_code())
                .increment(1);
        }
        result
    }

    async fn read(resp: Result<reqwest::Response, reqwest::Error>) -> Result<Value, GraphError> {
        let resp = resp.map_err(|e| {
            // The URL may carry a secret in its query (the OAuth code exchange's client_secret):
            // it stays out of the error, and so out of logs and answers.
            let e = e.without_url();
            if e.is_connect() {
                GraphError::Unreached(e.to_string())
            } else {
                GraphError::Transport(e.to_string())
            }
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| GraphError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|_| GraphError::Unexpected {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            });
        }
        match serde_json::from_slice::<GraphErrorBody>(&bytes) {
            Ok(body) => Err(GraphError::Meta {
                status,
                error: Box::new(body.error),
            }),
            Err(_) => Err(GraphError::Unexpected {
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(base: &str) -> GraphClient {
        GraphClient::new(base, "v23.0", Duration::from_secs(1)).expect("client")
    }

    #[test]
    fn every_value_is_encoded_into_its_own_segment_or_parameter() {
        let c = client("https://graph.facebook.com");
        let path = GraphPath::new(["102290129340398", "message_templates"]).query("name", "po_notification#x");
        assert_eq!(
            c.url(&path).expect("url").as_str(),
            "https://graph.facebook.com/v23.0/102290129340398/message_templates?name=po_notification%23x"
        );
        for (name, encoded) in [
            ("zzz&name=order_shipped_image", "zzz%26name%3Dorder_shipped_image"),
            ("a/b", "a%2Fb"),
            ("a?b", "a%3Fb"),
            ("..", ".."),
            ("with space", "with+space"),
            ("ünï 👋", "%C3%BCn%C3%AF+%F0%9F%91%8B"),
        ] {
            let url = c
                .url(&GraphPath::new(["1", "message_templates"]).query("name", name))
                .expect("url");
            assert_eq!(url.query(), Some(format!("name={encoded}").as_str()), "{name}");
            let back: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            assert_eq!(back, vec![("name".to_string(), name.to_string())]);
        }
        for (segment, encoded) in [
            ("a/b", "a%2Fb"),
            ("x?access_token=1", "x%3Faccess_token=1"),
            ("x#y", "x%23y"),
            ("ünï", "%C3%BCn%C3%AF"),
            ("a b", "a%20b"),
        ] {
            let url = c.url(&GraphPath::new([segment])).expect("url");
            assert_eq!(url.path(), format!("/v23.0/{encoded}"), "{segment}");
            assert_eq!(url.query(), None, "{segment}");
        }
    }

    #[test]
    fn dot_segments_and_empty_ids_are_refused() {
        let c = client("http://127.0.0.1:1/prefix/");
        for bad in ["..", ".", ""] {
            assert!(matches!(
                c.url(&GraphPath::new([bad, "messages"])),
                Err(GraphError::InvalidRequest(_))
            ));
        }
        let ok = c.url(&GraphPath::new(["1", "messages"])).expect("url");
        assert_eq!(ok.as_str(), "http://127.0.0.1:1/prefix/v23.0/1/messages");
    }
}
