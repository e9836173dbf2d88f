//! The send governor: Meta's throughput limit per phone number (80 messages per second by
//! default, up to 1,000) and its pair rate limit per recipient (one message per 6 s, with bursts),
//! kept before Meta has to refuse. GCRA limiters from the `governor` crate.
//!
//! "Never more than N in any one-second window" must hold where Meta counts, at Meta's side, not
//! only here: each call reaches Meta a little later than its slot, and not always by the same
//! time. So the number's limit is a cell-rate schedule without bursts (a burst of `b` lets `b - 1`
//! cells more than the rate into a window), cells spaced `(1 s + JITTER) / N` apart: calls
//! delayed by anything between 0 and `JITTER` still fit N to a second wherever the window falls,
//! and the steady rate is `N / (1 + JITTER)`, 98.5 % of the limit: 80 → 78.8/s, 1,000 → 985/s.
//! A send takes its cell ahead of time ([`Throttle::reserve`]) and waits for it, so that what it
//! must do before the call (record that the call starts) is done by then and does not push the
//! call late: only the network's jitter is left.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use governor::clock::DefaultClock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

type PairLimiter = RateLimiter<String, HashMapStateStore<String>, DefaultClock>;

/// How much later than its slot a call may reach Meta, at most, and still be counted within the
/// limit: the spread of the delays between a slot and the call's arrival at Meta.
pub const JITTER: Duration = Duration::from_millis(15);

/// The spacing of cells that keeps every one-second window at Meta at or under `limit` messages,
/// for calls that reach Meta between 0 and [`JITTER`] after their cell; `None`: no limit.
pub fn cell_period(limit: u32) -> Option<Duration> {
    let limit = NonZeroU32::new(limit)?;
    // Rounded up, so that `limit` periods never fit in 1 s + JITTER.
    let span = 1_000_000_000u64 + JITTER.as_nanos() as u64;
    Some(Duration::from_nanos(span.div_ceil(u64::from(limit.get())) + 1))
}

/// One number's cells: the cell-rate algorithm in its virtual-scheduling form, without bursts.
/// Times are nanoseconds on the caller's clock.
#[derive(Debug)]
pub struct Cells {
    period_ns: u64,
    next_ns: Mutex<u64>,
}

impl Cells {
    pub fn new(period: Duration) -> Self {
        Self {
            period_ns: period.as_nanos() as u64,
            next_ns: Mutex::new(0),
        }
    }

    /// Takes the first free cell at or after `now_ns` and returns its time.
    pub fn take(&self, now_ns: u64) -> u64 {
        let mut next = self.next_ns.lock().unwrap_or_else(|e| e.into_inner());
        let cell = (*next).max(now_ns);
        *next = cell + self.period_ns;
        cell
    }
}

/// A number's share of the sender's slots at `limit` messages per second (0: no limit).
fn share(limit: u32, concurrency: usize) -> usize {
    match limit {
        0 => concurrency,
        limit => (limit as usize / 4).max(4).min(concurrency),
    }
}

/// Meta's pair limit: one message per `interval`, with bursts of up to `burst`.
pub fn pair_quota(interval: Duration, burst: u32) -> Option<Quota> {
    Some(Quota::with_period(interval)?.allow_burst(NonZeroU32::new(burst)?))
}

/// One number's limit and its cells (`None`: no limit).
#[derive(Clone)]
struct NumberSlot {
    limit: u32,
    cells: Option<Arc<Cells>>,
}

impl NumberSlot {
    fn new(limit: u32) -> Self {
        Self {
            limit,
            cells: cell_period(limit).map(|p| Arc::new(Cells::new(p))),
        }
    }
}

pub struct Throttle {
    /// Per phone number; a number first seen gets the default limit until told its own.
    numbers: RwLock<HashMap<String, NumberSlot>>,
    default_limit: u32,
    pairs: Option<PairLimiter>,
    /// After Meta's 130429 (number) or 131056 (pair): nothing goes until then.
    held_until: Mutex<HashMap<String, Instant>>,
    /// The clock cells are counted on.
    epoch: Instant,
}

impl Throttle {
    /// `limits`: messages per second per phone number (0: no limit); `default_limit` for any
    /// other number.
    pub fn new(limits: &[(String, u32)], default_limit: u32, pair_interval: Duration, pair_burst: u32) -> Self {
        let throttle = Self {
            numbers: RwLock::default(),
            default_limit,
            pairs: pair_quota(pair_interval, pair_burst).map(RateLimiter::hashmap),
            held_until: Mutex::default(),
            epoch: Instant::now(),
        };
        throttle.set_limits(limits);
        throttle
    }

    /// Sets numbers' limits (an account's numbers changed); a number whose limit is unchanged
    /// keeps its limiter, and so its place in the current second.
    pub fn set_limits(&self, limits: &[(String, u32)]) {
        let mut numbers = self.numbers.write().unwrap_or_else(|e| e.into_inner());
        for (number, limit) in limits {
            if numbers.get(number).is_none_or(|s| s.limit != *limit) {
                numbers.insert(number.clone(), NumberSlot::new(*limit));
            }
        }
    }

    fn slot(&self, number: &str) -> NumberSlot {
        if let Some(s) = self.numbers.read().unwrap_or_else(|e| e.into_inner()).get(number) {
            return s.clone();
        }
        self.numbers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(number.to_string())
            .or_insert_with(|| NumberSlot::new(self.default_limit))
            .clone()
    }

    /// Waits until a message from `number` to `recipient` may be given a cell (holds after Meta's
    /// errors, the pair's limit), takes the number's next cell and returns when it is: the call
    /// goes then, not before.
    pub async fn reserve(&self, number: &str, recipient: Option<&str>) -> tokio::time::Instant {
        let pair_key = recipient.map(|r| format!("{number}/{r}"));
        loop {
            let held = {
                let map = self.held_until.lock().unwrap_or_else(|e| e.into_inner());
                [Some(number), pair_key.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter_map(|k| map.get(k).copied())
                    .max()
            };
            match held {
                Some(until) if until > Instant::now() => tokio::time::sleep_until(until.into()).await,
                _ => break,
            }
        }
        if let (Some(pairs), Some(key)) = (&self.pairs, pair_key) {
            pairs.until_key_ready(&key).await;
        }
        self.next_cell(number)
    }

    /// Takes the number's next cell (a call that missed its own, being late, takes another).
    pub fn next_cell(&self, number: &str) -> tokio::time::Instant {
        let now = Instant::now();
        match self.slot(number).cells {
            Some(cells) => {
                let now_ns = now.duration_since(self.epoch).as_nanos() as u64;
                let cell = cells.take(now_ns);
                (self.epoch + Duration::from_nanos(cell)).into()
            }
            None => now.into(),
        }
    }

    /// How many sends of one number may be in flight (claimed, waiting for their slot or
    /// calling) at once: a quarter second's worth at its limit, at least 4, at most all of the
    /// sender's slots. The rest stay free for other numbers, whatever one number's backlog.
    pub fn in_flight_cap(&self, number: &str, concurrency: usize) -> usize {
        share(self.slot(number).limit, concurrency)
    }

    /// The smallest share of any number: how many jobs one claim may take without letting a
    /// number overshoot its share by much.
    pub fn smallest_cap(&self, concurrency: usize) -> usize {
        let numbers = self.numbers.read().unwrap_or_else(|e| e.into_inner());
        numbers
            .values()
            .map(|s| share(s.limit, concurrency))
            .min()
            .unwrap_or(concurrency)
    }

    /// Meta said the number is over its throughput (130429): hold it for a while.
    pub fn hold_number(&self, number: &str, wait: Duration) {
        self.hold(number.to_string(), wait);
    }

    /// Meta said the pair is over its limit (131056): hold that recipient only.
    pub fn hold_pair(&self, number: &str, recipient: &str, wait: Duration) {
        self.hold(format!("{number}/{recipient}"), wait);
    }

    fn hold(&self, key: String, wait: Duration) {
        let until = Instant::now() + wait;
        let mut map = self.held_until.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, t| *t > Instant::now());
        let entry = map.entry(key).or_insert(until);
        *entry = (*entry).max(until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Messages sent at their cells, for arrivals at the given times (ms); the send times in ns.
    fn send_times(limit: u32, arrivals: &[u64]) -> Vec<u64> {
        let cells = Cells::new(cell_period(limit).expect("a limit"));
        arrivals.iter().map(|a| cells.take(a * 1_000_000)).collect()
    }

    /// The most sends in any half-open window of one second (times in ns).
    fn max_in_a_second(times_ns: &[u64]) -> usize {
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times_ns.len() {
            while times_ns[hi] - times_ns[lo] >= 1_000_000_000 {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[test]
    fn a_flood_goes_at_the_limit_and_not_above() {
        for limit in [1u32, 20, 80, 250, 1000] {
            let arrivals = vec![0u64; limit as usize * 5];
            let sent = send_times(limit, &arrivals);
            assert!(
                max_in_a_second(&sent) <= limit as usize,
                "limit {limit}: {} in a second; first {:?}",
                max_in_a_second(&sent),
                &sent[..sent.len().min(5)]
            );
            // Five seconds' worth goes out at the limit, within 2 %.
            let took = *sent.last().expect("sent") as f64 / 1e9;
            let rate = (sent.len() - 1) as f64 / took;
            assert!(
                rate <= limit as f64 && rate >= limit as f64 * 0.98,
                "limit {limit}: {rate}/s"
            );
            // Delayed on their way by anything up to JITTER, the calls still fit.
            let mut seed = 0x9e37_79b9_7f4a_7c15u64;
            let mut at_meta: Vec<u64> = sent
                .iter()
                .map(|t| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    t + seed % JITTER.as_nanos() as u64
                })
                .collect();
            at_meta.sort();
            assert!(
                max_in_a_second(&at_meta) <= limit as usize,
                "limit {limit}: {} at Meta",
                max_in_a_second(&at_meta)
            );
        }
    }

    proptest! {
        #[test]
        fn no_one_second_window_is_over_the_limit(
            limit in prop_oneof![Just(80u32), Just(1000u32), 1u32..1200],
            mut arrivals in proptest::collection::vec(0u64..4_000, 1..3_000),
            delays in proptest::collection::vec(0u64..JITTER.as_nanos() as u64, 3_000),
        ) {
            arrivals.sort();
            let sent = send_times(limit, &arrivals);
            prop_assert!(max_in_a_second(&sent) <= limit as usize);
            // As Meta sees them: each call delayed by up to JITTER on its way.
            let mut at_meta: Vec<u64> = sent.iter().zip(&delays).map(|(t, d)| t + d).collect();
            at_meta.sort();
            prop_assert!(max_in_a_second(&at_meta) <= limit as usize);
        }
    }

    #[test]
    fn no_limit_means_no_limiter() {
        assert!(cell_period(0).is_none());
        assert!(pair_quota(Duration::ZERO, 45).is_none());
    }
}
