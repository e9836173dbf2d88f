//! The records the store takes and returns. JSON columns travel as strings; the caller parses.

use serde_json::Value;
use wagate_core::webhook::Update;

/// A value kept as text in the database that names no variant (a row written by a newer version).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{value}` is not a {kind}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// A set of states kept as text in the database and typed in Rust: `as_str` for binding,
/// `TryFrom<String>` for reading (`#[sqlx(try_from = "String")]`), serialised as the text.
macro_rules! text_enum {
    ($(#[$m:meta])* $name:ident: $kind:literal { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(value: String) -> Result<Self, UnknownValue> {
                match value.as_str() {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value }),
                }
            }
        }
    };
}

/// An id kept as text, typed in Rust so that one kind of id is never passed for another. It
/// reads as `&str` (`Deref`), prints and serialises as the text, and compares with strings.
macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub String);

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

id_type! {
    /// A message's id (`msg_…`).
    MessageId
}

id_type! {
    /// An event's id (`evt_…`), the `webhook-id` of its deliveries.
    EventId
}

id_type! {
    /// An inbound media file's id (`med_…`).
    MediaId
}

id_type! {
    /// An account's id (`acc_…`).
    AccountId
}

id_type! {
    /// A hook's id (`hook_…`).
    HookId
}

id_type! {
    /// An API key's id (`key_…`).
    KeyId
}

text_enum! {
    /// How a webhook is journalled: to be processed, or kept for an account that does not exist
    /// yet (processed once it does).
    JournalState: "journal state" { Pending = "pending", Quarantined = "quarantined" }
}

text_enum! {
    /// Which way a message went.
    Direction: "message direction" { Inbound = "inbound", Outbound = "outbound" }
}

text_enum! {
    /// Where an inbound media file is: still to download, kept, or given up on.
    MediaState: "media state" { Pending = "pending", Stored = "stored", Failed = "failed" }
}

text_enum! {
    /// Where a hook delivery is: still to go out (now or at its next attempt), delivered, or
    /// failed for good (the schedule ran out; replayable).
    DeliveryState: "delivery state" { Pending = "pending", Succeeded = "succeeded", Failed = "failed" }
}

#[derive(Clone, PartialEq, sqlx::FromRow)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    pub waba_id: String,
    pub created_at: i64,
    /// Why its sending is paused (JSON), or `None`.
    pub paused: Option<String>,
    /// `config` (the configuration file has it, with its secrets) or `api`.
    pub managed_by: String,
    /// The secrets of an account managed through the API (opened; sealed in the database).
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    pub messages_per_second: Option<i64>,
    pub deleted_at: Option<i64>,
    pub updated_at: Option<i64>,
    /// The tenant that connected it ("Connect WhatsApp"), if one.
    pub tenant: Option<String>,
}

/// A "Connect WhatsApp" dialog started: who for, where the browser goes back, until when.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConnectState {
    pub id: String,
    pub tenant: String,
    pub redirect: String,
    /// A PIN to register the number with, if the start asked for it.
    pub pin: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// What taking a state found.
#[derive(Debug, Clone, PartialEq)]
pub enum TakenState {
    /// First use, in time.
    Fresh(ConnectState),
    /// Used before (a replay).
    Used(ConnectState),
    /// Past its time.
    Expired(ConnectState),
    Unknown,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("waba_id", &self.waba_id)
            .field("managed_by", &self.managed_by)
            .finish_non_exhaustive()
    }
}

/// An account made through the API.
#[derive(Debug, Clone, Default)]
pub struct NewApiAccount {
    pub name: String,
    pub waba_id: String,
    pub access_token: String,
    pub app_secret: String,
    pub verify_token: String,
    pub messages_per_second: Option<i64>,
    pub phone_numbers: Vec<PhoneNumberInfo>,
    pub tenant: Option<String>,
}

/// A change to an account made through the API; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    pub name: Option<String>,
    pub access_token: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
    /// `Some(None)` clears it (the gateway's default applies).
    pub messages_per_second: Option<Option<i64>>,
}

/// What Meta says of a phone number.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PhoneNumberInfo {
    pub phone_number_id: String,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    pub throughput: Option<String>,
    pub name_status: Option<String>,
    /// `TIER_250` … `TIER_UNLIMITED`.
    pub messaging_limit: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub name: String,
    pub waba_id: String,
    /// (phone_number_id, display_phone_number)
    pub phone_numbers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PhoneNumber {
    pub phone_number_id: String,
    pub account_id: AccountId,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub quality_rating: Option<String>,
    pub throughput: Option<String>,
    pub name_status: Option<String>,
    /// When Meta was last asked (unix ms); `None`: only configured.
    pub synced_at: Option<i64>,
    pub messaging_limit: Option<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKey {
    pub id: KeyId,
    pub name: String,
    /// `None`: the key sees every account.
    pub account_id: Option<AccountId>,
    /// Comma-separated: `send`, `read`, `admin`.
    pub scopes: String,
    pub key_hash: String,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// When it stops working (unix ms), if ever.
    pub expires_at: Option<i64>,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<i64>,
    /// The tenant it belongs to: it sees only the tenant's accounts. `None`: every account.
    pub tenant: Option<String>,
}

impl ApiKey {
    /// Whether it authenticates requests at `now`.
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

/// An administrative action, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    /// The API key's id, or `cli` for the command line.
    pub actor: String,
    /// The key's name, or the system user running the command.
    pub actor_name: Option<String>,
    /// Where the request came from (peer address, and `X-Forwarded-For` when given).
    pub remote: Option<String>,
    /// e.g. `key.created`, `hook.deleted`, `account.paused`.
    pub action: String,
    /// The id or name of what it acted on.
    pub target: Option<String>,
    pub account_id: Option<AccountId>,
    /// The tenant it was taken for, if one.
    pub tenant: Option<String>,
    /// What changed (JSON; never a secret).
    pub details: String,
}

#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub at: i64,
    pub actor: String,
    pub actor_name: Option<String>,
    pub remote: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub account_id: Option<AccountId>,
    pub tenant: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Default)]
pub struct NewApiKey {
    pub name: String,
    pub account_id: Option<AccountId>,
    pub scopes: Vec<String>,
    pub key_hash: String,
    pub prefix: String,
    pub expires_at: Option<i64>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewJournalEntry {
    pub received_at: i64,
    pub account_id: Option<String>,
    pub body: Vec<u8>,
    pub state: JournalState,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JournalEntry {
    pub id: i64,
    pub received_at: i64,
    pub account_id: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalCounts {
    pub pending: i64,
    pub processed: i64,
    pub quarantined: i64,
    pub failed: i64,
    /// Set aside: they failed to apply on their own (see `GET /v1/journal/dead`).
    pub dead: i64,
}

/// New work another gateway committed (PostgreSQL `NOTIFY`): look at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Wake {
    Journal,
    Jobs,
    Events,
    Media,
    /// This outbound message left `queued` (for `?wait=accepted` held by another gateway).
    Sent(String),
    /// An account or its phone numbers changed.
    Accounts,
}

/// What may be deleted: rows older than each time (unix ms); `None` keeps them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Retention {
    /// Journal entries processed (or refused as invalid, or quarantined) before this.
    pub journal_before: Option<i64>,
    /// Events, and hook deliveries and attempts, stored before this.
    pub events_before: Option<i64>,
    pub statuses_before: Option<i64>,
    /// Send jobs that ended (sent, failed, cancelled), queued before this.
    pub jobs_before: Option<i64>,
    /// Inbound media rows created before this.
    pub media_before: Option<i64>,
    /// Idempotency keys claimed before this.
    pub idempotency_before: Option<i64>,
}

/// What one pruning step deleted, per kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub journal: u64,
    pub events: u64,
    pub statuses: u64,
    pub jobs: u64,
    pub deliveries: u64,
    pub attempts: u64,
    pub media: u64,
    pub idempotency_keys: u64,
    /// Stored media files (by content hash) no row refers to any more: the caller deletes them.
    pub unreferenced_media: Vec<String>,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.journal
            + self.events
            + self.statuses
            + self.jobs
            + self.deliveries
            + self.attempts
            + self.media
            + self.idempotency_keys
    }

    pub fn add(&mut self, o: &Pruned) {
        self.journal += o.journal;
        self.events += o.events;
        self.statuses += o.statuses;
        self.jobs += o.jobs;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
        self.media += o.media;
        self.idempotency_keys += o.idempotency_keys;
        self.unreferenced_media.extend(o.unreferenced_media.iter().cloned());
    }
}

/// A journal entry set aside because it failed to apply on its own.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DeadEntry {
    pub id: i64,
    pub received_at: i64,
    pub account_id: Option<String>,
    pub body: Vec<u8>,
    pub error: Option<String>,
    pub processed_at: Option<i64>,
}

/// A journalled webhook after parsing: each update with the account it belongs to.
#[derive(Debug, Clone)]
pub struct AppliedWebhook {
    pub journal_id: i64,
    pub received_at: i64,
    pub updates: Vec<(Option<String>, Update)>,
    /// Set when the body could not be parsed at all: the entry is marked failed with this reason
    /// (its `webhook.invalid` event is among the updates).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub new_messages: u64,
    pub duplicate_messages: u64,
    /// Media rows created (downloads to start).
    pub new_media: u64,
    pub statuses: u64,
    /// Event types written, one entry per event.
    pub events: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Message {
    pub id: MessageId,
    pub account_id: AccountId,
    pub phone_number_id: String,
    #[sqlx(try_from = "String")]
    pub direction: Direction,
    pub wamid: Option<String>,
    /// The contact: recipient of an outbound message, sender of an inbound one.
    pub wa_id: Option<String>,
    pub message_type: String,
    #[sqlx(try_from = "String")]
    pub status: wagate_core::status::MessageStatus,
    /// Outbound: the Meta message object sent. Inbound: the normalised payload.
    pub content: String,
    pub error: Option<String>,
    pub pricing: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewOutboundMessage {
    pub id: String,
    pub account_id: String,
    pub phone_number_id: String,
    pub wa_id: String,
    pub message_type: String,
    pub content: Value,
    pub now_ms: i64,
    /// When the send is due (unix ms): `now_ms`, or later for a scheduled message.
    pub send_at: i64,
    /// 0 for interactive sends, 1 for bulk ones (batches), which wait behind them.
    pub priority: i64,
}

/// An `Idempotency-Key` and a hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    pub request_hash: String,
}

/// What an idempotent enqueue did.
#[derive(Debug, Clone)]
pub enum Enqueued {
    /// Queued now.
    Created(Message),
    /// The key was used before with the same request: its message, nothing queued.
    Replayed(Message),
    /// The key was used before with another request (that message's id); nothing queued.
    Conflict { message_id: String },
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StatusEntry {
    #[sqlx(try_from = "String")]
    pub status: wagate_core::status::MessageStatus,
    pub occurred_at: Option<i64>,
    pub recorded_at: i64,
    pub payload: String,
}

/// Which accounts a read covers: one, a tenant's, or (both `None`) every account.
#[derive(Debug, Clone, Default)]
pub struct AccountScope {
    pub account_id: Option<String>,
    /// Only these accounts (a tenant's); an empty list matches nothing.
    pub account_ids: Option<Vec<String>>,
}

/// A count of one kind of activity in one hour.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ActivityCount {
    /// Unix ms / 3,600,000.
    pub hour: i64,
    /// `received`, `sent`, or a status Meta reported (`delivered`, `read`, `failed`, …).
    pub kind: String,
    pub count: i64,
}

/// A console sign-in.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsoleSession {
    /// The SHA-256 of the session's id (the cookie holds the id).
    pub id_hash: String,
    /// What it signed in with: the SHA-256 of an API key, or `jwt:` and the identity
    /// provider's token (short-lived; the session ends with it).
    pub key_hash: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Which contacts a list asks for, most recently active first.
#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub account_id: Option<String>,
    /// Only these accounts (a tenant's); an empty list matches nothing.
    pub account_ids: Option<Vec<String>>,
    /// A part of the name or of the number.
    pub search: Option<String>,
    /// Only contacts active before this (the cursor of the previous page: `updated_at`).
    pub before_updated_at: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub account_id: Option<String>,
    /// Only these accounts (a tenant's); an empty list matches nothing.
    pub account_ids: Option<Vec<String>>,
    pub direction: Option<String>,
    pub status: Option<String>,
    pub wa_id: Option<String>,
    /// Only messages with an id below this one (the cursor of the previous page).
    pub before_id: Option<String>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SendJob {
    pub id: i64,
    pub message_id: MessageId,
    pub account_id: AccountId,
    pub phone_number_id: String,
    pub attempts: i64,
}

/// Jobs a claim leaves alone: those of paused accounts, and of phone numbers that already have
/// their share of sends in flight (so that one number's backlog cannot take every slot).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClaimFilter<'a> {
    pub paused_accounts: &'a [String],
    pub full_numbers: &'a [String],
}

/// What becomes of a send in doubt that no status webhook resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoubtAction {
    /// Send it again (the user may get it twice if Meta had taken the first call).
    Retry,
    /// Mark it `unknown` and emit `message.unknown`; a person decides.
    Unknown,
}

/// A send in doubt, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct InDoubt {
    pub message_id: MessageId,
    pub outcome: InDoubtOutcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum InDoubtOutcome {
    /// Meta's status webhook named it: it went out once, with this wamid.
    Accepted {
        wamid: String,
    },
    Requeued,
    Unknown,
    /// Its call to Meta had not started (its lease ran out first): queued again at once.
    NeverCalled,
}

/// How a send attempt ended.
#[derive(Debug, Clone)]
pub enum SendOutcome {
    /// Meta took it and answered with a wamid.
    Accepted { wamid: String, wa_id: Option<String> },
    /// It failed for good; the message becomes `failed` and a `message.failed` event is written.
    Failed { error: Value },
    /// Try again at `run_at`.
    Retry { run_at: i64, error: Value },
    /// No answer, and the call may have reached Meta (a timeout): the job stays in doubt and is
    /// resolved from Meta's status webhooks, or after `sender.in_doubt_seconds`.
    InDoubt { error: Value },
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Contact {
    pub account_id: AccountId,
    pub phone_number_id: String,
    pub wa_id: String,
    pub name: Option<String>,
    pub last_inbound_at: Option<i64>,
    pub window_expires_at: Option<i64>,
    pub updated_at: i64,
    /// When a message to them was last made.
    pub last_outbound_at: Option<i64>,
    /// Messages received since the conversation was last marked read.
    pub unread: i64,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Event {
    pub seq: i64,
    pub id: EventId,
    pub account_id: Option<AccountId>,
    pub event_type: String,
    pub occurred_at: i64,
    pub created_at: i64,
    pub payload: String,
    pub raw: String,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub account_id: Option<String>,
    /// Only these accounts (a tenant's); an empty list matches nothing.
    pub account_ids: Option<Vec<String>>,
    pub event_types: Vec<String>,
    /// About this contact (wa_id or user id).
    pub contact: Option<String>,
    /// When it happened (Meta's time where Meta gave one).
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// When the gateway stored it (replay: what arrived during an outage, even if Meta's
    /// delivery was late).
    pub stored_since_ms: Option<i64>,
    pub stored_until_ms: Option<i64>,
    /// Only events after this sequence number (the cursor of the previous page).
    pub after_seq: Option<i64>,
    /// Only events before this sequence number.
    pub before_seq: Option<i64>,
    /// The newest first (else the oldest first).
    pub newest_first: bool,
    pub limit: i64,
}

/// A message template as Meta knows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Template {
    pub account_id: String,
    pub name: String,
    pub language: String,
    pub template_id: Option<String>,
    /// APPROVED, PENDING, REJECTED, PAUSED, DISABLED, …
    pub status: String,
    pub category: Option<String>,
    pub parameter_format: Option<String>,
    /// Meta's components array, as JSON.
    pub components: Option<String>,
    pub quality_score: Option<String>,
    pub updated_at: i64,
    /// Why Meta rejected or paused it (`INVALID_FORMAT`, `TAG_CONTENT_MISMATCH`, …).
    pub rejected_reason: Option<String>,
}

/// Media a user sent, and where its download stands.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Media {
    pub id: MediaId,
    pub account_id: AccountId,
    pub message_id: MessageId,
    pub meta_media_id: String,
    pub mime_type: Option<String>,
    /// Meta's SHA-256 of the file (base64).
    pub sha256: Option<String>,
    #[sqlx(try_from = "String")]
    pub state: MediaState,
    pub attempts: i64,
    /// Hex SHA-256 of the stored bytes: their name in the media directory.
    pub content_hash: Option<String>,
    pub size: Option<i64>,
    pub error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// How a media download attempt ended.
#[derive(Debug, Clone)]
pub enum MediaOutcome {
    Stored { content_hash: String, size: i64 },
    Retry { at: i64, error: String },
    Failed { error: String },
}

/// A day's usage count (`day`: days since the unix epoch, UTC).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UsageCount {
    pub day: i64,
    pub account_id: String,
    pub phone_number_id: String,
    pub category: String,
    /// The recipient's country (alpha-2); empty when unknown.
    pub market: String,
    pub pricing_type: String,
    pub billable: bool,
    pub messages: i64,
}

/// A rate card as stored: its rows as JSON (`[{market, category, tier_from, tier_to, rate}]`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RateCard {
    pub id: i64,
    pub currency: String,
    /// The first day it prices (days since the unix epoch).
    pub effective: i64,
    pub rates: String,
    pub created_at: i64,
}

/// A monthly budget.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Budget {
    /// `account:<id>` or `tenant:<name>`.
    pub scope: String,
    /// A decimal amount, in `currency`.
    pub amount: String,
    pub currency: String,
    pub hard_stop: bool,
    /// The alerts given, `2026-11:80,2026-11:100,`.
    pub alerted: String,
    pub updated_at: i64,
}

/// What Meta's pricing analytics said of a day.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MetaUsage {
    pub day: i64,
    pub account_id: String,
    pub market: String,
    pub category: String,
    pub pricing_type: String,
    pub volume: i64,
    /// A decimal string in `currency`.
    pub cost: String,
    pub currency: String,
    pub fetched_at: i64,
}
