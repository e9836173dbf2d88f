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
    /// The Meta app: its id and secret (the OAuth dialog's `client_id`, the code exchange's
    /// `client_secret`, and the key webhooks are signed with).
    pub app_id: String,
    pub app_secret: String,
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    /// The business's verified display name.
    pub verified_name: String,
    pub webhook_url: Option<String>,
    /// Delay before each status webhook: sent, delivered, read.
    pub status_delays: [Duration; 3],
    /// The Graph API version the app's webhooks follow (`v23.0`): up to v23 statuses carry
    /// `conversation`, from v24 they do not.
    pub webhook_version: String,
    /// Multiplies Meta's webhook retry schedule (7 days); `0.001` turns days into minutes for tests.
    pub webhook_retry_scale: f64,
    /// A second business, the one "Connect WhatsApp" signs up: the OAuth dialog shares its WABA
    /// (the first is usually a configured account already). `None`: the dialog shares the first.
    pub connectable: Option<Business>,
    /// Whether the app starts subscribed to the simulator's own WABA, as if that was done in
    /// Meta's dashboard (true by default; the sandbox starts without and subscribes as Connect
    /// does). Like Meta, the simulator sends a WABA's webhooks only while the app is subscribed to
    /// it (`POST /{waba}/subscribed_apps`); account updates go to the app regardless.
    pub subscribed_at_start: bool,
}

/// A business at Meta: its WABA and its one phone number.
#[derive(Debug, Clone, PartialEq)]
pub struct Business {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
    pub verified_name: String,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            access_token: "sim-access-token".into(),
            app_id: "236484624622562".into(),
            app_secret: "sim-app-secret".into(),
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            verified_name: "Lucky Shrub".into(),
            webhook_url: None,
            status_delays: [
                Duration::from_millis(50),
                Duration::from_millis(100),
                Duration::from_millis(100),
            ],
            webhook_version: "v23.0".into(),
            webhook_retry_scale: 1.0,
            connectable: Some(Business {
                waba_id: "204060801020304".into(),
                phone_number_id: "305070901030507".into(),
                display_phone_number: "15550783882".into(),
                verified_name: "Lucky Shrub Two".into(),
            }),
            subscribed_at_start: true,
        }
    }
}

/// What a business granted the app in the OAuth dialog.
#[derive(Debug, Clone, Default)]
pub struct Grant {
    pub scopes: Vec<String>,
    /// The WABAs shared with the app (`granular_scopes[].target_ids`).
    pub wabas: Vec<String>,
    pub redirect_uri: String,
    pub at_ms: i64,
    pub expires_at_ms: i64,
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; n];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
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

/// A simulated WhatsApp user. `wa_id` is absent for a user known only by username, as Meta
/// now allows.
#[derive(Debug, Clone, Serialize)]
pub struct SimUser {
    pub wa_id: Option<String>,
    /// Business-scoped user id (`US.13491208655302741918`), stable for this business.
    pub user_id: String,
    /// Parent business-scoped user id (`US.ENT.…`), sent when parent ids are enabled.
    pub parent_user_id: String,
    pub username: Option<String>,
    pub name: String,
}

/// A business-scoped id: `CC.` and digits derived from the business and the user, so a user
/// keeps one id across restarts of the simulator, as with Meta.
fn scoped_id(country: &str, business: &str, identity: &str, parent: bool) -> String {
    let key = if parent { "parent" } else { "user" };
    let mac = wagate_core::signature::sign_hub(business, format!("{key}:{identity}").as_bytes());
    let digits: String = mac
        .trim_start_matches("sha256=")
        .bytes()
        .map(|b| char::from(b'0' + b % 10))
        .take(20)
        .collect();
    if parent {
        format!("{country}.ENT.{digits}")
    } else {
        format!("{country}.{digits}")
    }
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

/// Makes the next `count` matching calls fail with a Meta error, answer late, or both.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    /// Meta error code to answer with (e.g. 131056). Without it the call succeeds, after
    /// `delay_ms`: a send is accepted (recorded, statuses follow) but answered late.
    #[serde(default)]
    pub code: Option<i64>,
    /// Answer only after this many milliseconds.
    #[serde(default)]
    pub delay_ms: Option<u64>,
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
    /// The stand-in OpenID Connect issuer (`/_sim/oidc`).
    pub issuer: crate::idp::Issuer,
    /// Phone number management: settings, codes, PINs, blocks, QR codes, commerce.
    pub numbers: crate::numbers::Numbers,
    inner: Mutex<Inner>,
}

struct Inner {
    webhook_url: Option<String>,
    status_delays: [Duration; 3],
    /// The most templates one `message_templates` page holds.
    template_page_size: usize,
    /// The token Meta accepts now, once rotated (`POST /_sim/settings {"access_token": …}`).
    access_token: Option<String>,
    /// What the OAuth dialog granted: by code (single use, for 30 s), then by the token it was
    /// exchanged for.
    oauth_codes: HashMap<String, Grant>,
    issued_tokens: HashMap<String, Grant>,
    /// WABAs the app is subscribed to (`POST /{waba}/subscribed_apps`).
    subscribed: std::collections::HashSet<String>,
    /// Webhooks not sent because the app was not subscribed to their WABA.
    unsubscribed_drops: u64,
    /// Phone numbers registered (`POST /{phone}/register`) with their PIN.
    registered: HashMap<String, String>,
    templates: Vec<SimTemplate>,
    sent: Vec<SentRecord>,
    /// Mark-as-read (and typing indicator) bodies received.
    reads: Vec<Value>,
    /// Media the simulator hosts: id → (bytes, mime type).
    media: HashMap<String, (Vec<u8>, String)>,
    faults: Vec<Fault>,
    /// wa_id → unix ms of the user's last message (their customer-service window).
    last_inbound: HashMap<String, i64>,
    /// Simulated users, in creation order.
    users: Vec<SimUser>,
    /// Wamids of the messages users sent (what mark-as-read may name).
    inbound_wamids: std::collections::HashSet<String>,
    /// Whether webhooks carry parent business-scoped ids (a business setting at Meta).
    parent_user_ids: bool,
    webhook_version: String,
    webhook_retry_scale: f64,
    /// The simulator's own address (`http://127.0.0.1:8090`), for media URLs in webhooks.
    base_url: Option<String>,
    /// The business profile of the phone number.
    business_profile: serde_json::Map<String, Value>,
    /// Delivered messages as Meta prices them (`pricing_analytics`), and the rates it uses.
    delivered: Vec<crate::pricing::PricedDelivery>,
    pricing_rates: std::collections::BTreeMap<String, f64>,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let inner = Inner {
            webhook_url: config.webhook_url.clone(),
            status_delays: config.status_delays,
            template_page_size: 100,
            access_token: None,
            oauth_codes: HashMap::new(),
            issued_tokens: HashMap::new(),
            subscribed: config
                .subscribed_at_start
                .then(|| config.waba_id.clone())
                .into_iter()
                .collect(),
            unsubscribed_drops: 0,
            registered: HashMap::new(),
            templates: seeded_templates(),
            sent: Vec::new(),
            reads: Vec::new(),
            media: HashMap::new(),
            faults: Vec::new(),
            last_inbound: HashMap::new(),
            users: Vec::new(),
            inbound_wamids: Default::default(),
            parent_user_ids: false,
            webhook_version: config.webhook_version.clone(),
            webhook_retry_scale: config.webhook_retry_scale,
            base_url: None,
            business_profile: json!({
                "about": "Plants delivered to your door.",
                "address": "1 Hacker Way, Menlo Park, CA 94025",
                "description": "A simulated business.",
                "email": "hello@example.com",
                "messaging_product": "whatsapp",
                "profile_picture_url": "",
                "websites": ["https://www.example.com/"],
                "vertical": "RETAIL",
            })
            .as_object()
            .cloned()
            .unwrap_or_default(),
            delivered: Vec::new(),
            pricing_rates: crate::pricing::default_rates(),
        };
        Self {
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            issuer: crate::idp::Issuer::new(),
            numbers: Default::default(),
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps what a consent granted, under a new single-use code.
    pub fn grant_code(&self, grant: Grant) -> String {
        let code = format!("AQ{}", crate::state::random_hex(24));
        self.lock().oauth_codes.insert(code.clone(), grant);
        code
    }

    /// Takes a code (once); `None` when unknown, used, or older than 30 s.
    pub fn take_code(&self, code: &str, now_ms: i64) -> Option<Grant> {
        self.lock()
            .oauth_codes
            .remove(code)
            .filter(|g| now_ms - g.at_ms <= 30_000)
    }

    /// A token for what a code granted, valid for 60 days.
    pub fn issue_token(&self, mut grant: Grant, now_ms: i64) -> (String, i64) {
        let token = format!("EAAsim{}", crate::state::random_hex(32));
        grant.at_ms = now_ms;
        grant.expires_at_ms = now_ms + 60 * 86_400_000;
        let expires = grant.expires_at_ms;
        self.lock().issued_tokens.insert(token.clone(), grant);
        (token, expires)
    }

    /// What an issued token may do; `None` for a token the dialog did not issue.
    pub fn issued(&self, token: &str) -> Option<Grant> {
        self.lock().issued_tokens.get(token).cloned()
    }

    /// Makes an issued token expire now (`POST /_sim/tokens/{token}/expire`).
    pub fn expire_token(&self, token: &str, now_ms: i64) -> bool {
        match self.lock().issued_tokens.get_mut(token) {
            Some(g) => {
                g.expires_at_ms = now_ms;
                true
            }
            None => false,
        }
    }

    pub fn subscribe(&self, waba: &str, on: bool) {
        let mut inner = self.lock();
        if on {
            inner.subscribed.insert(waba.to_string());
        } else {
            inner.subscribed.remove(waba);
        }
    }

    pub fn is_subscribed(&self, waba: &str) -> bool {
        self.lock().subscribed.contains(waba)
    }

    /// Counts a webhook not sent because the app is not subscribed to its WABA.
    pub fn note_unsubscribed_drop(&self) {
        self.lock().unsubscribed_drops += 1;
    }

    pub fn unsubscribed_drops(&self) -> u64 {
        self.lock().unsubscribed_drops
    }

    pub fn register(&self, phone: &str, pin: &str) {
        self.lock().registered.insert(phone.to_string(), pin.to_string());
    }

    pub fn registered_pin(&self, phone: &str) -> Option<String> {
        self.lock().registered.get(phone).cloned()
    }

    /// The configured business.
    pub fn primary(&self) -> Business {
        let c = &self.config;
        Business {
            waba_id: c.waba_id.clone(),
            phone_number_id: c.phone_number_id.clone(),
            display_phone_number: c.display_phone_number.clone(),
            verified_name: c.verified_name.clone(),
        }
    }

    /// Every business: the configured one, then the connectable one.
    pub fn businesses(&self) -> Vec<Business> {
        std::iter::once(self.primary())
            .chain(self.config.connectable.clone())
            .collect()
    }

    pub fn business_by_phone(&self, phone_number_id: &str) -> Option<Business> {
        self.businesses()
            .into_iter()
            .find(|b| b.phone_number_id == phone_number_id)
    }

    pub fn business_by_waba(&self, waba_id: &str) -> Option<Business> {
        self.businesses().into_iter().find(|b| b.waba_id == waba_id)
    }

    pub fn set_webhook_url(&self, url: Option<String>) {
        self.lock().webhook_url = url;
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.lock().webhook_url.clone()
    }

    /// Records a delivered message as Meta prices it.
    pub fn record_delivery(&self, d: crate::pricing::PricedDelivery) {
        self.lock().delivered.push(d);
    }

    /// A WABA's `pricing_analytics`, if `fields` asks for it.
    pub fn pricing_analytics(&self, fields: &str, waba_id: &str) -> Option<Value> {
        let inner = self.lock();
        crate::pricing::analytics(fields, waba_id, &inner.delivered, &inner.pricing_rates)
    }

    pub fn set_pricing_rates(&self, rates: std::collections::BTreeMap<String, f64>) {
        self.lock().pricing_rates.extend(rates);
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

    /// The access token Graph accepts.
    pub fn access_token(&self) -> String {
        self.lock()
            .access_token
            .clone()
            .unwrap_or_else(|| self.config.access_token.clone())
    }

    /// The business generated a new token: the old one now gets 190.
    pub fn set_access_token(&self, token: String) {
        self.lock().access_token = Some(token);
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

    pub fn sent_count(&self) -> usize {
        self.lock().sent.len()
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

    /// The user wrote: their customer-service window opens, under each of their ids.
    pub fn note_inbound(&self, user: &SimUser, at_ms: i64) {
        let mut inner = self.lock();
        inner.last_inbound.insert(user.user_id.clone(), at_ms);
        if let Some(w) = &user.wa_id {
            inner.last_inbound.insert(w.clone(), at_ms);
        }
    }

    /// Whether the window of the user with this wa_id or user id is open.
    pub fn window_open(&self, key: &str, now_ms: i64) -> bool {
        self.lock()
            .last_inbound
            .get(key)
            .is_some_and(|t| now_ms - t < wagate_core::window::WINDOW_MS)
    }

    /// The user with this wa_id, user id or username (`@name` or `name`).
    pub fn find_user(&self, key: &str) -> Option<SimUser> {
        let bare = key.strip_prefix('@').unwrap_or(key);
        self.lock()
            .users
            .iter()
            .find(|u| {
                u.wa_id.as_deref() == Some(key)
                    || u.user_id == key
                    || u.parent_user_id == key
                    || u.username.as_deref() == Some(bare)
            })
            .cloned()
    }

    /// Creates a user; `Err` when the wa_id or username is taken.
    pub fn create_user(
        &self,
        wa_id: Option<String>,
        username: Option<String>,
        name: Option<String>,
        country: Option<String>,
    ) -> Result<SimUser, String> {
        let country = country
            .map(|c| c.to_ascii_uppercase())
            .or_else(|| wa_id.as_deref().and_then(wagate_core::phone::region_of))
            .unwrap_or_else(|| "US".into());
        let identity = wa_id
            .clone()
            .or_else(|| username.as_ref().map(|u| format!("@{u}")))
            .ok_or("a user needs a wa_id or a username")?;
        let business = self.config.waba_id.clone();
        let user = SimUser {
            user_id: scoped_id(&country, &business, &identity, false),
            parent_user_id: scoped_id(&country, &business, &identity, true),
            name: name.unwrap_or_else(|| "Sim User".into()),
            wa_id,
            username,
        };
        let mut inner = self.lock();
        if let Some(taken) = inner.users.iter().find(|u| {
            (user.wa_id.is_some() && u.wa_id == user.wa_id) || (user.username.is_some() && u.username == user.username)
        }) {
            return Err(format!(
                "a user with this wa_id or username exists already: {}",
                taken.user_id
            ));
        }
        inner.users.push(user.clone());
        Ok(user)
    }

    /// The user with this wa_id, created on first use (as every phone number is a user).
    pub fn user_for_wa_id(&self, wa_id: &str) -> SimUser {
        if let Some(u) = self.find_user(wa_id) {
            return u;
        }
        self.create_user(Some(wa_id.to_string()), None, None, None)
            .ok()
            .or_else(|| self.find_user(wa_id))
            .unwrap_or_else(|| SimUser {
                wa_id: Some(wa_id.to_string()),
                user_id: scoped_id("US", &self.config.waba_id, wa_id, false),
                parent_user_id: scoped_id("US", &self.config.waba_id, wa_id, true),
                username: None,
                name: "Sim User".into(),
            })
    }

    pub fn set_profile_name(&self, user_id: &str, name: &str) {
        if let Some(u) = self.lock().users.iter_mut().find(|u| u.user_id == user_id) {
            u.name = name.to_string();
        }
    }

    pub fn users(&self) -> Vec<SimUser> {
        self.lock().users.clone()
    }

    pub fn note_inbound_wamid(&self, wamid: &str) {
        self.lock().inbound_wamids.insert(wamid.to_string());
    }

    pub fn knows_inbound_wamid(&self, wamid: &str) -> bool {
        self.lock().inbound_wamids.contains(wamid)
    }

    pub fn parent_user_ids(&self) -> bool {
        self.lock().parent_user_ids
    }

    pub fn set_parent_user_ids(&self, on: bool) {
        self.lock().parent_user_ids = on;
    }

    pub fn webhook_version(&self) -> String {
        self.lock().webhook_version.clone()
    }

    pub fn set_webhook_version(&self, v: String) {
        self.lock().webhook_version = v;
    }

    pub fn webhook_retry_scale(&self) -> f64 {
        self.lock().webhook_retry_scale
    }

    pub fn set_webhook_retry_scale(&self, scale: f64) {
        self.lock().webhook_retry_scale = scale;
    }

    pub fn base_url(&self) -> Option<String> {
        self.lock().base_url.clone()
    }

    pub fn set_base_url(&self, url: String) {
        self.lock().base_url = Some(url);
    }

    pub fn business_profile(&self) -> serde_json::Map<String, Value> {
        self.lock().business_profile.clone()
    }

    pub fn update_business_profile(&self, fields: serde_json::Map<String, Value>) {
        let mut inner = self.lock();
        for (k, v) in fields {
            inner.business_profile.insert(k, v);
        }
    }

    pub fn template_by_id(&self, id: &str) -> Option<SimTemplate> {
        self.lock().templates.iter().find(|t| t.id == id).cloned()
    }
}

/// The major version number of `v23.0` (23); unknown forms count as the newest.
pub fn major_version(version: &str) -> u32 {
    version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(u32::MAX)
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
