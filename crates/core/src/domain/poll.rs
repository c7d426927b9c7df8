//! How long to wait before the next CheckBuild: phase-aware, bounded backoff.
//!
//! The wait is a fifth of the time already spent in the current phase, clamped to
//! `[min, max]`: a short phase is seen finishing within `min` seconds, a long one costs few state
//! transitions, and detection lags by at most 20 % of the phase's time (or `max`). Each poll
//! costs [`EVENTS_PER_POLL`] history events, so the longest build CodeBuild allows stays far
//! below the 25,000-event history cap (see [`worst_case_events`] and its test).

/// Wait state (entered, exited) + Lambda task (entered, scheduled, started, succeeded, exited)
/// + Choice (entered, exited).
pub const EVENTS_PER_POLL: u64 = 9;
/// Step Functions' hard cap on one execution's history.
pub const HISTORY_CAP: u64 = 25_000;
/// CodeBuild's longest build timeout (36 h) plus its longest queue timeout (8 h).
pub const LONGEST_BUILD_SECONDS: u64 = (2160 + 480) * 60;
/// CodeBuild's phases, in order.
pub const PHASES: &[&str] = &[
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub min_seconds: u64,
    pub max_seconds: u64,
}

impl PollPolicy {
    pub fn new(min_seconds: u64, max_seconds: u64) -> Self {
        let min_seconds = min_seconds.max(1);
        Self {
            min_seconds,
            max_seconds: max_seconds.max(min_seconds),
        }
    }

    /// The next wait, given seconds spent in the current phase and seconds left to the deadline.
    pub fn next_wait(&self, seconds_in_phase: u64, seconds_to_deadline: u64) -> u64 {
        let wait = (seconds_in_phase / 5).clamp(self.min_seconds, self.max_seconds);
        // Wake up right after the deadline rather than up to `max` later.
        wait.min(seconds_to_deadline.saturating_add(1)).max(1)
    }
}

/// History events of an execution whose build runs `total` seconds spread evenly over all
/// of CodeBuild's phases — the phase resets make this the worst case for the policy.
pub fn worst_case_events(policy: PollPolicy, total: u64) -> u64 {
    let per_phase = total / PHASES.len() as u64;
    let mut polls = 0;
    for _ in PHASES {
        let mut t = 0;
        while t < per_phase {
            t += policy.next_wait(t, u64::MAX);
            polls += 1;
        }
    }
    // Fixed part: start, validate, start-build, first choice, record, outcome, end.
    30 + polls * EVENTS_PER_POLL
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_phases_are_polled_at_the_minimum() {
        let p = PollPolicy::new(10, 300);
        assert_eq!(p.next_wait(0, 10_000), 10);
        assert_eq!(p.next_wait(49, 10_000), 10);
    }

    #[test]
    fn long_phases_back_off_up_to_the_maximum() {
        let p = PollPolicy::new(10, 300);
        assert_eq!(p.next_wait(100, 10_000), 20);
        assert_eq!(p.next_wait(1_000, 10_000), 200);
        assert_eq!(p.next_wait(100_000, 1_000_000), 300);
    }

    #[test]
    fn never_sleeps_far_past_the_deadline() {
        let p = PollPolicy::new(10, 300);
        assert_eq!(p.next_wait(100_000, 4), 5);
        assert_eq!(p.next_wait(100_000, 0), 1);
    }

    #[test]
    fn nonsense_bounds_are_repaired() {
        assert_eq!(PollPolicy::new(0, 0), PollPolicy::new(1, 1));
        assert_eq!(PollPolicy::new(20, 5).max_seconds, 20);
    }

    #[test]
    fn longest_build_stays_far_below_the_history_cap() {
        let events = worst_case_events(PollPolicy::new(10, 300), LONGEST_BUILD_SECONDS);
        println!("worst case for a 44 h build, min 10 s / max 300 s: {events} events");
        // 6,663 events: 27 % of the cap.
        assert!(events < HISTORY_CAP * 3 / 10, "{events}");
    }
}
