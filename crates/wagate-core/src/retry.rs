//! Backoff for retried sends: exponential from one second, capped, with jitter so that many
//! messages failing together do not come back together.

/// Delay before retry number `attempt` (1 = first retry). `jitter` in [0, 1) spreads it over
/// 50–100 % of the exponential value.
pub fn backoff_ms(attempt: u32, jitter: f64) -> i64 {
    const BASE_MS: f64 = 1_000.0;
    const CAP_MS: f64 = 5.0 * 60.0 * 1_000.0;
    let exp = BASE_MS * 2f64.powi(attempt.saturating_sub(1).min(20) as i32);
    let capped = exp.min(CAP_MS);
    (capped * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn bounded_and_growing(attempt in 1u32..100, jitter in 0.0f64..1.0) {
            let d = backoff_ms(attempt, jitter);
            prop_assert!(d >= 500);
            prop_assert!(d <= 300_000);
            prop_assert!(backoff_ms(attempt + 1, 0.999) >= backoff_ms(attempt, 0.0));
        }
    }
}
