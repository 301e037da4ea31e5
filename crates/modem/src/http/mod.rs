//! The module's HTTP(S) client (at-contract §5): `+UHTTP` profiles 0..3 (volatile, as on the
//! real module), the last error of each (`+UHTTPER`), and the requests in flight.
//!
//! A request is a [`crate::job::NetJob`]: [`wire`] formats it and parses the response,
//! [`sink`] stores it; the connection itself is the edge's. This module keeps the bookkeeping:
//! which profile is busy, until when, and what to tell the channel that asked.

pub mod sink;
pub mod wire;

use std::collections::BTreeMap;
use std::time::Instant;

use sealcell_at::commands::Md5Digest;
use sealcell_at::commands::uhttp::{
    HttpAuthentication, HttpCommand, HttpProfileId, HttpRequestResult, HttpTimeout,
};
use sealcell_at::commands::usecprf::SecProfileId;
use zeroize::Zeroizing;

use crate::ids::ChannelId;
use crate::job::{Abandoned, JobId};

/// Number of HTTP profiles (**0..3**).
pub const HTTP_PROFILES: usize = HttpProfileId::COUNT as usize;

/// Op 7's default: 180 s (the cap on a request that never set one).
pub const DEFAULT_TIMEOUT: HttpTimeout = match HttpTimeout::new(180) {
    Some(t) => t,
    None => panic!("180 s is a valid op 7 timeout"),
};

/// One `+UHTTP` profile. `Debug` leaves the password out.
#[derive(Clone)]
pub struct HttpProfile {
    /// op 0.
    pub server_ip: String,
    /// op 1.
    pub server_name: String,
    /// op 2.
    pub user: String,
    /// op 3 (memory only, write-only).
    pub password: Zeroizing<String>,
    /// op 4: 0 none, 1 basic.
    pub auth: HttpAuthentication,
    /// op 5 (None: 80, or 443 with TLS).
    pub port: Option<u16>,
    /// op 6: TLS on, and with which `+USECPRF` profile.
    pub secure: bool,
    /// op 6, second value.
    pub security_profile: SecProfileId,
    /// op 7: the request's deadline, for the whole exchange.
    pub timeout: HttpTimeout,
    /// op 9: custom headers 0..4.
    pub headers: [Option<(String, String)>; 5],
}

impl std::fmt::Debug for HttpProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProfile")
            .field("server_ip", &self.server_ip)
            .field("server_name", &self.server_name)
            .field("user", &self.user)
            .field("password_set", &!self.password.is_empty())
            .field("auth", &self.auth)
            .field("port", &self.port)
            .field("secure", &self.secure)
            .field("security_profile", &self.security_profile)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers)
            .finish()
    }
}

impl Default for HttpProfile {
    fn default() -> Self {
        HttpProfile {
            server_ip: String::new(),
            server_name: String::new(),
            user: String::new(),
            password: Zeroizing::new(String::new()),
            auth: HttpAuthentication::NoAuthentication,
            port: None,
            secure: false,
            security_profile: SecProfileId::default(),
            timeout: DEFAULT_TIMEOUT,
            headers: Default::default(),
        }
    }
}

/// `+UHTTPER` classes and codes (documented in docs/uhttper.md).
pub mod err {
    /// No error.
    pub const NONE: (u8, u16) = (0, 0);
    /// The server name did not resolve.
    pub const DNS: (u8, u16) = (3, 10);
    /// The connection could not be made.
    pub const CONNECT: (u8, u16) = (3, 11);
    /// No answer within the profile's timeout.
    pub const TIMEOUT: (u8, u16) = (3, 12);
    /// The connection ended before the response was complete.
    pub const TRUNCATED: (u8, u16) = (3, 13);
    /// The response is not HTTP.
    pub const MALFORMED: (u8, u16) = (3, 14);
    /// The response is larger than the free space.
    pub const TOO_LARGE: (u8, u16) = (3, 15);
    /// Command 100: the server answered with a status other than 2xx.
    pub const HTTP_STATUS: (u8, u16) = (3, 16);
    /// Any TLS failure: handshake, suite, version, trust, hostname, dates, pinning.
    pub const TLS: (u8, u16) = (3, 73);
    /// No server name or address in the profile.
    pub const NO_SERVER: (u8, u16) = (10, 1);
    /// The file to send does not exist.
    pub const NO_FILE: (u8, u16) = (10, 2);
    /// The response could not be stored.
    pub const STORAGE: (u8, u16) = (10, 3);
}

/// A request in flight.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) channel: ChannelId,
    pub(crate) profile: HttpProfileId,
    pub(crate) cmd: HttpCommand,
    /// `None` once the job's commit has begun: it will end on its own.
    pub(crate) deadline: Option<Instant>,
    pub(crate) abandoned: Abandoned,
}

/// The HTTP state of the module (volatile).
#[derive(Default)]
pub struct HttpState {
    pub(crate) profiles: [HttpProfile; HTTP_PROFILES],
    pub(crate) errors: [(u8, u16); HTTP_PROFILES],
    pub(crate) in_flight: BTreeMap<JobId, InFlight>,
}

impl std::fmt::Debug for HttpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpState")
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

impl HttpState {
    /// Whether profile `p` has a request in flight.
    pub(crate) fn is_busy(&self, p: usize) -> bool {
        self.in_flight.values().any(|r| r.profile.index() == p)
    }

    /// The `+UUHTTPCR` URC of a finished request, and the channel it goes to; records the
    /// profile's last error.
    pub(crate) fn finished(
        &mut self,
        id: JobId,
        done: &sink::HttpDone,
    ) -> Option<(ChannelId, String)> {
        let req = self.in_flight.remove(&id)?;
        self.errors[req.profile.index()] = done.error;
        Some((req.channel, result_urc(&req, done)))
    }

    /// Fails every request whose deadline has passed: their ids (to cancel) and URCs.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(JobId, ChannelId, String)> {
        let late: Vec<JobId> = self
            .in_flight
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        if !late.is_empty() {
            tracing::info!(requests = late.len(), "HTTP request deadline passed");
        }
        self.fail(late, err::TIMEOUT)
    }

    /// Fails requests `ids` with `error`: their ids (to cancel), channels and URCs. One whose
    /// commit has begun ends (and is reported) on its own, shortly.
    fn fail(&mut self, ids: Vec<JobId>, error: (u8, u16)) -> Vec<(JobId, ChannelId, String)> {
        let mut ended = Vec::new();
        for id in ids {
            let Some(req) = self.in_flight.get_mut(&id) else {
                continue;
            };
            if !req.abandoned.give_up() {
                req.deadline = None;
                continue;
            }
            let Some(req) = self.in_flight.remove(&id) else {
                continue;
            };
            self.errors[req.profile.index()] = error;
            ended.push((
                id,
                req.channel,
                result_urc(&req, &sink::HttpDone::failed(error)),
            ));
        }
        ended
    }

    /// The earliest deadline of the requests `channel` started.
    pub(crate) fn next_deadline(&self, channel: ChannelId) -> Option<Instant> {
        self.in_flight
            .values()
            .filter(|r| r.channel == channel)
            .filter_map(|r| r.deadline)
            .min()
    }

    /// Fails every request with `error` (the network gone): their ids, to cancel, with the
    /// channel and URC of each.
    pub(crate) fn fail_all(&mut self, error: (u8, u16)) -> Vec<(JobId, ChannelId, String)> {
        let ids: Vec<JobId> = self.in_flight.keys().copied().collect();
        self.fail(ids, error)
    }

    /// Abandons every request (a reboot): their ids, to cancel.
    pub(crate) fn abandon_all(&mut self) -> Vec<JobId> {
        let all = std::mem::take(&mut self.in_flight);
        all.into_iter()
            .map(|(id, r)| {
                // A commit already begun may complete, like power lost just after it (or fail,
                // if the reboot's clean-up removed its temporary file first).
                r.abandoned.give_up();
                id
            })
            .collect()
    }
}

fn result_urc(req: &InFlight, done: &sink::HttpDone) -> String {
    outcome_urc(req.profile, req.cmd, done)
}

/// The `+UUHTTPCR` of a request of `cmd` on `profile` that ended as `done` says.
pub(crate) fn outcome_urc(
    profile: HttpProfileId,
    cmd: HttpCommand,
    done: &sink::HttpDone,
) -> String {
    let success = done.error == err::NONE;
    let result = if cmd == HttpCommand::FirmwareDownload {
        HttpRequestResult::FirmwareDownload {
            profile,
            success,
            status: done.status,
            md5: done.md5.map(Md5Digest),
        }
    } else {
        HttpRequestResult::Request {
            profile,
            command: cmd,
            success,
        }
    };
    result.to_string()
}
