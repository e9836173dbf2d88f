//! Meta's Graph API shapes the gateway reads and writes, and the catalogue of Meta's error codes:
//! what each means for the user (a hint) and whether a retry can help.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"error": {...}}` as Graph answers a failed call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GraphErrorBody {
    pub error: MetaError,
}

/// Meta's error object (synchronous Graph error, or an entry of a webhook's `errors[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetaError {
    #[serde(default)]
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ErrorData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl MetaError {
    /// A Graph error with Meta's message format `(#code) title`.
    pub fn new(code: i64, title: &str, details: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(format!("(#{code}) {title}")),
            kind: Some("OAuthException".into()),
            error_data: Some(ErrorData {
                messaging_product: Some("whatsapp".into()),
                details: Some(details.into()),
            }),
            fbtrace_id: Some(crate::ids::secret("A", 11)),
            ..Default::default()
        }
    }

    pub fn details(&self) -> Option<&str> {
        self.error_data.as_ref().and_then(|d| d.details.as_deref())
    }

    /// The best one-line description Meta gave.
    pub fn summary(&self) -> String {
        self.title
            .clone()
            .or_else(|| self.message.clone())
            .unwrap_or_else(|| format!("Meta error {}", self.code))
    }

    pub fn class(&self) -> RetryClass {
        let class = error_info(self.code).retry;
        if self.is_transient == Some(true) && class != RetryClass::Account {
            return RetryClass::Retry;
        }
        class
    }

    pub fn hint(&self) -> &'static str {
        error_info(self.code).hint
    }
}

/// Whether retrying a failed call can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryClass {
    /// Temporary: retry with backoff.
    Retry,
    /// Rate limited for a longer period: retry much later.
    Later,
    /// Something must be fixed first; retrying the same request fails again.
    Fix,
    /// The account cannot send at all (token invalid, permission gone, blocked, locked): its
    /// sending pauses until someone fixes it; queued messages wait.
    Account,
}

pub struct ErrorInfo {
    pub retry: RetryClass,
    pub hint: &'static str,
}

/// What a Meta error code means for the user. Codes from reference/cloud-api.md §3.2.
pub fn error_info(code: i64) -> ErrorInfo {
    use RetryClass::*;
    let (retry, hint) = match code {
        0 | 190 => (Account, "the access token is expired or invalid: create a new token (a system-user token does not expire) and update the account"),
        1 | 2 | 131000 | 131016 | 133004 => (Retry, "Meta had a temporary problem; the gateway retries with backoff"),
        3 | 10 | 131005 => (Fix, "the token lacks a permission: grant whatsapp_business_messaging and whatsapp_business_management to the system user"),
        4 | 80007 | 80008 => (Retry, "Meta's API call-rate limit was reached; the gateway backs off and retries"),
        33 => (Fix, "the phone number id is unknown to Meta or was deleted: check the account's phone_number_id"),
        100 => (Fix, "a parameter is invalid or misspelled: check the field named in Meta's details"),
        200..=299 => (Account, "the token has no access to this WhatsApp Business Account: assign the asset to the system user"),
        368 => (Account, "the account is temporarily blocked for policy violations: see Business Support Home"),
        130429 => (Retry, "the phone number's throughput limit (80 messages/s by default) was reached; the gateway retries"),
        130472 => (Fix, "the recipient is part of a Meta marketing experiment; this message cannot be sent to them"),
        130497 => (Fix, "the account may not message users in this country"),
        131008 => (Fix, "a required parameter is missing: see Meta's details"),
        131009 => (Fix, "a parameter value is not valid: see Meta's details"),
        131021 => (Fix, "the recipient is the sending number itself"),
        131026 => (Fix, "the message could not be delivered: the number may not be on WhatsApp, or the user has not accepted the terms or uses an old app"),
        131030 => (Fix, "the number is not in the test number's allowed list: add it in the App Dashboard (API Setup) or use a production number"),
        131031 => (Account, "the business account is locked: check Business Support Home"),
        131037 => (Fix, "the display name is not approved yet"),
        131042 => (Fix, "there is a payment problem on the account: add or fix the payment method in WhatsApp Manager"),
        131045 => (Fix, "the phone number is not registered correctly: register it again"),
        131047 => (Fix, "more than 24 hours have passed since the user last wrote: send an approved template instead"),
        131048 => (Later, "too many messages were blocked or flagged as spam: check the phone number's quality rating"),
        131049 => (Later, "Meta limits marketing messages per user; do not retry for at least 24 hours"),
        131050 => (Fix, "the user stopped marketing messages from you; do not send marketing to them"),
        131051 => (Fix, "this message type is not supported"),
        131052 => (Fix, "the media could not be downloaded from the user"),
        131053 => (Fix, "the media could not be uploaded: check the MIME type and that the link is reachable"),
        131056 => (Retry, "too many messages to the same user in a short time (pair rate limit); the gateway retries later"),
        131057 => (Retry, "the account is in maintenance for a moment; the gateway retries"),
        132000 => (Fix, "the number of template parameters does not match the template: compare with the template's placeholders"),
        132001 => (Fix, "the template does not exist or is not approved in this language: check the name and language code, or sync templates"),
        132005 => (Fix, "the template text with parameters filled in is too long"),
        132007 => (Fix, "the template text breaks Meta's formatting policy"),
        132008 => (Fix, "a template parameter value is invalid"),
        132012 => (Fix, "a template parameter has the wrong format for its placeholder (e.g. text where an image is expected)"),
        132015 => (Fix, "the template is paused for low quality: edit it or wait until it is unpaused"),
        132016 => (Fix, "the template is disabled: create a new template"),
        132018 => (Fix, "a template component's parameters are wrong: see Meta's details"),
        133010 => (Fix, "the phone number is not registered with the Cloud API: register it (POST /{phone_number_id}/register)"),
        133015 | 133016 => (Later, "registration is rate limited: wait before registering again"),
        _ => (Fix, "see Meta's error details"),
    };
    ErrorInfo { retry, hint }
}

/// Graph's answer to a successful send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendResponse {
    #[serde(default)]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub contacts: Vec<SendContact>,
    #[serde(default)]
    pub messages: Vec<SendMessageId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendContact {
    #[serde(default)]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendMessageId {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// The message types `POST /{phone_number_id}/messages` takes.
pub const MESSAGE_TYPES: &[&str] = &[
    "text",
    "image",
    "audio",
    "video",
    "document",
    "sticker",
    "location",
    "contacts",
    "reaction",
    "interactive",
    "template",
];

/// The parts of a send body the gateway reads before queueing.
pub fn message_type(body: &Value) -> &str {
    body.get("type").and_then(Value::as_str).unwrap_or("text")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_metas_error_fixture() {
        let raw = r#"{"error":{"message":"(#132001) Template name does not exist in the translation","type":"OAuthException","code":132001,"error_data":{"messaging_product":"whatsapp","details":"template name (order_shipped) does not exist in en_US"},"fbtrace_id":"ACv1Bn2Mq3We4Rt5Yu6Io7P"}}"#;
        let body: GraphErrorBody = serde_json::from_str(raw).expect("parses");
        assert_eq!(body.error.code, 132001);
        assert_eq!(body.error.class(), RetryClass::Fix);
        assert!(body.error.hint().contains("language"));
        assert_eq!(
            body.error.details(),
            Some("template name (order_shipped) does not exist in en_US")
        );
    }

    /// Meta's error codes and what the sender does with each (reference/cloud-api.md §3.2).
    const TABLE: &[(i64, RetryClass)] = {
        use RetryClass::*;
        &[
            // Temporary, throttling and Meta's own trouble: retried with backoff.
            (1, Retry),
            (2, Retry),
            (4, Retry),
            (80007, Retry),
            (80008, Retry),
            (130429, Retry),
            (131000, Retry),
            (131016, Retry),
            (131056, Retry),
            (131057, Retry),
            (133004, Retry),
            // Retried after hours, or failed past the horizon.
            (131048, Later),
            (131049, Later),
            (133015, Later),
            (133016, Later),
            // The account cannot send: paused until fixed.
            (0, Account),
            (190, Account),
            (200, Account),
            (299, Account),
            (368, Account),
            (131031, Account),
            // This message cannot go as it is.
            (3, Fix),
            (10, Fix),
            (33, Fix),
            (100, Fix),
            (130472, Fix),
            (130497, Fix),
            (131008, Fix),
            (131009, Fix),
            (131021, Fix),
            (131026, Fix),
            (131030, Fix),
            (131037, Fix),
            (131042, Fix),
            (131045, Fix),
            (131047, Fix),
            (131050, Fix),
            (131051, Fix),
            (131052, Fix),
            (131053, Fix),
            (132000, Fix),
            (132001, Fix),
            (132005, Fix),
            (132007, Fix),
            (132008, Fix),
            (132012, Fix),
            (132015, Fix),
            (132016, Fix),
            (132018, Fix),
            (133010, Fix),
            (999_999, Fix),
        ]
    };

    #[test]
    fn every_code_has_its_class_and_a_hint() {
        for (code, class) in TABLE {
            let info = error_info(*code);
            assert_eq!(info.retry, *class, "{code}");
            assert!(!info.hint.is_empty(), "{code}");
        }
    }

    #[test]
    fn a_transient_flag_makes_an_ordinary_error_retryable_but_not_an_account_one() {
        let e = |code: i64| MetaError {
            code,
            is_transient: Some(true),
            ..serde_json::from_str(r#"{"code": 0}"#).expect("error")
        };
        assert_eq!(e(100).class(), RetryClass::Retry);
        assert_eq!(e(190).class(), RetryClass::Account);
    }
}

/// What Meta accepts as media, by MIME type: the message type it suits and its size limit in
/// bytes (reference/cloud-api.md §5).
pub fn media_limit(mime_type: &str) -> Option<(&'static str, usize)> {
    const MB: usize = 1024 * 1024;
    let base = mime_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    Some(match base.as_str() {
        "image/jpeg" | "image/png" => ("image", 5 * MB),
        "image/webp" => ("sticker", 500 * 1024),
        "video/mp4" | "video/3gpp" => ("video", 16 * MB),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => ("audio", 16 * MB),
        "text/plain"
        | "application/pdf"
        | "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => ("document", 100 * MB),
        _ => return None,
    })
}

/// Every MIME type `media_limit` knows, for error messages.
pub const MEDIA_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "video/mp4",
    "video/3gpp",
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

#[cfg(test)]
mod media_tests {
    use super::*;

    #[test]
    fn media_limits_follow_meta() {
        assert_eq!(media_limit("image/jpeg"), Some(("image", 5 * 1024 * 1024)));
        assert_eq!(media_limit("audio/ogg; codecs=opus").map(|l| l.0), Some("audio"));
        assert_eq!(media_limit("image/gif"), None);
        for t in MEDIA_TYPES {
            assert!(media_limit(t).is_some(), "{t}");
        }
    }
}
