//! Hooks whose `url` names a message broker rather than an HTTP receiver: the same events,
//! filters, formats, retries, attempts, replay and per-contact order as an HTTP hook, published
//! where the team's services already consume. A broker's acknowledgement is the receiver's 2xx:
//! JetStream's ack of the stream, Redis's reply to `XADD`.
//!
//! - `nats://[user:password@]host:4222/<subject>`: published to JetStream with the event id as
//!   `Nats-Msg-Id` (the stream's de-duplication window drops a repeat).
//! - `redis://[:password@]host:6379[/<db>]?stream=<key>[&maxlen=<n>]` (and `rediss://`): `XADD`
//!   with the event id and the signature as fields beside the body.
//! - `amqp://user:password@host:5672/<vhost>?exchange=<x>&routing_key=<k>` (and `amqps://`):
//!   RabbitMQ with publisher confirms, persistent, `message_id` = the event id, mandatory (a
//!   message no queue takes is returned, and that is a failure); success on the confirm.
//!
//! The Standard Webhooks id, timestamp and signature travel as message headers (NATS, AMQP) or
//! fields (Redis) named `webhook-id`, `webhook-timestamp`, `webhook-signature`, with
//! `wagate-event-type`; a consumer verifies them as an HTTP receiver does. A URL's password is
//! kept sealed with the hook's other secrets, never in the URL (see [`split_password`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::Mutex;

/// The schemes a hook URL may name a broker with.
pub const SCHEMES: &[&str] = &["nats", "redis", "rediss", "amqp", "amqps", "sqs"];

/// Where a sink URL's password is kept: in the hook's sealed `headers`, which a broker has no
/// use for otherwise.
pub const PASSWORD_KEY: &str = "wagate-sink-password";

/// What a stored or shown sink URL has in place of its password.
pub const MASK: &str = "****";

/// Whether the URL names a broker.
pub fn is_sink(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

/// Where a sink URL publishes.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Nats {
        /// `nats://host:port`, without credentials.
        server: String,
        user: Option<String>,
        password: Option<String>,
        subject: String,
    },
    Redis {
        /// The URL the client connects with (credentials and database included).
        server: String,
        stream: String,
        maxlen: Option<u64>,
    },
    Amqp {
        /// The URI the client connects with (credentials and vhost included).
        server: String,
        exchange: String,
        routing_key: String,
    },
}

/// Checks a sink URL's syntax and says where it publishes.
pub fn check(url: &str) -> Result<Target, String> {
    let u = url::Url::parse(url).map_err(|e| format!("`{}` is not a URL ({e})", masked(url)))?;
    let shown = masked(url);
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{shown}` has no host"));
    }
    if u.fragment().is_some() {
        return Err(format!("`{shown}` has a #fragment, which means nothing to a broker"));
    }
    let host = u.host_str().unwrap_or_default();
    let user = (!u.username().is_empty()).then(|| decode(u.username()));
    let password = u.password().map(decode);
    match u.scheme() {
        "nats" => {
            let subject = u.path().trim_start_matches('/');
            if subject.is_empty() {
                return Err(format!("`{shown}` names no subject: nats://host:4222/<subject>"));
            }
            if subject.contains(['*', '>', ' ', '/']) || subject.starts_with('.') || subject.ends_with('.') {
                return Err(format!(
                    "`{subject}` is not a subject to publish to (no wildcards, spaces or slashes; tokens separated by dots)"
                ));
            }
            if u.query().is_some() {
                return Err(format!("`{shown}` has a query; nats:// takes none"));
            }
            Ok(Target::Nats {
                server: format!("nats://{host}:{}", u.port().unwrap_or(4222)),
                user,
                password,
                subject: subject.to_string(),
            })
        }
        "redis" | "rediss" => {
            let db = u.path().trim_start_matches('/');
            if !db.is_empty() && db.parse::<u32>().is_err() {
                return Err(format!(
                    "`{db}` is not a database number: redis://host:6379/<db>?stream=<key>"
                ));
            }
            let (mut stream, mut maxlen) = (None, None);
            for (k, v) in u.query_pairs() {
                match k.as_ref() {
                    "stream" if !v.is_empty() => stream = Some(v.to_string()),
                    "maxlen" => {
                        maxlen = Some(v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                            format!("maxlen `{v}` is not a positive whole number of entries")
                        })?)
                    }
                    other => {
                        return Err(format!(
                            "`{other}` is not a parameter of a redis:// hook; it takes stream and maxlen"
                        ))
                    }
                }
            }
            let Some(stream) = stream else {
                return Err(format!("`{shown}` names no stream: add ?stream=<key>"));
            };
            let mut server = u.clone();
            server.set_query(None);
            Ok(Target::Redis {
                server: server.to_string(),
                stream,
                maxlen,
            })
        }
        "amqp" | "amqps" => {
            let (mut exchange, mut routing_key) = (String::new(), None);
            for (k, v) in u.query_pairs() {
                match k.as_ref() {
                    "exchange" => exchange = v.to_string(),
                    "routing_key" => routing_key = Some(v.to_string()),
                    other => {
                        return Err(format!(
                            "`{other}` is not a parameter of an amqp:// hook; it takes exchange and routing_key"
                        ))
                    }
                }
            }
            let Some(routing_key) = routing_key else {
                return Err(format!(
                    "`{shown}` names no routing_key: amqp://user:password@host:5672/<vhost>?exchange=<x>&routing_key=<k> (the default exchange routes by queue name)"
                ));
            };
            let mut server = u.clone();
            server.set_query(None);
            Ok(Target::Amqp {
                server: server.to_string(),
                exchange,
                routing_key,
            })
        }
        other => Err(format!(
            "{other}:// hooks are not delivered by this gateway yet; it publishes to NATS JetStream (nats://), Redis Streams (redis://) and RabbitMQ (amqp://)"
        )),
    }
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.to_string())
        .unwrap_or_default()
}

/// The URL with its password masked, as it is shown.
pub fn masked(url: &str) -> String {
    split_password(url).0
}

/// Takes the password out of a URL: the URL with [`MASK`] in its place, and the password (none
/// when the URL has none, or has the mask already).
pub fn split_password(url: &str) -> (String, Option<String>) {
    let Ok(mut u) = url::Url::parse(url) else {
        return (url.to_string(), None);
    };
    let password = u.password().map(str::to_string).filter(|p| p != MASK);
    if u.password().is_some() && u.set_password(Some(MASK)).is_err() {
        return (url.to_string(), None);
    }
    (u.to_string(), password)
}

/// Puts the kept password back in place of the mask.
pub fn with_password(url: &str, password: Option<&str>) -> String {
    let (Some(password), Ok(mut u)) = (password, url::Url::parse(url)) else {
        return url.to_string();
    };
    if u.password() == Some(MASK) && u.set_password(Some(password)).is_ok() {
        return u.to_string();
    }
    url.to_string()
}

/// Sets a hook's URL. A broker URL's password is kept sealed among the hook's headers and the URL
/// keeps a mask in its place; the URL sent back masked keeps the password kept.
pub fn keep_password(h: &mut wagate_store::Hook, url: &str) {
    let mut headers: BTreeMap<String, String> = serde_json::from_str(&h.headers).unwrap_or_default();
    let sink = is_sink(url);
    let (shown, password) = split_password(url);
    match password {
        Some(p) if sink => {
            headers.insert(PASSWORD_KEY.into(), p);
        }
        None if sink && shown.contains(MASK) => {}
        _ => {
            headers.remove(PASSWORD_KEY);
        }
    }
    h.url = if sink { shown } else { url.to_string() };
    h.headers = serde_json::to_string(&headers).unwrap_or_default();
}

/// One signed message for a broker.
pub struct Message<'a> {
    pub id: &'a str,
    pub timestamp: i64,
    /// `(name, value)`: `webhook-signature`, or `x-hub-signature-256` for a `meta` hook.
    pub signature: (&'static str, String),
    pub event_type: &'a str,
    pub body: &'a [u8],
}

/// Connections to the brokers hooks publish to, one per server, made on first use and made
/// again after a failure.
#[derive(Default)]
pub struct Sinks {
    nats: Mutex<HashMap<String, async_nats::jetstream::Context>>,
    redis: Mutex<HashMap<String, redis::aio::MultiplexedConnection>>,
    /// A connection and its channel (in confirm mode) per destination.
    amqp: Mutex<HashMap<String, (lapin::Connection, lapin::Channel)>>,
}

impl Sinks {
    /// Publishes and waits for the broker's acknowledgement (at most `timeout`); the error says
    /// what failed, for the attempt.
    pub async fn publish(&self, url: &str, m: &Message<'_>, timeout: Duration) -> Result<(), String> {
        let target = check(url)?;
        match tokio::time::timeout(timeout, self.publish_to(&target, m)).await {
            Ok(r) => r,
            Err(_) => {
                self.forget(&target).await;
                Err(format!(
                    "timed out after {} s waiting for the broker",
                    timeout.as_secs()
                ))
            }
        }
    }

    async fn publish_to(&self, target: &Target, m: &Message<'_>) -> Result<(), String> {
        let result = match target {
            Target::Nats {
                server,
                user,
                password,
                subject,
            } => {
                let js = self.jetstream(server, user.clone(), password.clone()).await?;
                let mut headers = async_nats::HeaderMap::new();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, m.id);
                headers.insert("webhook-id", m.id);
                headers.insert("webhook-timestamp", m.timestamp.to_string().as_str());
                headers.insert(m.signature.0, m.signature.1.as_str());
                headers.insert("wagate-event-type", m.event_type);
                headers.insert("content-type", "application/json");
                let payload = bytes::Bytes::copy_from_slice(m.body);
                match js.publish_with_headers(subject.clone(), headers, payload).await {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| nats_error(subject, &e.to_string())),
                    Err(e) => Err(nats_error(subject, &e.to_string())),
                }
            }
            Target::Redis { server, stream, maxlen } => {
                let mut con = self.redis(server).await?;
                let mut cmd = redis::cmd("XADD");
                cmd.arg(stream);
                if let Some(n) = maxlen {
                    cmd.arg("MAXLEN").arg("~").arg(*n);
                }
                cmd.arg("*")
                    .arg("webhook-id")
                    .arg(m.id)
                    .arg("webhook-timestamp")
                    .arg(m.timestamp)
                    .arg(m.signature.0)
                    .arg(&m.signature.1)
                    .arg("wagate-event-type")
                    .arg(m.event_type)
                    .arg("body")
                    .arg(m.body);
                cmd.query_async::<String>(&mut con)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("Redis refused XADD to `{stream}`: {e}"))
            }
            Target::Amqp {
                server,
                exchange,
                routing_key,
            } => {
                use lapin::types::{AMQPValue, FieldTable, LongString};
                let channel = self.amqp(server, &amqp_key(target)).await?;
                let mut headers = FieldTable::default();
                for (k, v) in [
                    ("webhook-id", m.id.to_string()),
                    ("webhook-timestamp", m.timestamp.to_string()),
                    (m.signature.0, m.signature.1.clone()),
                    ("wagate-event-type", m.event_type.to_string()),
                ] {
                    headers.insert(k.into(), AMQPValue::LongString(LongString::from(v)));
                }
                let properties = lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(m.id.into())
                    .with_content_type("application/json".into())
                    .with_timestamp(m.timestamp.max(0) as u64)
                    .with_headers(headers);
                let options = lapin::options::BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                };
                let shown = || format!("exchange `{exchange}`, routing key `{routing_key}`");
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        routing_key.as_str().into(),
                        options,
                        m.body,
                        properties,
                    )
                    .await
                    .map_err(|e| format!("RabbitMQ refused the message ({}): {e}", shown()))?
                    .await
                    .map_err(|e| format!("RabbitMQ did not confirm the message ({}): {e}", shown()))?;
                match (confirm.is_ack(), confirm.take_message()) {
                    (true, None) => Ok(()),
                    (_, Some(returned)) => Err(format!(
                        "RabbitMQ returned the message: no queue takes {} ({})",
                        shown(),
                        returned.reply_text
                    )),
                    (false, None) => Err(format!("RabbitMQ refused the message ({}): nack", shown())),
                }
            }
        };
        if result.is_err() {
            self.forget(target).await;
        }
        result
    }

    async fn jetstream(
        &self,
        server: &str,
        user: Option<String>,
        password: Option<String>,
    ) -> Result<async_nats::jetstream::Context, String> {
        let mut cached = self.nats.lock().await;
        if let Some(js) = cached.get(server) {
            return Ok(js.clone());
        }
        let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
        if let (Some(u), Some(p)) = (user, password) {
            options = options.user_and_password(u, p);
        }
        let client = options
            .connect(server)
            .await
            .map_err(|e| format!("cannot reach NATS at {server}: {e}"))?;
        let js = async_nats::jetstream::new(client);
        cached.insert(server.to_string(), js.clone());
        Ok(js)
    }

    async fn redis(&self, server: &str) -> Result<redis::aio::MultiplexedConnection, String> {
        let mut cached = self.redis.lock().await;
        if let Some(c) = cached.get(server) {
            return Ok(c.clone());
        }
        let shown = masked(server);
        let client = redis::Client::open(server).map_err(|e| format!("`{shown}`: {e}"))?;
        let con = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| format!("cannot reach Redis at {shown}: {e}"))?;
        cached.insert(server.to_string(), con.clone());
        Ok(con)
    }

    /// A channel per destination, not per server: RabbitMQ closes a channel that publishes to an
    /// exchange that does not exist, and one misconfigured hook must not fail the others.
    async fn amqp(&self, server: &str, key: &str) -> Result<lapin::Channel, String> {
        let mut cached = self.amqp.lock().await;
        if let Some((_, channel)) = cached.get(key).filter(|(_, c)| c.status().connected()) {
            return Ok(channel.clone());
        }
        let shown = masked(server);
        let connection = lapin::Connection::connect(server, lapin::ConnectionProperties::default())
            .await
            .map_err(|e| format!("cannot reach RabbitMQ at {shown}: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("RabbitMQ at {shown} opened no channel: {e}"))?;
        channel
            .confirm_select(lapin::options::ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("RabbitMQ at {shown} refused publisher confirms: {e}"))?;
        cached.insert(key.to_string(), (connection, channel.clone()));
        Ok(channel)
    }

    /// After a failure the next delivery connects afresh.
    async fn forget(&self, target: &Target) {
        match target {
            Target::Amqp { .. } => {
                if let Some((connection, _)) = self.amqp.lock().await.remove(&amqp_key(target)) {
                    let _ = connection.close(0, "".into()).await;
                }
            }
            Target::Nats { server, .. } => {
                self.nats.lock().await.remove(server);
            }
            Target::Redis { server, .. } => {
                self.redis.lock().await.remove(server);
            }
        }
    }
}

fn amqp_key(target: &Target) -> String {
    match target {
        Target::Amqp {
            server,
            exchange,
            routing_key,
        } => format!("{server} {exchange} {routing_key}"),
        _ => String::new(),
    }
}

fn nats_error(subject: &str, e: &str) -> String {
    if e.contains("no stream") || e.contains("no responders") {
        format!("no JetStream stream takes subject `{subject}`: create one that does (nats stream add --subjects {subject})")
    } else {
        format!("NATS did not take the message on `{subject}`: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_urls() {
        assert!(is_sink("nats://127.0.0.1:4222/wagate.events"));
        assert!(is_sink("REDIS://h/0?stream=x"));
        assert!(!is_sink("https://example.com/hook"));
        assert_eq!(
            check("nats://u:p%40ss@broker/wagate.events"),
            Ok(Target::Nats {
                server: "nats://broker:4222".into(),
                user: Some("u".into()),
                password: Some("p@ss".into()),
                subject: "wagate.events".into()
            })
        );
        assert_eq!(
            check("redis://127.0.0.1:6379/2?stream=events&maxlen=1000"),
            Ok(Target::Redis {
                server: "redis://127.0.0.1:6379/2".into(),
                stream: "events".into(),
                maxlen: Some(1000)
            })
        );
        for (bad, says) in [
            ("nats://broker", "names no subject"),
            ("nats://broker/a.*", "no wildcards"),
            ("redis://h:6379/0", "names no stream"),
            ("redis://h/x?stream=s", "not a database number"),
            ("redis://h/0?stream=s&maxlen=0", "maxlen"),
            ("redis://h/0?stream=s&group=g", "`group` is not a parameter"),
            ("amqp://guest:guest@h:5672/%2f?exchange=x", "names no routing_key"),
            (
                "amqp://guest:guest@h:5672/%2f?routing_key=k&queue=q",
                "`queue` is not a parameter",
            ),
            ("sqs://queue", "not delivered by this gateway yet"),
        ] {
            let e = check(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("guest:guest"), "a password is never shown: {e}");
        }
    }

    #[test]
    fn amqp_urls() {
        assert_eq!(
            check("amqp://app:pw@rabbit:5672/%2f?exchange=wagate&routing_key=events"),
            Ok(Target::Amqp {
                server: "amqp://app:pw@rabbit:5672/%2f".into(),
                exchange: "wagate".into(),
                routing_key: "events".into()
            })
        );
    }

    #[test]
    fn passwords_are_taken_out_and_put_back() {
        let (url, password) = split_password("nats://app:s3cret@broker:4222/wagate.events");
        assert_eq!(url, "nats://app:****@broker:4222/wagate.events");
        assert_eq!(password.as_deref(), Some("s3cret"));
        assert_eq!(
            with_password(&url, password.as_deref()),
            "nats://app:s3cret@broker:4222/wagate.events"
        );
        // The masked URL sent back keeps the password kept.
        assert_eq!(split_password(&url), (url.clone(), None));
        assert_eq!(split_password("redis://h/0?stream=s").1, None);
    }
}
