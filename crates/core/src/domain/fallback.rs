//! How long a build waits for CodeBuild's completion event before it looks for itself.
//!
//! The wait (AwaitBuild) is a task-token callback: CodeBuild's "Build State Change" event ends
//! it, whatever the build's length, at a fixed cost in state transitions. CodeBuild delivers
//! events best effort, so the wait has a timeout: the callback timeout (a template parameter),
//! never past the build's deadline. When it runs out, CheckBuild looks once and the build
//! either finishes or waits again. Each such fallback round costs [`EVENTS_PER_FALLBACK_ROUND`]
//! history events, so the longest build CodeBuild allows, with every event lost, stays far
//! below the 25,000-event history cap at the parameter's minimum (see [`worst_case_events`]).

/// The callback timeout when none is configured: the template parameter's default.
pub const DEFAULT_CALLBACK_TIMEOUT_SECONDS: u64 = 600;
/// The template parameter's minimum: the history bound below is computed for it.
pub const MIN_CALLBACK_TIMEOUT_SECONDS: u64 = 300;
/// A fallback round: AwaitBuild times out (entered, scheduled, started, submitted, timed out,
/// exited), CheckBuild looks (entered, scheduled, started, succeeded, exited), BuildFinished
/// chooses (entered, exited).
pub const EVENTS_PER_FALLBACK_ROUND: u64 = 13;
/// An execution whose completion event arrives: started; ValidateRequest, StartBuild (5 each);
/// BuildStarted (2); AwaitBuild (entered, scheduled, started, submitted, succeeded, exited);
/// CheckBuild (5: the completion only wakes the execution up); BuildFinished (2); RecordResult
/// (5); Outcome, Done (2 each); succeeded.
pub const EVENTS_WITH_CALLBACK: u64 = 36;
/// Step Functions' hard cap on one execution's history.
pub const HISTORY_CAP: u64 = 25_000;
/// CodeBuild's longest build timeout (36 h) plus its longest queue timeout (8 h).
pub const LONGEST_BUILD_SECONDS: u64 = (2160 + 480) * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// The longest one callback wait lasts before CheckBuild looks.
    pub timeout_seconds: u64,
}

impl Default for Fallback {
    fn default() -> Self {
        Self::new(DEFAULT_CALLBACK_TIMEOUT_SECONDS)
    }
}

impl Fallback {
    pub fn new(timeout_seconds: u64) -> Self {
        Self {
            timeout_seconds: timeout_seconds.max(1),
        }
    }

    /// AwaitBuild's `TimeoutSecondsPath`: the callback timeout, but never past the deadline
    /// (wake up right after it, so CheckBuild stops the build then), and at least 1.
    pub fn await_seconds(&self, seconds_to_deadline: u64) -> u64 {
        self.timeout_seconds
            .min(seconds_to_deadline.saturating_add(1))
            .max(1)
    }
}

/// History events of an execution whose build runs `total` seconds and none of whose events
/// arrive: every wait runs to its timeout.
pub fn worst_case_events(fallback: Fallback, total: u64) -> u64 {
    EVENTS_WITH_CALLBACK + total.div_ceil(fallback.timeout_seconds) * EVENTS_PER_FALLBACK_ROUND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_the_callback_timeout_while_the_deadline_is_far() {
        let f = Fallback::new(600);
        assert_eq!(f.await_seconds(10_000), 600);
    }

    #[test]
    fn never_waits_far_past_the_deadline() {
        let f = Fallback::new(600);
        assert_eq!(f.await_seconds(30), 31);
        assert_eq!(f.await_seconds(0), 1);
    }

    #[test]
    fn a_nonsense_timeout_is_repaired() {
        assert_eq!(Fallback::new(0).timeout_seconds, 1);
        assert_eq!(Fallback::default().timeout_seconds, 600);
    }

    #[test]
    fn a_build_with_its_events_costs_the_same_whatever_its_length() {
        // The callback path has no per-length term: only lost events add rounds.
        assert_eq!(
            worst_case_events(Fallback::new(600), 0),
            EVENTS_WITH_CALLBACK
        );
    }

    #[test]
    fn longest_build_with_every_event_lost_stays_far_below_the_history_cap() {
        let f = Fallback::new(MIN_CALLBACK_TIMEOUT_SECONDS);
        let events = worst_case_events(f, LONGEST_BUILD_SECONDS);
        println!("worst case for a 44 h build, every event lost, timeout 300 s: {events} events");
        // 6,900 events: 28 % of the cap (at the default 600 s: 3,468, 14 %).
        assert!(events < HISTORY_CAP * 3 / 10, "{events}");
        assert_eq!(
            worst_case_events(Fallback::default(), LONGEST_BUILD_SECONDS),
            3_468
        );
    }
}
