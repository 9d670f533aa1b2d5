//! The pipeline's control methods (`PIPELINE_START` … `PIPELINE_TRAIN_NOW`), shared by the
//! socket and HTTP: each becomes a driver [`Command`]; the core accepts it or refuses it
//! with a reason. An accepted command is journaled with its caller (`pipeline_control`).

use super::pipeline::{Command, CommandError};
use super::reply::{self, Said};
use super::state::{Peer, Shared};
use heidi_common::JournalEntry;
use heidi_core::journal::{DAEMON_STAGE, PIPELINE_CONTROL, PipelineControl};
use heidi_core::pipeline::{Input, Mode};
use heidi_core::proto::{ErrorCode, HostRefusal, Method};
use heidi_core::service;

/// The command a pipeline method asks for, from the core's reading of its params;
/// `default_mode` is the configured mode, for a `PIPELINE_START` that names none.
pub(crate) fn command(method: Method, params: &str, default_mode: Mode) -> Result<Command, String> {
    match service::read_pipeline_call(method, params, default_mode) {
        Some(Ok(Input::Start(mode))) => Ok(Command::Start(mode)),
        Some(Ok(Input::Stop)) => Ok(Command::Stop),
        Some(Ok(Input::Pause)) => Ok(Command::Pause),
        Some(Ok(Input::Resume)) => Ok(Command::Resume),
        Some(Ok(Input::Reset)) => Ok(Command::Reset),
        Some(Ok(Input::TrainNow)) => Ok(Command::TrainNow),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(_)) | None => Err(format!("{method} is not a pipeline method")),
    }
}

impl Shared {
    /// Serves a `PIPELINE_*` method: `{"ok":true,"accepted":true,"status":{…}}` once the
    /// step is journaled, `REFUSED` with the core's reason when it does not apply. Returns
    /// what the reply says (a success: the command was carried out).
    pub(crate) async fn pipeline_call(
        &self,
        method: Method,
        params: &str,
        peer: &Peer,
        out: &mut Vec<u8>,
    ) -> Said {
        let command = match command(method, params, self.config.pipeline.settings.mode) {
            Ok(command) => command,
            Err(message) => return reply::error(ErrorCode::BadRequest, &message, out),
        };
        match self.pipeline_command(command, peer).await {
            Ok(()) => {
                let status = self.pipeline.status();
                reply::written(out, |w| service::write_accepted_reply(status.text(), w))
            }
            Err(e) => reply::refuse(&e.refusal(), out),
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
        let (method, mode) = method_of(command);
        let message = PipelineControl {
            method,
            mode,
            by: peer,
        }
        .to_string();
        let entry = JournalEntry::info(DAEMON_STAGE, PIPELINE_CONTROL, message);
        if let Err(e) = self.journal.append(entry).await {
            tracing::error!(error = %e, "a pipeline command was carried out but its caller could not be journaled");
        }
        Ok(())
    }
}

/// The method a command carries out, and `PIPELINE_START`'s mode.
fn method_of(command: Command) -> (Method, Option<Mode>) {
    match command {
        Command::Start(mode) => (Method::PipelineStart, Some(mode)),
        Command::Stop => (Method::PipelineStop, None),
        Command::Pause => (Method::PipelinePause, None),
        Command::Resume => (Method::PipelineResume, None),
        Command::Reset => (Method::PipelineReset, None),
        Command::TrainNow => (Method::PipelineTrainNow, None),
    }
}

/// A pipeline command that was not carried out.
pub(crate) struct Refused(CommandError);

impl Refused {
    /// The core's refusal: `REFUSED` when the command does not apply in the current state;
    /// `UNAVAILABLE` when the driver has stopped (shutdown).
    pub(crate) fn refusal(&self) -> HostRefusal<'_> {
        match self.0 {
            CommandError::Refused(_) => HostRefusal::PipelineRefused(self.0.reason()),
            CommandError::Stopped => HostRefusal::PipelineStopped(self.0.reason()),
        }
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
