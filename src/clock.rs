//! Time as the service stores it, and the date arithmetic written once. At the bottom of the
//! crate: the domain, the throttle and the mail worker all use it.

use std::time::Duration;

use chrono::{NaiveDateTime, Timelike as _, Utc};

/// The current time as stored: UTC, truncated to microseconds (PostgreSQL's precision), so a
/// value reads back equal on both backends.
pub fn now() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    let micros = now.nanosecond() / 1_000 * 1_000;
    now.with_nanosecond(micros).unwrap_or(now)
}

/// `t + d`, saturating at the largest representable time.
pub fn after(t: NaiveDateTime, d: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(NaiveDateTime::MAX)
}

/// `t - d`, saturating at the smallest representable time.
pub fn before(t: NaiveDateTime, d: Duration) -> NaiveDateTime {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(NaiveDateTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_and_now_is_whole_microseconds() {
        let t = now();
        assert_eq!(t.nanosecond() % 1_000, 0);
        assert_eq!(
            after(t, Duration::from_secs(2)) - t,
            chrono::Duration::seconds(2)
        );
        assert_eq!(
            t - before(t, Duration::from_secs(2)),
            chrono::Duration::seconds(2)
        );
        assert_eq!(after(t, Duration::MAX), NaiveDateTime::MAX);
        assert_eq!(before(t, Duration::MAX), NaiveDateTime::MIN);
    }
}
