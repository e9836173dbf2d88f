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
    /// No answer: connection refused, timeout, reset.
    #[error("could not reach the Graph API: {0}")]
    Transport(String),
    /// An answer we could not read.
    #[error("unexpected answer from the Graph API (HTTP {status}): {body}")]
    Unexpected { status: u16, body: String },
}

impl GraphError {
    pub fn retry_class(&self) -> RetryClass {
        match self {
            GraphError::Meta { error, .. } => error.class(),
            GraphError::Transport(_) => RetryClass::Retry,
            GraphError::Unexpected { status, .. } if *status >= 500 || *status == 429 => RetryClass::Retry,
            GraphError::Unexpected { .. } => RetryClass::Fix,
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
            GraphError::Unexpected { status, .. } => format!("http_{status}"),
        }
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base_url: String,
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
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            version: version.to_string(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}/{}", self.base_url, self.version, path.trim_start_matches('/'))
    }

    /// `POST /{phone_number_id}/messages` with a Meta message object.
    pub async fn send_message(
        &self,
        token: &str,
        phone_number_id: &str,
        body: &Value,
    ) -> Result<SendResponse, GraphError> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("{phone_number_id}/messages"),
                token,
                Some(body),
                "messages",
            )
            .await?;
        serde_json::from_value(v.clone()).map_err(|_| GraphError::Unexpected {
            status: 200,
            body: v.to_string(),
        })
    }

    /// `POST /{path}` with a JSON body (mark-as-read, typing indicator, management calls).
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Result<Value, GraphError> {
        self.call(reqwest::Method::POST, path, token, Some(body), "post").await
    }

    /// `DELETE /{path}`.
    pub async fn delete(&self, token: &str, path: &str) -> Result<Value, GraphError> {
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
        let started = Instant::now();
        let resp = self
            .http
            .post(self.url(&format!("{phone_number_id}/media")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await;
        let result = Self::read(resp).await;
        metrics::histogram!("wagate_graph_request_duration_seconds", "endpoint" => "media")
            .record(started.elapsed().as_secs_f64());
        let v = result?;
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

    /// `GET /{path}`.
    pub async fn get(&self, token: &str, path: &str) -> Result<Value, GraphError> {
        self.call(reqwest::Method::GET, path, token, None, "get").await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        endpoint: &'static str,
    ) -> Result<Value, GraphError> {
        let started = Instant::now();
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
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
        let resp = resp.map_err(|e| GraphError::Transport(e.to_string()))?;
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
