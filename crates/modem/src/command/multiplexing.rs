//! `+CMUX` (at-contract §10): starts 27.010 multiplexing on the link the command came in on.
//! The handler only checks and answers; the switch itself is the link's
//! ([`crate::link::Link`]), once the `OK` is out.

use sealcell_at::CmeError;
use sealcell_at::commands::Wire;
use sealcell_at::commands::cmux::{CmuxCommand, TEST_RESPONSE};
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};

/// A multiplexing command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+CMUX`.
    Cmux,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        (name == "+CMUX").then_some(Cmd::Cmux)
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    let Cmd::Cmux = cmd;
    let running = ctx.module.multiplexer(ctx.channel);
    match form {
        Form::Set(args) => {
            // TS 27.007: not while the multiplexer runs (a DLCI cannot start another).
            if running.is_some() {
                return Err(CmeError::OperationNotAllowed);
            }
            let command = CmuxCommand::parse(args.as_str())?;
            Ok(Outcome::Multiplex(command.status()))
        }
        // The parameters in force; there are none before the multiplexer starts (u-blox:
        // "operation not allowed").
        Form::Read => {
            let status = running.ok_or(CmeError::OperationNotAllowed)?;
            ctx.info(status.to_string().as_bytes());
            Ok(Outcome::Done)
        }
        Form::Test => {
            ctx.info(TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        other => undefined_form(other),
    }
}
