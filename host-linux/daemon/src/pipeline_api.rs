//! The pipeline's control methods (`PIPELINE_START` … `PIPELINE_TRAIN_NOW`), shared by the
//! socket and HTTP: each becomes a driver [`Command`]; the core accepts it or refuses it
//! with a reason. An accepted command is journaled with its caller (`pipeline_control`).

use super::audit::Outcome;
use super::pipeline::{Command, CommandError};
use super::reply;
use super::state::{Peer, Shared};
use heidi_common::JournalEntry;
use heidi_core::pipeline::Mode;
use heidi_core::proto::params::Members;
use heidi_core::proto::{ErrorCode, Method};
use serde_json::json;

/// The command a pipeline method asks for; `params` may name the `mode` of
/// `PIPELINE_START` (`collect` or `full`; default: the configured mode).
pub(crate) fn command(method: Method, params: &str, default_mode: Mode) -> Result<Command, String> {
    let mut mode = None;
    for member in Members::new(params) {
        let member = member.map_err(|e| format!("params: invalid JSON at byte {}", e.at_byte))?;
        match (method, member.name()) {
            (Method::PipelineStart, Some("mode")) if mode.is_none() => {
                mode = Some(match member.as_plain_str() {
                    Some("collect") => Mode::Collect,
                    Some("full") => Mode::Full,
                    _ => return Err("params.mode: must be \"collect\" or \"full\"".to_owned()),
                });
            }
            (_, name) => {
                return Err(format!(
                    "params.{}: unknown or repeated field",
                    name.unwrap_or("?")
                ));
            }
        }
    }
    Ok(match method {
        Method::PipelineStart => Command::Start(mode.unwrap_or(default_mode)),
        Method::PipelineStop => Command::Stop,
        Method::PipelinePause => Command::Pause,
        Method::PipelineResume => Command::Resume,
        Method::PipelineReset => Command::Reset,
        _ => Command::TrainNow,
    })
}

impl Shared {
    /// Serves a `PIPELINE_*` method: `{"ok":true,"accepted":true,"status":{…}}` once the
    /// step is journaled, `REFUSED` with the core's reason when it does not apply. Returns
    /// whether the command was carried out, for the audit.
    pub(crate) async fn pipeline_call(
        &self,
        method: Method,
        params: &str,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let command = match command(method, params, self.config.pipeline.settings.mode) {
            Ok(command) => command,
            Err(message) => {
                reply::error(ErrorCode::BadRequest, &message, out);
                return Outcome::Refused;
            }
        };
        match self.pipeline_command(command, peer).await {
            Ok(()) => {
                let status = self.pipeline.status();
                reply::json(
                    &json!({"ok": true, "accepted": true, "status": status}),
                    out,
                );
                Outcome::CarriedOut
            }
            Err(e) => {
                reply::error(e.code(), &e.message(), out);
                Outcome::Refused
            }
        }
    }

    /// Carries out a pipeline command for `peer`; once accepted, journals who asked for it
    /// (a `pipeline_control` event) before answering.
    pub(crate) async fn pipeline_command(
        &self,
        command: Command,
        peer: &Peer,
    ) -> Result<(), Refused> {
        self.pipeline.command(command).await.map_err(Refused)?;
        let message = format!("{} accepted (by {peer})", describe(command));
        let entry = JournalEntry::info("daemon", "pipeline_control", message);
        if let Err(e) = self.journal.append(entry).await {
            tracing::error!(error = %e, "a pipeline command was carried out but its caller could not be journaled");
        }
        Ok(())
    }
}

/// A command as its method names it: `PIPELINE_START mode=full`, `PIPELINE_STOP`, ….
fn describe(command: Command) -> String {
    let method = match command {
        Command::Start(mode) => {
            let mode = match mode {
                Mode::Collect => "collect",
                Mode::Full => "full",
            };
            return format!("{} mode={mode}", Method::PipelineStart);
        }
        Command::Stop => Method::PipelineStop,
        Command::Pause => Method::PipelinePause,
        Command::Resume => Method::PipelineResume,
        Command::Reset => Method::PipelineReset,
        Command::TrainNow => Method::PipelineTrainNow,
    };
    method.as_str().to_owned()
}

/// A pipeline command that was not carried out.
pub(crate) struct Refused(CommandError);

impl Refused {
    /// `REFUSED` when the command does not apply in the current state; `UNAVAILABLE` when the
    /// driver has stopped (shutdown).
    pub(crate) fn code(&self) -> ErrorCode {
        match self.0 {
            CommandError::Refused(_) => ErrorCode::Refused,
            CommandError::Stopped => ErrorCode::Unavailable,
        }
    }

    /// The reason.
    pub(crate) fn message(&self) -> String {
        self.0.reason().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_become_commands() {
        let c = |m, p| command(m, p, Mode::Collect);
        assert_eq!(
            c(Method::PipelineStart, "{}"),
            Ok(Command::Start(Mode::Collect))
        );
        assert_eq!(
            c(Method::PipelineStart, r#"{"mode":"full"}"#),
            Ok(Command::Start(Mode::Full))
        );
        assert_eq!(c(Method::PipelineTrainNow, "{}"), Ok(Command::TrainNow));
        assert_eq!(c(Method::PipelineReset, " { } "), Ok(Command::Reset));
        assert!(
            c(Method::PipelineStart, r#"{"mode":"fast"}"#)
                .unwrap_err()
                .contains("params.mode")
        );
        assert!(
            c(Method::PipelineStop, r#"{"mode":"full"}"#)
                .unwrap_err()
                .contains("params.mode")
        );
        assert!(c(Method::PipelineStart, r#"{"mode":"full","mode":"full"}"#).is_err());
        assert!(c(Method::PipelinePause, "{").is_err());
    }
}
