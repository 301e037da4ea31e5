//! `+UDNSRN` (the u-blox AT manual's DNS chapter): a name to an address, or an address to a
//! name, looked up by the edge (the host's resolver; testkit's scripted names) while the
//! command waits, as `+USOCO` does.

use std::net::IpAddr;

use sealcell_at::CmeError;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::socket::{DnsQuery, SocketOp, errno, refused};

/// The DNS commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+UDNSRN`: resolve.
    Resolve,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        (name == "+UDNSRN").then_some(Cmd::Resolve)
    }
}

/// The longest name `+UDNSRN` and `+USOCO` take (a DNS name is at most 253 characters).
pub const MAX_NAME: usize = 253;

/// How long `+UDNSRN` waits for the answer before it fails with `ETIMEDOUT` (ubxlib waits
/// 60 s; the edge's resolver gives up sooner).
pub const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `+UDNSRN=?`.
pub const TEST_RESPONSE: &str = "+UDNSRN: (0,1),\"domain_ip_string\"";

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match (cmd, form) {
        (Cmd::Resolve, Form::Set(args)) => {
            let mut r = args.reader();
            let kind = r.int(0..=1)?;
            let text = r.string(MAX_NAME)?;
            r.finish()?;
            let query = match kind {
                0 if !text.is_empty() => DnsQuery::Name(text.to_string()),
                1 => DnsQuery::Address(
                    text.parse::<IpAddr>()
                        .map_err(|_| CmeError::OperationNotSupported)?,
                ),
                _ => return Err(CmeError::OperationNotSupported),
            };
            if !ctx.module.radio.registered() {
                return Err(refused(ctx.module, errno::ENETUNREACH));
            }
            if ctx.module.faults.take_dns("+UDNSRN") {
                return Err(refused(ctx.module, errno::EHOSTUNREACH));
            }
            let job = ctx.module.await_reply(ctx.channel);
            let deadline = ctx.now.mono() + LOOKUP_TIMEOUT;
            ctx.module.sockets.lookups.push((job, deadline));
            ctx.module.queue_socket_op(SocketOp::Resolve { job, query });
            Ok(Outcome::Await)
        }
        (Cmd::Resolve, Form::Test) => {
            ctx.info(TEST_RESPONSE.as_bytes());
            Ok(Outcome::Done)
        }
        (_, form) => undefined_form(form),
    }
}
