//! A message's delivery status and the rule that statuses never move backwards.
//!
//! Meta delivers status webhooks at least once and out of order: a late `delivered` must not undo
//! `read`, and `failed` is final. `played` (first play of a voice note) comes after `read`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Received from the user (inbound messages only).
    Received,
    /// Accepted by the gateway, waiting in the send queue.
    Queued,
    /// Meta answered the send with a wamid.
    Accepted,
    Sent,
    Delivered,
    Read,
    Played,
    Failed,
    /// Cancelled by the API before it went out (final).
    Cancelled,
    /// The gateway died during the call to Meta and no status webhook told whether Meta took
    /// it (`sender.in_doubt_action = "unknown"`). A later status still moves it on.
    Unknown,
}

/// A status name wagate does not know (from the database: a row written by a newer version).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not a message status")]
pub struct UnknownStatus(pub String);

impl TryFrom<String> for MessageStatus {
    type Error = UnknownStatus;
    fn try_from(s: String) -> Result<Self, UnknownStatus> {
        Self::parse(&s).ok_or(UnknownStatus(s))
    }
}

impl std::fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Queued => "queued",
            Self::Accepted => "accepted",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Played => "played",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "received" => Self::Received,
            "queued" => Self::Queued,
            "accepted" => Self::Accepted,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "played" => Self::Played,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "unknown" => Self::Unknown,
            _ => return None,
        })
    }

    /// The event type a status webhook with this status becomes.
    pub fn event_type(self) -> Option<&'static str> {
        Some(match self {
            Self::Sent => "message.sent",
            Self::Delivered => "message.delivered",
            Self::Read => "message.read",
            Self::Played => "message.played",
            Self::Failed => "message.failed",
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            Self::Received | Self::Queued => 0,
            Self::Accepted | Self::Unknown => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Played => 5,
            Self::Failed => 6,
            Self::Cancelled => 7,
        }
    }

    /// Whether a message now at `self` moves to `next`. Forward only; `failed` is final, and a
    /// message already delivered or read does not become failed by a stray late failure.
    pub fn advances_to(self, next: MessageStatus) -> bool {
        match (self, next) {
            (Self::Failed | Self::Cancelled, _) => false,
            // Only a message still in the queue can be cancelled.
            (cur, Self::Cancelled | Self::Unknown) => cur == Self::Queued,
            (cur, Self::Failed) => cur.rank() < Self::Delivered.rank(),
            (cur, next) => next.rank() > cur.rank(),
        }
    }

    /// Where statuses recorded for a message we have no row for (in any arrival order) have
    /// taken it: from `accepted` (Meta took it), each one that advances it.
    pub fn furthest(recorded: impl IntoIterator<Item = MessageStatus>) -> MessageStatus {
        recorded
            .into_iter()
            .fold(Self::Accepted, |cur, st| if cur.advances_to(st) { st } else { cur })
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::{self, *};
    use proptest::prelude::*;

    const ALL: [MessageStatus; 10] = [
        Received, Queued, Accepted, Sent, Delivered, Read, Played, Failed, Cancelled, Unknown,
    ];

    #[test]
    fn the_furthest_status_does_not_depend_on_arrival_order() {
        assert_eq!(MessageStatus::furthest([Read, Sent, Delivered]), Read);
        assert_eq!(MessageStatus::furthest([Delivered, Failed]), Delivered);
        assert_eq!(MessageStatus::furthest([Sent, Failed]), Failed);
        assert_eq!(MessageStatus::furthest([]), Accepted);
    }

    #[test]
    fn late_statuses_do_not_move_backwards() {
        assert!(Queued.advances_to(Sent));
        assert!(Sent.advances_to(Read));
        assert!(!Read.advances_to(Delivered));
        assert!(!Failed.advances_to(Read));
        assert!(Sent.advances_to(Failed));
        assert!(!Read.advances_to(Failed));
        assert!(Read.advances_to(Played));
        assert!(Queued.advances_to(Cancelled));
        assert!(!Sent.advances_to(Cancelled));
        assert!(!Cancelled.advances_to(Sent));
        assert!(Queued.advances_to(Unknown));
        assert!(Unknown.advances_to(Delivered));
        assert!(!Sent.advances_to(Unknown));
    }

    proptest! {
        /// Applying any sequence of statuses in any order ends in the same place as applying
        /// them sorted: the outcome does not depend on delivery order (for non-failed statuses).
        #[test]
        fn order_does_not_matter(seq in proptest::collection::vec(0usize..6, 0..12)) {
            let apply = |items: &[usize]| items.iter().fold(Queued, |cur, i| {
                let next = ALL[*i + 2];
                if cur.advances_to(next) { next } else { cur }
            });
            let mut sorted = seq.clone();
            sorted.sort();
            let a = apply(&seq);
            let b = apply(&sorted);
            let has_fail = seq.contains(&5);
            if !has_fail { prop_assert_eq!(a, b); }
            // never ends before the highest non-failed status seen
            let max = seq.iter().filter(|i| **i < 5).max().map(|i| ALL[*i + 2]);
            if let (Some(m), false) = (max, a == Failed) { prop_assert!(a >= m); }
        }

        #[test]
        fn parse_round_trips(i in 0usize..10) {
            prop_assert_eq!(MessageStatus::parse(ALL[i].as_str()), Some(ALL[i]));
        }
    }
}
