//! What one upstream call carrying part of a batch means to the guarded call
//! ([`guard::Answer`](crate::guard::Answer)): a host that sends `sent` of its `waiting`
//! transactions in one call judges the call's outcome with [`judge_call`], so every host
//! settles a batch the same way.

use super::{BreakerInput, Class, Split, Verdict};
use crate::guard::Answer;

/// How a call carrying part of a batch ended, as the host read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallOutcome {
    /// The upstream answered each transaction sent, with a receipt of its own (checked:
    /// [`check_reply`](super::check_reply)).
    Receipts,
    /// The call failed, classified ([`classify`](super::classify)); a refusal carries how it
    /// splits the transactions sent ([`split_refusal`](super::split_refusal)).
    Failed {
        /// The failure's verdict.
        verdict: Verdict,
        /// How a refusal splits the call; `None` for any other failure.
        split: Option<Split>,
    },
}

/// The guard's answer for a call that carried `sent` of the `waiting` transactions of a
/// batch and ended with `outcome` (`random`: the jitter input of a retry's delay).
///
/// - Receipts for the whole batch: [`Answer::Succeeded`]; for part of it (more were waiting):
///   [`Answer::Partial`] with a success for the breaker, the rest go again.
/// - A refusal whose split leaves transactions to send again (more are waiting than fail):
///   [`Answer::Partial`] with the refusal's breaker input; otherwise, and for every other
///   failure, [`Answer::Failed`] with its verdict.
pub fn judge_call(waiting: usize, sent: usize, outcome: CallOutcome, random: u64) -> Answer {
    match outcome {
        CallOutcome::Receipts if waiting > sent => Answer::Partial(BreakerInput::Success),
        CallOutcome::Receipts => Answer::Succeeded,
        CallOutcome::Failed {
            verdict,
            split: Some(split),
        } if verdict.class == Class::Refusal && waiting > split.failing(sent) => {
            Answer::Partial(verdict.breaker)
        }
        CallOutcome::Failed { verdict, .. } => Answer::Failed { verdict, random },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Reason, classify, code, split_refusal};

    #[test]
    fn each_outcome_settles_as_the_rules_say() {
        assert_eq!(
            judge_call(3, 3, CallOutcome::Receipts, 0),
            Answer::Succeeded
        );
        assert_eq!(
            judge_call(4, 3, CallOutcome::Receipts, 0),
            Answer::Partial(BreakerInput::Success)
        );
        let refusal = classify(code::FAILED_PRECONDITION, Reason::None);
        assert_eq!(refusal.class, Class::Refusal);
        let fail_one = split_refusal(["a", "b", "c"].into_iter(), Some(1));
        assert_eq!(fail_one.failing(3), 1);
        let refused = |split| CallOutcome::Failed {
            verdict: refusal,
            split: Some(split),
        };
        assert_eq!(
            judge_call(3, 3, refused(fail_one), 9),
            Answer::Partial(refusal.breaker)
        );
        assert_eq!(
            judge_call(3, 3, refused(Split::OneByOne), 9),
            Answer::Partial(refusal.breaker)
        );
        let failed = Answer::Failed {
            verdict: refusal,
            random: 9,
        };
        assert_eq!(judge_call(3, 3, refused(Split::FailAll), 9), failed);
        assert_eq!(judge_call(1, 1, refused(fail_one), 9), failed);
        let down = classify(code::UNAVAILABLE, Reason::None);
        let outage = CallOutcome::Failed {
            verdict: down,
            split: None,
        };
        assert_eq!(
            judge_call(5, 2, outage, 4),
            Answer::Failed {
                verdict: down,
                random: 4
            }
        );
    }
}
