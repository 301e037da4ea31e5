//! What the edge reports of the network, and the socket events the engine raises itself
//! (connect timeouts, registration loss): each updates the table, answers a waiting
//! `+USOCO` or `+UDNSRN`, and queues the URCs the manual sends.

use std::net::SocketAddr;
use std::time::Instant;

use super::{Protocol, SocketFailure, SocketHandle, SocketOp, SocketState, errno};
use crate::command::{Continuation, Ctx, Outcome};
use crate::ids::JobId;
use crate::module::Module;

impl Module {
    /// The edge connected socket `handle` to `remote` (and ran its TLS handshake): its
    /// `+USOCO` answers `OK`.
    pub fn socket_connected(&mut self, handle: SocketHandle, remote: SocketAddr) {
        let Some(s) = self.socket_by_handle(handle) else {
            return;
        };
        let SocketState::Connecting { waiter, .. } = s.state else {
            return;
        };
        s.state = SocketState::Connected;
        s.remote = Some(remote);
        s.last_error = errno::NONE;
        tracing::debug!(handle = handle.0, %remote, "socket connected");
        self.reply(waiter, succeeded());
    }

    /// The edge bound listening socket `handle`'s port: its `+USOLI` answers `OK`.
    pub fn socket_bound(&mut self, handle: SocketHandle) {
        let Some(s) = self.socket_by_handle(handle) else {
            return;
        };
        let SocketState::Binding { waiter, .. } = s.state else {
            return;
        };
        s.state = SocketState::Listening;
        s.last_error = errno::NONE;
        self.reply(waiter, succeeded());
    }

    /// The network failed socket `handle`; the edge has forgotten it. A connect in progress
    /// fails (`+USOCO` answers an error, the code in `+USOER`); an established socket is
    /// closed, with `+UUSOCL`.
    pub fn socket_failed(&mut self, handle: SocketHandle, failure: SocketFailure) {
        let Some(id) = self.sockets.id_of(handle) else {
            return;
        };
        let code = failure.errno();
        tracing::debug!(handle = handle.0, ?failure, "socket failed");
        let Some(s) = self.sockets.get_mut(id) else {
            return;
        };
        s.last_error = code;
        s.at_edge = false;
        match s.state {
            SocketState::Connecting { waiter, .. } | SocketState::Binding { waiter, .. } => {
                self.abort_attempt(id, waiter, code);
            }
            // The peer closed already (the edge was still sending what the host wrote): what
            // it sent stays readable, and `+UUSOCL` still comes once it has been read.
            SocketState::PeerClosed => {}
            _ => self.close_socket(id, true),
        }
    }

    /// The edge received `bytes` on socket `handle` (from `from`, on UDP). Returns the room
    /// left in its buffer: the edge reads no more than that, and waits for a
    /// [`SocketOp::Resume`] at zero. A datagram that does not fit is dropped.
    pub fn socket_received(
        &mut self,
        handle: SocketHandle,
        from: Option<SocketAddr>,
        bytes: &[u8],
    ) -> usize {
        let Some(id) = self.sockets.id_of(handle) else {
            return 0;
        };
        let Some(s) = self.sockets.get_mut(id) else {
            return 0;
        };
        let was_empty = s.pending() == 0;
        let room = match (s.protocol, from.or(s.remote)) {
            (Protocol::Udp, Some(from)) => {
                if !s.take_datagram(from, bytes) {
                    tracing::debug!(handle = handle.0, len = bytes.len(), "datagram dropped");
                }
                s.room()
            }
            (Protocol::Udp, None) => s.room(),
            (Protocol::Tcp, _) => match s.cut_left {
                Some(left) if (bytes.len() as u64) >= left => {
                    // The bench cuts the stream here: what came before is all there is, and
                    // the socket ends as if its peer had gone.
                    let fits = usize::try_from(left).unwrap_or(usize::MAX);
                    s.take_stream(&bytes[..fits]);
                    s.cut_left = None;
                    tracing::info!(
                        handle = handle.0,
                        bytes = fits,
                        "socket stream cut (cut-after)"
                    );
                    let handle = s.handle;
                    let announce = was_empty && s.pending() > 0;
                    if announce {
                        self.announce_data(id);
                    }
                    self.queue_socket_op(SocketOp::Close { handle });
                    self.socket_closed(handle);
                    return 0;
                }
                Some(left) => {
                    s.cut_left = Some(left - bytes.len() as u64);
                    s.take_stream(bytes)
                }
                None => s.take_stream(bytes),
            },
        };
        // The manual's rule: a URC when data comes into an empty buffer (and after a read
        // that leaves some): one per read at most, however the data trickles in.
        if was_empty && s.pending() > 0 {
            self.announce_data(id);
        }
        room
    }

    /// The edge sent `n` of the bytes written to socket `handle`.
    pub fn socket_sent(&mut self, handle: SocketHandle, n: usize) {
        if let Some(s) = self.socket_by_handle(handle) {
            s.unsent = s.unsent.saturating_sub(n);
            s.sent += n as u64;
        }
    }

    /// The peer closed TCP socket `handle` (the end of its stream); the edge has forgotten
    /// it. What is buffered can still be read; `+UUSOCL` comes once it has been.
    pub fn socket_closed(&mut self, handle: SocketHandle) {
        let Some(id) = self.sockets.id_of(handle) else {
            return;
        };
        let Some(s) = self.sockets.get_mut(id) else {
            return;
        };
        s.at_edge = false;
        tracing::debug!(
            handle = handle.0,
            pending = s.pending(),
            "socket closed by the peer"
        );
        if let SocketState::Connecting { waiter, .. } = s.state {
            self.abort_attempt(id, waiter, errno::ECONNRESET);
            return;
        }
        s.state = SocketState::PeerClosed;
        if s.pending() == 0 {
            self.close_socket(id, true);
        }
    }

    /// Listening socket `listener` accepted a connection from `remote` on `local`: it gets a
    /// socket of its own, announced with `+UUSOLI`. `None` (the edge closes the connection)
    /// when all seven sockets are in use.
    pub fn socket_accepted(
        &mut self,
        listener: SocketHandle,
        remote: SocketAddr,
        local: SocketAddr,
    ) -> Option<SocketHandle> {
        let listening = self.sockets.id_of(listener)?;
        let owner = self.sockets.get(listening)?.owner;
        let Some(id) = self.sockets.create(Protocol::Tcp, owner) else {
            tracing::debug!(%remote, "connection refused: every socket is in use");
            return None;
        };
        let s = self.sockets.get_mut(id)?;
        s.state = SocketState::Connected;
        s.remote = Some(remote);
        s.local_port = Some(local.port());
        s.at_edge = true;
        let handle = s.handle;
        let urc = format!(
            "+UUSOLI: {id},\"{}\",{},{listening},\"{}\",{}",
            remote.ip(),
            remote.port(),
            self.pdp_address(),
            local.port()
        );
        self.post_socket_urc(owner, urc);
        Some(handle)
    }

    /// The answer to lookup `job`: an address or a name, or why there is none.
    pub fn dns_answered(&mut self, job: JobId, answer: Result<String, SocketFailure>) {
        let before = self.sockets.lookups.len();
        self.sockets.lookups.retain(|(j, _)| *j != job);
        if self.sockets.lookups.len() == before {
            // Given up on already (its deadline, registration lost, a reboot).
            return;
        }
        // What a resolver returns goes between quotes: a name with anything but what a
        // host name or an address has would break the host's parser.
        let answer = answer.and_then(|found| {
            let fits = !found.is_empty()
                && found.len() <= crate::command::dns::MAX_NAME
                && found
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
            if fits {
                Ok(found)
            } else {
                Err(SocketFailure::Dns)
            }
        });
        let then: Continuation = match answer {
            Ok(found) => Box::new(move |ctx: &mut Ctx<'_>| {
                ctx.module.sockets.last_error = errno::NONE;
                ctx.info_fmt(format_args!("+UDNSRN: \"{found}\""));
                Ok(Outcome::Done)
            }),
            Err(why) => {
                tracing::debug!(?why, "lookup failed");
                connect_failed(why.errno())
            }
        };
        self.reply(job, then);
    }

    /// Fails the connects, listens and lookups whose deadline has passed (`ETIMEDOUT`),
    /// closing them at the edge.
    pub(crate) fn expire_connects(&mut self, now: Instant) {
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.sockets.lookups)
            .into_iter()
            .partition(|(_, deadline)| *deadline <= now);
        self.sockets.lookups = waiting;
        for (job, _) in due {
            self.reply(job, connect_failed(errno::ETIMEDOUT));
        }
        let due: Vec<u8> = self
            .sockets
            .iter()
            .filter(|(_, s)| match s.state {
                SocketState::Connecting { deadline, .. }
                | SocketState::Binding { deadline, .. } => deadline <= now,
                _ => false,
            })
            .map(|(id, _)| id)
            .collect();
        for id in due {
            let Some(s) = self.sockets.get_mut(id) else {
                continue;
            };
            let (SocketState::Connecting { waiter, .. } | SocketState::Binding { waiter, .. }) =
                s.state
            else {
                continue;
            };
            self.abort_attempt(id, waiter, errno::ETIMEDOUT);
        }
    }

    /// Ends socket `id`'s connect or listen attempt with `code`: back to created, the edge
    /// told to close it if it still runs it, and the waiting command answered with the error.
    fn abort_attempt(&mut self, id: u8, waiter: JobId, code: u16) {
        let Some(s) = self.sockets.get_mut(id) else {
            return;
        };
        s.state = SocketState::Created;
        s.last_error = code;
        if std::mem::take(&mut s.at_edge) {
            let op = SocketOp::Close { handle: s.handle };
            self.queue_socket_op(op);
        }
        // Whatever else the edge says of that attempt (a report already on its way, the
        // edge's own timeout at the same instant) names a handle no socket has.
        self.sockets.rehandle(id);
        self.reply(waiter, connect_failed(code));
    }

    /// Closes every socket and ends every lookup: registration lost (`urc`: each socket
    /// that was open says `+UUSOCL`) or a reboot.
    pub(crate) fn close_all_sockets(&mut self, urc: bool) {
        for (job, _) in std::mem::take(&mut self.sockets.lookups) {
            self.reply(job, connect_failed(errno::ENETUNREACH));
        }
        let ids: Vec<u8> = self.sockets.iter().map(|(id, _)| id).collect();
        for id in ids {
            let state = self.sockets.get(id).map(|s| s.state);
            match state {
                Some(
                    SocketState::Connecting { waiter, .. } | SocketState::Binding { waiter, .. },
                ) => {
                    // Its command's error says it; no URC besides.
                    self.reply(waiter, connect_failed(errno::ENETUNREACH));
                    self.close_socket(id, false);
                }
                // Never connected, bound or listening: nothing to announce.
                Some(SocketState::Created) => self.close_socket(id, false),
                _ => self.close_socket(id, urc),
            }
        }
    }

    /// Frees socket `id`, telling the edge, and its owner with `+UUSOCL` when `urc`.
    pub(crate) fn close_socket(&mut self, id: u8, urc: bool) {
        let owner = self.sockets.get(id).map(|s| s.owner);
        if let Some(op) = self.sockets.remove(id) {
            self.queue_socket_op(op);
        }
        if let (true, Some(owner)) = (urc, owner) {
            self.post_socket_urc(owner, format!("+UUSOCL: {id}"));
        }
    }

    /// Sends socket `id`'s owner `+UUSORD` (TCP) or `+UUSORF` (UDP) with what is unread.
    pub(crate) fn announce_data(&mut self, id: u8) {
        let Some(s) = self.sockets.get(id) else {
            return;
        };
        let (owner, pending) = (s.owner, s.pending());
        let urc = match s.protocol {
            Protocol::Tcp => format!("+UUSORD: {id},{pending}"),
            Protocol::Udp => format!("+UUSORF: {id},{pending}"),
        };
        self.post_socket_urc(owner, urc);
    }

    fn socket_by_handle(&mut self, handle: SocketHandle) -> Option<&mut super::Socket> {
        let id = self.sockets.id_of(handle)?;
        self.sockets.get_mut(id)
    }

    /// Queues a socket's URC for its owner, or for every channel once the owner is gone (a
    /// host that reconnects still hears of its sockets).
    pub(crate) fn post_socket_urc(&mut self, owner: crate::ChannelId, urc: String) {
        if self.has_channel(owner) {
            self.post_urc(owner, urc.into_bytes());
        } else {
            self.broadcast_urc(urc.as_bytes());
        }
    }
}

/// The end of a `+USOCO`, `+USOLI` or `+UDNSRN` that worked: `+USOER` says 0 after it.
fn succeeded() -> Continuation {
    Box::new(|ctx: &mut Ctx<'_>| {
        ctx.module.sockets.last_error = errno::NONE;
        Ok(Outcome::Done)
    })
}

/// The end of a `+USOCO`, `+USOLI` or `+UDNSRN` that failed with `code`.
pub(crate) fn connect_failed(code: u16) -> Continuation {
    Box::new(move |ctx: &mut Ctx<'_>| Err(super::refused(ctx.module, code)))
}
