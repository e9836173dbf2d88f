//! A longer fuzzing run than the test suite's property tests: Meta's fixtures, mutated at random
//! (bytes flipped, values swapped for other JSON types, keys dropped, arrays turned into objects,
//! deep nesting, invalid UTF-8), through the webhook parser, the send validator and phone
//! normalisation. It checks that nothing panics, that every body yields at least one update
//! (nothing acknowledged disappears), and that every accepted phone number is E.164 and
//! normalises to itself. Prints a table of what ran.
//!
//!   cargo run --release -p wagate-bench --bin fuzz -- [seconds, default 60] [seed]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use wagate_core::validate::check_message;
use wagate_core::webhook::{parse_updates, Routing, Update};

fn fixtures() -> anyhow::Result<(Vec<Vec<u8>>, Vec<Value>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/meta");
    let (mut webhooks, mut sends) = (Vec::new(), Vec::new());
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if !name.ends_with(".json") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let doc: Value = serde_json::from_slice(&bytes)?;
        if doc["object"] == "whatsapp_business_account" {
            webhooks.push(bytes);
        } else if name.starts_with("send_") && name.ends_with("_request.json") {
            sends.push(doc);
        }
    }
    Ok((webhooks, sends))
}

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>() * 1e6),
        4 => json!(
            [
                "",
                "text",
                "wamid.X",
                "16505551234",
                "😀",
                "\u{0}",
                "read",
                "x".repeat(5000).as_str()
            ][rng.random_range(0..8)]
        ),
        5 => json!(rng.random_range(-1e300..1e300)),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "id", "type", "text", "body", "messages", "statuses", "from", "entry", "changes", "value",
            ];
            Value::Object(
                (0..rng.random_range(0..4))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_string(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect::<Map<String, Value>>(),
            )
        }
    }
}

/// Changes one random place of a JSON document.
fn mutate(rng: &mut StdRng, v: &mut Value) {
    let dive = rng.random_range(0..4) != 0;
    match v {
        Value::Object(m) if !m.is_empty() && dive => {
            let i = rng.random_range(0..m.len());
            let key = m.keys().nth(i).cloned().unwrap_or_default();
            match rng.random_range(0..6) {
                0 => {
                    m.remove(&key);
                }
                1 => {
                    m.insert(key, random_value(rng, 0));
                }
                _ => {
                    if let Some(child) = m.get_mut(&key) {
                        mutate(rng, child);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() && dive => match rng.random_range(0..5) {
            0 => {
                // An array turned into an object, as in `"messages": {…}`.
                let first = a[0].clone();
                *v = first;
            }
            1 => {
                let dup = a[rng.random_range(0..a.len())].clone();
                a.push(dup);
            }
            _ => {
                let i = rng.random_range(0..a.len());
                mutate(rng, &mut a[i]);
            }
        },
        _ => *v = random_value(rng, 0),
    }
}

/// A mutated webhook body: JSON-level most of the time, sometimes bytes.
fn webhook_case(rng: &mut StdRng, webhooks: &[Vec<u8>]) -> Vec<u8> {
    let base = &webhooks[rng.random_range(0..webhooks.len())];
    match rng.random_range(0..10) {
        0 => {
            let mut b = base.clone();
            for _ in 0..rng.random_range(1..8) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b
        }
        1 => {
            let depth = rng.random_range(100..20_000);
            let mut s = String::from_utf8_lossy(base).trim_end().to_string();
            s.pop();
            format!("{s},\"deep\":{}1{}}}", "[".repeat(depth), "]".repeat(depth)).into_bytes()
        }
        2 => base[..rng.random_range(0..base.len())].to_vec(),
        _ => {
            let mut doc: Value = serde_json::from_slice(base).unwrap_or(Value::Null);
            for _ in 0..rng.random_range(1..4) {
                mutate(rng, &mut doc);
            }
            doc.to_string().into_bytes()
        }
    }
}

fn phone_case(rng: &mut StdRng) -> String {
    const ALPHABET: &[char] = &[
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '-', ' ', '(', ')', '.', '/', 'a', '\u{a0}', '٣',
    ];
    (0..rng.random_range(0..22))
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
        .collect()
}

#[derive(Default)]
struct Tally {
    cases: u64,
    panics: u64,
    failures: u64,
    outcomes: std::collections::BTreeMap<&'static str, u64>,
}

impl Tally {
    fn note(&mut self, outcome: &'static str) {
        *self.outcomes.entry(outcome).or_default() += 1;
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let (webhooks, sends) = fixtures()?;
    anyhow::ensure!(!webhooks.is_empty() && !sends.is_empty(), "no fixtures found");
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut hooks, mut validator, mut phones) = (Tally::default(), Tally::default(), Tally::default());
    let started = Instant::now();
    let budget = Duration::from_secs(seconds);
    while started.elapsed() < budget {
        for _ in 0..64 {
            let body = webhook_case(&mut rng, &webhooks);
            hooks.cases += 1;
            match catch_unwind(AssertUnwindSafe(|| {
                let _ = Routing::parse(&body).targets().count();
                parse_updates(&body)
            })) {
                Err(_) => hooks.panics += 1,
                Ok(updates) if updates.is_empty() => hooks.failures += 1,
                Ok(updates) => {
                    for u in &updates {
                        hooks.note(match u {
                            Update::Message(_) => "message",
                            Update::Status(_) => "status",
                            Update::Other(o) if o.event_type == "webhook.invalid" => "webhook.invalid",
                            Update::Other(o) if o.event_type == "webhook.unknown" => "webhook.unknown",
                            Update::Other(_) => "other event",
                        });
                    }
                }
            }

            let mut send = sends[rng.random_range(0..sends.len())].clone();
            for _ in 0..rng.random_range(0..3) {
                mutate(&mut rng, &mut send);
            }
            let kind = send["type"].as_str().unwrap_or("text").to_string();
            validator.cases += 1;
            match catch_unwind(AssertUnwindSafe(|| check_message(&kind, &send))) {
                Err(_) => validator.panics += 1,
                Ok(Ok(())) => validator.note("accepted"),
                Ok(Err(v)) if v.is_empty() => validator.failures += 1,
                Ok(Err(_)) => validator.note("refused with a field"),
            }

            let typed = phone_case(&mut rng);
            let country = rng.random::<bool>().then_some(phonenumber::country::Id::US);
            phones.cases += 1;
            match catch_unwind(|| wagate_core::phone::normalize(&typed, country)) {
                Err(_) => phones.panics += 1,
                Ok(Err(_)) => phones.note("refused"),
                Ok(Ok(n)) => {
                    let digits = &n.as_str()[1..];
                    let typed_digits: String = typed.chars().filter(char::is_ascii_digit).collect();
                    // E.164 (at most 15 digits), and the number typed: its last digits are kept.
                    let e164 = digits.chars().all(|c| c.is_ascii_digit())
                        && digits.len() <= 15
                        && typed_digits.ends_with(&digits[digits.len().saturating_sub(4)..]);
                    if e164 && wagate_core::phone::normalize(n.as_str(), None).as_ref() == Ok(&n) {
                        phones.note("accepted as E.164");
                    } else {
                        phones.failures += 1;
                        eprintln!("not E.164 or not stable: {typed:?} -> {n}");
                    }
                }
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("fuzz run: {secs:.1} s, seed {seed}\n");
    println!("| target | cases | cases/s | panics | broken promises | outcomes |");
    println!("|---|---|---|---|---|---|");
    for (name, t, promise) in [
        ("webhook parser", &hooks, "body without an update"),
        ("send validator", &validator, "refusal without a field"),
        ("phone normalisation", &phones, "accepted but not stable E.164"),
    ] {
        let outcomes: Vec<String> = t.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "| {name} | {} | {:.0} | {} | {} ({promise}) | {} |",
            t.cases,
            t.cases as f64 / secs,
            t.panics,
            t.failures,
            outcomes.join(", ")
        );
    }
    let bad = hooks.panics + hooks.failures + validator.panics + validator.failures + phones.panics + phones.failures;
    anyhow::ensure!(bad == 0, "{bad} cases broke a promise (seed {seed})");
    Ok(())
}
