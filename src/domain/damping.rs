//! How often one job or rule may tell the channels: every change of state is told at once, up to
//! MAX_TOLD_PER_HOUR; past that, changes wait and the state as it then is gets told when the hour
//! allows, so a subject that flaps cannot flood the channels, and the last word sent is never a
//! state that no longer holds.

use serde::{Deserialize, Serialize};

pub const MAX_TOLD_PER_HOUR: usize = 10;
const HOUR: f64 = 3600.0;

/// What was last told about one job or rule, kept with its state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Told {
    /// The state last told; `None` before the first message.
    #[serde(default)]
    pub state: Option<String>,
    /// When the newest messages went out, oldest first, at most MAX_TOLD_PER_HOUR.
    #[serde(default)]
    pub at: Vec<f64>,
    /// A state not told yet for want of room in the hour, and when there will be room.
    #[serde(default)]
    pub owed_at: Option<f64>,
}

/// What to do about the state a subject is in now.
#[derive(Debug, Clone, PartialEq)]
pub enum Tell {
    /// Send a message: the change from the state last told.
    Now { from: Option<String> },
    /// Nothing to send.
    Nothing,
}

impl Told {
    /// Decides whether `current` is told now. `worth` says whether the change from the state last
    /// told (`None`: never told anything) deserves a message at all; the caller knows which
    /// states matter. Records what it decides.
    pub fn decide(&mut self, current: &str, worth: bool, now: f64) -> Tell {
        if !worth || self.state.as_deref() == Some(current) {
            // Back to what was last told (or to nothing worth a word) before any message went
            // out: nothing is owed any more.
            self.owed_at = None;
            return Tell::Nothing;
        }
        self.at.retain(|t| now - t < HOUR);
        if self.at.len() >= MAX_TOLD_PER_HOUR {
            self.owed_at = self.at.first().map(|oldest| oldest + HOUR);
            return Tell::Nothing;
        }
        let from = self.state.replace(current.to_string());
        self.at.push(now);
        self.owed_at = None;
        Tell::Now { from }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_told_at_once_while_the_hour_has_room() {
        let mut t = Told::default();
        assert_eq!(t.decide("firing", true, 0.0), Tell::Now { from: None });
        assert_eq!(t.decide("firing", true, 10.0), Tell::Nothing);
        assert_eq!(
            t.decide("ok", true, 20.0),
            Tell::Now {
                from: Some("firing".into())
            }
        );
        assert_eq!(t.decide("late", false, 30.0), Tell::Nothing);
    }

    #[test]
    fn a_subject_that_flaps_is_told_ten_times_an_hour_then_once_more_with_the_state_it_ended_in() {
        let mut t = Told::default();
        let mut told = 0;
        for i in 0..30 {
            let state = if i % 2 == 0 { "firing" } else { "ok" };
            if let Tell::Now { .. } = t.decide(state, true, i as f64 * 60.0) {
                told += 1;
            }
        }
        assert_eq!(told, MAX_TOLD_PER_HOUR);
        // The tenth message (i = 9) told "ok", and the flapping ended in "ok": nothing is owed.
        assert_eq!(t.state.as_deref(), Some("ok"));
        assert_eq!(t.owed_at, None);
        // Ending in the other state leaves it owed until the hour has room.
        assert_eq!(t.decide("firing", true, 1800.0), Tell::Nothing);
        assert_eq!(t.owed_at, Some(3600.0));
        assert_eq!(
            t.decide("firing", true, 3600.0),
            Tell::Now {
                from: Some("ok".into())
            }
        );
        assert_eq!(t.owed_at, None);
    }

    #[test]
    fn an_owed_change_that_reverts_is_no_longer_owed() {
        let mut t = Told::default();
        for i in 0..MAX_TOLD_PER_HOUR {
            t.decide(if i % 2 == 0 { "down" } else { "up" }, true, i as f64);
        }
        assert_eq!(t.state.as_deref(), Some("up"));
        assert_eq!(t.decide("down", true, 100.0), Tell::Nothing);
        assert!(t.owed_at.is_some());
        assert_eq!(t.decide("up", true, 200.0), Tell::Nothing);
        assert_eq!(t.owed_at, None);
    }
}
