//! The simulator's world: its configuration, template catalog, what it was sent, injected faults
//! and the users' customer-service windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// What the simulator pretends to be. Defaults match the shared fixtures' world.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub access_token: String,
    pub app_secret: String,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub webhook_url: Option<String>,
    /// Delay before each status webhook: sent, delivered, read.
    pub status_delays: [Duration; 3],
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_token: "sim-access-token".into(),
            app_secret: "sim-app-secret".into(),
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            webhook_url: None,
            status_delays: [
                Duration::from_millis(50),
                Duration::from_millis(100),
                Duration::from_millis(100),
            ],
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SimTemplate {
    pub id: String,
    pub name: String,
    pub language: String,
    pub status: String,
    pub category: String,
    pub parameter_format: String,
    pub components: Value,
}

impl SimTemplate {
    /// How many `{{…}}` placeholders the component of this type (`BODY`, `HEADER`) has.
    pub fn placeholders(&self, component: &str) -> usize {
        self.component(component)
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str)
            .map(|t| t.matches("{{").count())
            .unwrap_or(0)
    }

    pub fn component(&self, kind: &str) -> Option<&Value> {
        self.components
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
    }

    /// The header's format (`TEXT`, `IMAGE`, …) when the template has a header.
    pub fn header_format(&self) -> Option<&str> {
        self.component("HEADER")?.get("format")?.as_str()
    }
}

fn seeded_templates() -> Vec<SimTemplate> {
    let t = |id: &str, name: &str, language: &str, category: &str, components: Value| SimTemplate {
        id: id.into(),
        name: name.into(),
        language: language.into(),
        status: "APPROVED".into(),
        category: category.into(),
        parameter_format: "POSITIONAL".into(),
        components,
    };
    vec![
        t(
            "1192339204654487",
            "hello_world",
            "en_US",
            "UTILITY",
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hello World"},
                {"type": "BODY", "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us."},
                {"type": "FOOTER", "text": "WhatsApp Business Platform sample message"}
            ]),
        ),
        t(
            "1407680676729941",
            "po_notification",
            "es",
            "UTILITY",
            json!([
                {"type": "BODY", "text": "Hola, {{1}} ha emitido la orden de compra {{2}} por un total de {{3}}.",
                 "example": {"body_text": [["Acme S.A.", "PO-1042", "$1.250,00"]]}}
            ]),
        ),
        t(
            "954638012257287",
            "order_shipped_image",
            "en_US",
            "UTILITY",
            json!([
                {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2UvanBlZw==:ARb"]}},
                {"type": "BODY", "text": "Good news! Your order {{1}} has shipped and arrives on {{2}}.",
                 "example": {"body_text": [["#1042", "Friday"]]}}
            ]),
        ),
    ]
}

/// A send the simulator received.
#[derive(Debug, Clone, Serialize)]
pub struct SentRecord {
    pub wamid: String,
    pub phone_number_id: String,
    pub to: String,
    pub body: Value,
    pub received_at_ms: i64,
}

/// Makes the next `count` matching calls fail with a Meta error.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// Meta error code to answer with (e.g. 131056).
    pub code: i64,
    /// HTTP status of the answer (default 400).
    #[serde(default = "default_fault_status")]
    pub http_status: u16,
    /// How many calls fail (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Only calls whose path contains this (e.g. `/messages`).
    #[serde(default)]
    pub path_contains: Option<String>,
    /// Only sends of this message type.
    #[serde(default)]
    pub message_type: Option<String>,
    /// Only sends to this recipient.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

fn default_fault_status() -> u16 {
    400
}

fn one() -> u32 {
    1
}

pub struct SimState {
    pub config: SimConfig,
    pub http: reqwest::Client,
    inner: Mutex<Inner>,
}

struct Inner {
    webhook_url: Option<String>,
    status_delays: [Duration; 3],
    /// The most templates one `message_templates` page holds.
    template_page_size: usize,
    templates: Vec<SimTemplate>,
    sent: Vec<SentRecord>,
    /// Mark-as-read (and typing indicator) bodies received.
    reads: Vec<Value>,
    /// Media the simulator hosts: id → (bytes, mime type).
    media: HashMap<String, (Vec<u8>, String)>,
    faults: Vec<Fault>,
    /// wa_id → unix ms of the user's last message (their customer-service window).
    last_inbound: HashMap<String, i64>,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let inner = Inner {
            webhook_url: config.webhook_url.clone(),
            status_delays: config.status_delays,
            template_page_size: 100,
            templates: seeded_templates(),
            sent: Vec::new(),
            reads: Vec::new(),
            media: HashMap::new(),
            faults: Vec::new(),
            last_inbound: HashMap::new(),
        };
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.lock().webhook_url = url;
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.lock().webhook_url.clone()
    }

    pub fn status_delays(&self) -> [Duration; 3] {
        self.lock().status_delays
    }

    pub fn set_status_delays(&self, d: [Duration; 3]) {
        self.lock().status_delays = d;
    }

    pub fn template(&self, name: &str, language: &str) -> Option<SimTemplate> {
        self.lock()
            .templates
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned()
    }

    pub fn template_page_size(&self) -> usize {
        self.lock().template_page_size
    }

    pub fn set_template_page_size(&self, n: usize) {
        self.lock().template_page_size = n.max(1);
    }

    pub fn templates(&self) -> Vec<SimTemplate> {
        self.lock().templates.clone()
    }

    /// Adds a template; `false` when that name and language exist already.
    pub fn add_template(&self, t: SimTemplate) -> bool {
        let mut inner = self.lock();
        if inner
            .templates
            .iter()
            .any(|x| x.name == t.name && x.language == t.language)
        {
            return false;
        }
        inner.templates.push(t);
        true
    }

    /// Sets the status of a template's languages (all, or one); returns those changed.
    pub fn set_status_by_name(&self, name: &str, language: Option<&str>, status: &str) -> Vec<SimTemplate> {
        let mut inner = self.lock();
        let mut changed = Vec::new();
        for t in inner
            .templates
            .iter_mut()
            .filter(|t| t.name == name && language.is_none_or(|l| l == t.language))
        {
            t.status = status.to_string();
            changed.push(t.clone());
        }
        changed
    }

    pub fn set_template_status(&self, id: &str, status: &str) {
        if let Some(t) = self.lock().templates.iter_mut().find(|t| t.id == id) {
            t.status = status.to_string();
        }
    }

    /// Removes every language of a template; how many were removed.
    pub fn remove_templates(&self, name: &str) -> usize {
        let mut inner = self.lock();
        let before = inner.templates.len();
        inner.templates.retain(|t| t.name != name);
        before - inner.templates.len()
    }

    pub fn record_sent(&self, r: SentRecord) {
        self.lock().sent.push(r);
    }

    pub fn sent(&self) -> Vec<SentRecord> {
        self.lock().sent.clone()
    }

    /// Hosts bytes as media; returns the media id.
    pub fn put_media(&self, bytes: Vec<u8>, mime_type: &str) -> String {
        let id = format!("{}", 1_000_000_000_000_000u64 + rand::random::<u32>() as u64);
        self.lock().media.insert(id.clone(), (bytes, mime_type.to_string()));
        id
    }

    pub fn remove_media(&self, id: &str) -> bool {
        self.lock().media.remove(id).is_some()
    }

    pub fn media(&self, id: &str) -> Option<(Vec<u8>, String)> {
        self.lock().media.get(id).cloned()
    }

    pub fn record_read(&self, body: Value) {
        self.lock().reads.push(body);
    }

    pub fn reads(&self) -> Vec<Value> {
        self.lock().reads.clone()
    }

    pub fn add_fault(&self, f: Fault) {
        self.lock().faults.push(f);
    }

    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.clone()
    }

    /// Takes one use of the first fault matching this call, if any.
    pub fn take_fault(&self, path: &str, message_type: Option<&str>, to: Option<&str>) -> Option<Fault> {
        let mut inner = self.lock();
        let idx = inner.faults.iter().position(|f| {
            f.count > 0
                && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
                && f.message_type.as_deref().is_none_or(|t| Some(t) == message_type)
                && f.to.as_deref().is_none_or(|t| Some(t) == to)
        })?;
        let fault = inner.faults[idx].clone();
        inner.faults[idx].count -= 1;
        if inner.faults[idx].count == 0 {
            inner.faults.remove(idx);
        }
        Some(fault)
    }

    pub fn note_inbound(&self, wa_id: &str, at_ms: i64) {
        self.lock().last_inbound.insert(wa_id.to_string(), at_ms);
    }

    pub fn window_open(&self, wa_id: &str, now_ms: i64) -> bool {
        self.lock()
            .last_inbound
            .get(wa_id)
            .is_some_and(|t| now_ms - t < wagate_core::window::WINDOW_MS)
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
