//! What happened lately, for the console's overview: messages received and sent, and the
//! statuses Meta reported, per hour of the last day; and the failures, grouped by Meta's error
//! code with its hint. Counted in [`count`].

pub mod count;

/// One hour's activity.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hour {
    /// When the hour began (unix ms).
    pub start_ms: i64,
    pub received: i64,
    pub sent: i64,
    pub delivered: i64,
    pub read: i64,
    pub failed: i64,
}

/// Failures that share an error code.
#[derive(Debug, Clone, PartialEq)]
pub struct FailureGroup {
    pub code: String,
    pub title: String,
    pub hint: String,
    pub count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// The last 24 hours, oldest first (the current hour last).
    pub hours: Vec<Hour>,
    /// Most frequent first.
    pub failures: Vec<FailureGroup>,
}
