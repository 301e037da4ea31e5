//! Driving the engine on one thread, without a network: for synchronous callers (unit tests,
//! the fuzzer, scripts). Disk jobs run inline; network jobs fail as if nothing answered.

use crate::job::{Connector, JobDone, JobId, NetEnd, NetFailure, NetJob, dispatch};
use crate::socket::{SocketFailure, SocketHandle, SocketOp};

/// A connector for hosts with no network: every exchange fails as if nothing answered, every
/// connect is unreachable and no name resolves (the fuzzer, and tests that never reach a
/// server).
#[derive(Debug, Default)]
pub struct NoNetwork {
    failed: Vec<(JobId, JobDone)>,
    unreachable: Vec<SocketHandle>,
    unresolved: Vec<JobId>,
    bound: Vec<SocketHandle>,
    sent: Vec<(SocketHandle, usize)>,
}

impl Connector for NoNetwork {
    fn start(&mut self, id: JobId, job: NetJob) {
        self.failed
            .push((id, job.finish(NetEnd::Failed(NetFailure::Connect))));
    }

    fn cancel(&mut self, _id: JobId) {}

    fn socket(&mut self, op: SocketOp) {
        match op {
            SocketOp::Connect { handle, .. } => self.unreachable.push(handle),
            SocketOp::Resolve { job, .. } => self.unresolved.push(job),
            // A port is bound, but nothing ever connects to it.
            SocketOp::Listen { handle, .. } => self.bound.push(handle),
            // Sent at once, to nowhere; nothing ever arrives.
            SocketOp::SendTo { handle, bytes, .. } | SocketOp::Send { handle, bytes } => {
                self.sent.push((handle, bytes.len()));
            }
            SocketOp::Resume { .. } | SocketOp::Close { .. } => {}
        }
    }
}

impl NoNetwork {
    /// The ends of the exchanges started since the last call.
    pub fn take_ended(&mut self) -> Vec<(JobId, JobDone)> {
        std::mem::take(&mut self.failed)
    }

    /// Reports the connects and lookups asked for since the last call as failed.
    pub fn report(&mut self, module: &mut crate::Module) {
        for handle in std::mem::take(&mut self.unreachable) {
            module.socket_failed(handle, SocketFailure::Unreachable);
        }
        for (handle, n) in std::mem::take(&mut self.sent) {
            module.socket_sent(handle, n);
        }
        for handle in std::mem::take(&mut self.bound) {
            module.socket_bound(handle);
        }
        for job in std::mem::take(&mut self.unresolved) {
            module.dns_answered(job, Err(SocketFailure::Dns));
        }
    }
}

/// What a driver drives: one AT [`crate::Channel`], or a [`crate::Link`] (plain, or
/// multiplexed after `AT+CMUX`). The methods are theirs.
pub trait Endpoint {
    /// [`crate::Channel::feed`].
    fn feed(
        &mut self,
        module: &mut crate::Module,
        input: &[u8],
        now: crate::Now,
        out: &mut Vec<u8>,
    );
    /// [`crate::Channel::poll`].
    fn poll(&mut self, module: &mut crate::Module, now: crate::Now, out: &mut Vec<u8>);
    /// [`crate::Channel::has_more`].
    fn has_more(&self) -> bool;
    /// [`crate::Channel::next_deadline`].
    fn next_deadline(&self, module: &crate::Module) -> Option<std::time::Instant>;
}

macro_rules! endpoint {
    ($($t:ty),*) => {$(
        impl Endpoint for $t {
            fn feed(&mut self, module: &mut crate::Module, input: &[u8], now: crate::Now, out: &mut Vec<u8>) {
                <$t>::feed(self, module, input, now, out)
            }
            fn poll(&mut self, module: &mut crate::Module, now: crate::Now, out: &mut Vec<u8>) {
                <$t>::poll(self, module, now, out)
            }
            fn has_more(&self) -> bool {
                <$t>::has_more(self)
            }
            fn next_deadline(&self, module: &crate::Module) -> Option<std::time::Instant> {
                <$t>::next_deadline(self, module)
            }
        }
    )*};
}

endpoint!(crate::Channel, crate::Link);

/// Drives `channel` to rest on one thread: runs the module's disk jobs inline, fails its
/// network jobs ([`NoNetwork`]), and polls until the channel has nothing more to say. Output
/// accumulates in `out` (the output limit applies per poll, so `out` is drained into the
/// returned bytes between polls). For synchronous callers: unit tests, the fuzzer, scripts.
pub fn settle<E: Endpoint + ?Sized>(
    module: &mut crate::Module,
    channel: &mut E,
    now: crate::Now,
    out: &mut Vec<u8>,
) {
    let mut network = NoNetwork::default();
    let mut answer = std::mem::take(out);
    let mut step = Vec::new();
    loop {
        let work = module.take_work();
        let idle = work.is_empty() && !channel.has_more();
        for (id, job) in dispatch(work, &mut network) {
            module.finish_job(id, job.run());
        }
        for (id, done) in network.take_ended() {
            module.finish_job(id, done);
        }
        network.report(module);
        if idle {
            break;
        }
        channel.poll(module, now, &mut step);
        answer.append(&mut step);
    }
    *out = answer;
}
