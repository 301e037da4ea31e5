//! The socket commands (at-contract §8; the u-blox AT manual's "Internet protocol transport
//! layer" chapter): `+USOCR`, `+USOSEC`, `+USOCO`, `+USOWR`, `+USOST`, `+USORD`, `+USORF`,
//! `+USOLI`, `+USOCL`, `+USOER`, `+USOCTL`, `+USOSO`, `+USOGO`.
//!
//! A command that the socket's state refuses answers `+CME ERROR: 3` and leaves the reason
//! in `+USOER` (and `+USOCTL=<s>,1`), as the manual's socket error table numbers it; arguments
//! that do not parse answer `+CME ERROR: 4`, as every command does. `+USOCO` waits for the
//! edge's connection (and TLS handshake), at most [`CONNECT_TIMEOUT`]; the others answer at
//! once. Data in and out is text, or hex with `AT+UDCONF=1,1`; `+USOWR=<s>,<n>` without data
//! prompts with `@` for `<n>` raw bytes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sealcell_at::CmeError;
use sealcell_at::args::ArgReader;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, PayloadJob, PayloadTarget, undefined_form};
use crate::nvm::Value;
use crate::socket::{MAX_SOCKETS, Protocol, Socket, SocketHandle, SocketOp, SocketState, errno};

/// The socket commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+USOCR`: create a socket.
    Create,
    /// `+USOSEC`: TLS on a socket, with a `+USECPRF` profile.
    Secure,
    /// `+USOCO`: connect.
    Connect,
    /// `+USOWR`: write to a connected socket.
    Write,
    /// `+USOST`: send a UDP datagram.
    SendTo,
    /// `+USORD`: read from a TCP socket (or a connected UDP one).
    Read,
    /// `+USORF`: read a UDP datagram, with its sender.
    ReceiveFrom,
    /// `+USOLI`: listen.
    Listen,
    /// `+USOCL`: close.
    Close,
    /// `+USOER`: the last socket error.
    LastError,
    /// `+USOCTL`: a socket's control values.
    Control,
    /// `+USOSO`: set an option.
    SetOption,
    /// `+USOGO`: read an option.
    GetOption,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        Some(match name {
            "+USOCR" => Cmd::Create,
            "+USOSEC" => Cmd::Secure,
            "+USOCO" => Cmd::Connect,
            "+USOWR" => Cmd::Write,
            "+USOST" => Cmd::SendTo,
            "+USORD" => Cmd::Read,
            "+USORF" => Cmd::ReceiveFrom,
            "+USOLI" => Cmd::Listen,
            "+USOCL" => Cmd::Close,
            "+USOER" => Cmd::LastError,
            "+USOCTL" => Cmd::Control,
            "+USOSO" => Cmd::SetOption,
            "+USOGO" => Cmd::GetOption,
            _ => return None,
        })
    }
}

/// The most bytes one `+USOWR` or `+USOST` writes as text or raw bytes (the manual's
/// 1..1024).
pub const MAX_WRITE: usize = 1024;

/// The most bytes one `+USOWR` or `+USOST` writes as hex (`AT+UDCONF=1,1`: 1..512, so the
/// command line stays within 2048 characters).
pub const MAX_HEX_WRITE: usize = 512;

/// The most bytes one `+USORD` or `+USORF` returns (0..1024; a longer request returns what
/// is buffered, at most this).
pub const MAX_READ: usize = 1024;

/// The most bytes one read returns in hex mode (each byte is two characters).
pub const MAX_HEX_READ: usize = 512;

/// How long `+USOCO` waits for the connection and its TLS handshake before it fails with
/// `ETIMEDOUT` (an estimate of the module's TCP connect timeout).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The binary-write prompt: `@` and nothing after it until the bytes have come (atat takes
/// `@` for a prompt only when nothing follows it).
const AT_PROMPT: &[u8] = b"@";

impl Cmd {
    /// The answer to `AT<cmd>=?` (`+USOER=?` has none).
    fn test_response(self) -> &'static str {
        match self {
            Cmd::Create => "+USOCR: (6,17),(1-65535)",
            Cmd::Secure => "+USOSEC: (0-6),(0,1),(0-4)",
            Cmd::Connect => "+USOCO: (0-6),,(1-65535)",
            Cmd::Write => "+USOWR: (0-6),(1-1024),",
            Cmd::SendTo => "+USOST: (0-6),,(1-65535),(1-1024),",
            Cmd::Read => "+USORD: (0-6),(0-1024)",
            Cmd::ReceiveFrom => "+USORF: (0-6),(0-1024)",
            Cmd::Listen => "+USOLI: (0-6),(1-65535)",
            Cmd::Close => "+USOCL: (0-6),(0,1)",
            Cmd::LastError => "",
            Cmd::Control => "+USOCTL: (0-6),(0-4,10,11)",
            Cmd::SetOption => "+USOSO: (0-6),(0,6,65535),(1,2,4,8,32,128),(0-65535),(0-65535)",
            Cmd::GetOption => "+USOGO: (0-6),(0,6,65535),(1,2,4,8,32,128)",
        }
    }
}

pub(crate) fn execute(cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    let result = match (cmd, form) {
        (cmd, Form::Test) => {
            let text = cmd.test_response();
            if !text.is_empty() {
                ctx.info(text.as_bytes());
            }
            return Ok(Outcome::Done);
        }
        (Cmd::Create, Form::Set(args)) => create(ctx, args.reader()),
        (Cmd::Secure, Form::Set(args)) => secure(ctx, args.reader()),
        (Cmd::Connect, Form::Set(args)) => connect(ctx, args.reader()),
        (Cmd::Write, Form::Set(args)) => write(ctx, args.reader()),
        (Cmd::SendTo, Form::Set(args)) => send_to(ctx, args.reader()),
        (Cmd::Read, Form::Set(args)) => read(ctx, args.reader()),
        (Cmd::ReceiveFrom, Form::Set(args)) => receive_from(ctx, args.reader()),
        (Cmd::Listen, Form::Set(args)) => listen(ctx, args.reader()),
        (Cmd::Close, Form::Set(args)) => close(ctx, args.reader()),
        (Cmd::LastError, Form::Action) => {
            let code = ctx.module.sockets.last_error;
            ctx.info_fmt(format_args!("+USOER: {code}"));
            return Ok(Outcome::Done);
        }
        (Cmd::Control, Form::Set(args)) => control(ctx, args.reader()),
        (Cmd::SetOption, Form::Set(args)) => set_option(ctx, args.reader()),
        (Cmd::GetOption, Form::Set(args)) => get_option(ctx, args.reader()),
        (_, form) => return undefined_form(form),
    };
    match result {
        Ok(outcome) => {
            if !matches!(outcome, Outcome::Await | Outcome::Prompt(_)) {
                ctx.module.sockets.last_error = errno::NONE;
            }
            Ok(outcome)
        }
        Err(refused) => Err(refused.into_cme(ctx)),
    }
}

/// Why a socket command fails.
enum Refused {
    /// The socket's state or the network refuses it: `+CME ERROR: 3`, this code in `+USOER`.
    Socket(u16),
    /// Its arguments: this error.
    Cme(CmeError),
}

impl From<sealcell_at::args::ArgError> for Refused {
    fn from(e: sealcell_at::args::ArgError) -> Refused {
        Refused::Cme(e.into())
    }
}

impl Refused {
    /// The command's error, the socket code recorded for `+USOER`.
    fn into_cme(self, ctx: &mut Ctx<'_>) -> CmeError {
        match self {
            Refused::Socket(code) => crate::socket::refused(ctx.module, code),
            Refused::Cme(e) => e,
        }
    }
}

type SocketResult = Result<Outcome, Refused>;

/// Reads a socket id argument: `EBADF` when it is out of range or not in use.
fn socket_id(r: &mut ArgReader<'_>) -> Result<u8, Refused> {
    let id = r.int(0..=i64::MAX)?;
    u8::try_from(id)
        .ok()
        .filter(|id| usize::from(*id) < MAX_SOCKETS)
        .ok_or(Refused::Socket(errno::EBADF))
}

fn socket<'m>(ctx: &'m mut Ctx<'_>, id: u8) -> Result<&'m mut Socket, Refused> {
    ctx.module
        .sockets
        .get_mut(id)
        .ok_or(Refused::Socket(errno::EBADF))
}

fn port(r: &mut ArgReader<'_>) -> Result<u16, Refused> {
    let p = r.int(1..=65535)?;
    u16::try_from(p).map_err(|_| Refused::Cme(CmeError::OperationNotSupported))
}

/// Whether the socket data of this module is hex (`AT+UDCONF=1,1`).
fn hex_mode(ctx: &Ctx<'_>) -> bool {
    matches!(
        ctx.module.settings.get("+UDCONF=1").and_then(|v| v.first()),
        Some(Value::Int(1))
    )
}

/// A write's length argument: 1..=[`MAX_WRITE`] (the hex limit is checked with the data).
fn write_len(r: &mut ArgReader<'_>) -> Result<usize, Refused> {
    let len = r.int(1..=MAX_WRITE as i64)?;
    usize::try_from(len).map_err(|_| Refused::Cme(CmeError::OperationNotSupported))
}

/// The bytes of a data argument of `len` bytes: as it is (text), or decoded (hex mode:
/// exactly `2 * len` hex digits, `len` at most [`MAX_HEX_WRITE`]).
fn data_bytes(ctx: &Ctx<'_>, text: &str, len: usize) -> Result<Vec<u8>, Refused> {
    let bytes = if hex_mode(ctx) {
        if len > MAX_HEX_WRITE {
            return Err(Refused::Cme(CmeError::OperationNotSupported));
        }
        hex::decode(text).map_err(|_| Refused::Cme(CmeError::OperationNotSupported))?
    } else {
        text.as_bytes().to_vec()
    };
    if bytes.len() != len {
        return Err(Refused::Cme(CmeError::OperationNotSupported));
    }
    Ok(bytes)
}

/// Data as a read answer writes it: hex in hex mode; else the bytes as they are.
fn push_data(ctx: &Ctx<'_>, line: &mut Vec<u8>, bytes: &[u8]) {
    line.push(b'"');
    if hex_mode(ctx) {
        line.extend_from_slice(hex::encode_upper(bytes).as_bytes());
    } else {
        line.extend_from_slice(bytes);
    }
    line.push(b'"');
}

fn create(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let protocol = match r.int(0..=255)? {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return Err(Refused::Cme(CmeError::OperationNotSupported)),
    };
    let local_port = match r.opt_int(1..=65535)? {
        Some(p) => Some(u16::try_from(p).map_err(|_| Refused::Socket(errno::EINVAL))?),
        None => None,
    };
    // Later manuals' `<preferred_protocol_type>` (0 IPv4, 1 IPv6), `<cid>` and
    // `<report_aon>`, which hosts built for LARA-R6 send (ublox-cellular-rs 0.5's
    // `AT+USOCR=17,1,0,1`): accepted; the socket takes the peer's address family, on the one
    // context.
    r.opt_int(0..=1)?;
    r.opt_int(0..=8)?;
    r.opt_int(0..=1)?;
    r.finish()?;
    if !ctx.module.radio.registered() {
        return Err(Refused::Socket(errno::ENETUNREACH));
    }
    let channel = ctx.channel;
    let id = ctx
        .module
        .sockets
        .create(protocol, channel)
        .ok_or(Refused::Socket(errno::EMFILE))?;
    if let Some(s) = ctx.module.sockets.get_mut(id) {
        s.local_port = local_port;
    }
    ctx.info_fmt(format_args!("+USOCR: {id}"));
    Ok(Outcome::Done)
}

fn secure(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let on = r.opt_int(0..=1)?;
    let profile = r.opt_int(0..=4)?;
    r.finish()?;
    let s = socket(ctx, id)?;
    let Some(on) = on else {
        // `+USOSEC=<s>`: the setting, with the profile only when TLS is on.
        match s.tls_profile {
            Some(p) => ctx.info_fmt(format_args!("+USOSEC: {id},1,{p}")),
            None => ctx.info_fmt(format_args!("+USOSEC: {id},0")),
        }
        return Ok(Outcome::Done);
    };
    if s.protocol != Protocol::Tcp {
        return Err(Refused::Socket(errno::EOPNOTSUPP));
    }
    if s.state != SocketState::Created {
        return Err(Refused::Socket(errno::EISCONN));
    }
    s.tls_profile = (on == 1).then(|| u8::try_from(profile.unwrap_or(0)).unwrap_or(0));
    Ok(Outcome::Done)
}

fn connect(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let host = r.string(crate::command::dns::MAX_NAME)?.to_string();
    let port = port(&mut r)?;
    // The manual's `<async_connect>`: accepted, and the connect is waited for either way.
    r.opt_int(0..=1)?;
    r.finish()?;
    if host.is_empty() {
        return Err(Refused::Socket(errno::EINVAL));
    }
    if !ctx.module.radio.registered() {
        return Err(Refused::Socket(errno::ENETUNREACH));
    }
    let s = socket(ctx, id)?;
    match s.state {
        SocketState::Created => {}
        SocketState::Connecting { .. } | SocketState::Binding { .. } => {
            return Err(Refused::Socket(errno::EALREADY));
        }
        SocketState::Connected | SocketState::PeerClosed => {
            return Err(Refused::Socket(errno::EISCONN));
        }
        SocketState::Bound => {
            // A UDP socket that has sent already (its port is bound at the edge): the
            // connect only fixes the peer its `+USOWR` goes to, as BSD's does. An address,
            // not a name: there is no lookup on this path.
            let ip: IpAddr = host.parse().map_err(|_| Refused::Socket(errno::EINVAL))?;
            s.remote = Some(SocketAddr::new(ip, port));
            s.state = SocketState::Connected;
            return Ok(Outcome::Done);
        }
        SocketState::Listening => return Err(Refused::Socket(errno::EOPNOTSUPP)),
    }
    let (protocol, local_port, options, tls_profile) =
        (s.protocol, s.local_port, s.options, s.tls_profile);
    // The test bench's one-shot failures, where the connect would meet them.
    if host.parse::<IpAddr>().is_err() && ctx.module.faults.take_dns("+USOCO") {
        return Err(Refused::Socket(errno::EHOSTUNREACH));
    }
    if tls_profile.is_some() && ctx.module.faults.take_tls("+USOCO") {
        return Err(Refused::Socket(errno::ECONNABORTED));
    }
    let tls = match tls_profile {
        Some(p) => Some(Box::new(
            super::tls_profile::tls_settings(ctx, usize::from(p)).map_err(Refused::Cme)?,
        )),
        None => None,
    };
    let waiter = ctx.module.await_reply(ctx.channel);
    let deadline = ctx.now.mono() + CONNECT_TIMEOUT;
    let handle = ctx
        .module
        .sockets
        .rehandle(id)
        .ok_or(Refused::Socket(errno::EBADF))?;
    let cut_left = match protocol {
        Protocol::Tcp => ctx.module.faults.take_cut("+USOCO"),
        Protocol::Udp => None,
    };
    let s = socket(ctx, id)?;
    s.state = SocketState::Connecting { waiter, deadline };
    s.at_edge = true;
    s.cut_left = cut_left;
    ctx.module.queue_socket_op(SocketOp::Connect {
        handle,
        protocol,
        local_port,
        host,
        port,
        tls,
        options,
    });
    Ok(Outcome::Await)
}

/// Checks that socket `id` can take `len` more bytes; returns how many it takes.
fn writable(ctx: &mut Ctx<'_>, id: u8, len: usize) -> Result<usize, Refused> {
    let s = socket(ctx, id)?;
    match s.state {
        SocketState::Connected => {}
        SocketState::PeerClosed => return Err(Refused::Socket(errno::EPIPE)),
        _ => return Err(Refused::Socket(errno::ENOTCONN)),
    }
    let room = s.send_room();
    if room == 0 && len > 0 {
        return Err(Refused::Socket(errno::EAGAIN));
    }
    Ok(len.min(room))
}

/// Queues `bytes` for socket `id` (which has the room: [`writable`]).
fn queue_send(ctx: &mut Ctx<'_>, id: u8, bytes: Vec<u8>) {
    let Some(s) = ctx.module.sockets.get_mut(id) else {
        return;
    };
    s.unsent += bytes.len();
    let (handle, protocol, remote) = (s.handle, s.protocol, s.remote);
    if bytes.is_empty() {
        return;
    }
    let op = match (protocol, remote) {
        // A connected UDP socket's datagram goes to its peer by address, so it works both
        // for one the edge connected and for one bound by a `+USOST` before the connect.
        (Protocol::Udp, Some(to)) => SocketOp::SendTo {
            handle,
            local_port: s.local_port,
            options: s.options,
            to,
            bytes,
        },
        _ => SocketOp::Send { handle, bytes },
    };
    ctx.module.queue_socket_op(op);
}

fn write(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let len = write_len(&mut r)?;
    let data = r.opt_string(2 * MAX_WRITE)?;
    r.finish()?;
    let Some(text) = data else {
        // Binary: check the socket first, then the `@` prompt and `len` raw bytes.
        let take = writable(ctx, id, len)?;
        let handle = socket(ctx, id)?.handle;
        return Ok(Outcome::Prompt(PayloadJob {
            prompt: AT_PROMPT,
            size: len as u64,
            timeout_error: CmeError::OperationNotAllowed,
            target: Box::new(BinaryWrite {
                id,
                handle,
                take,
                bytes: Vec::with_capacity(take),
            }),
        }));
    };
    let mut bytes = data_bytes(ctx, text, len)?;
    let take = writable(ctx, id, len)?;
    bytes.truncate(take);
    queue_send(ctx, id, bytes);
    ctx.info_fmt(format_args!("+USOWR: {id},{take}"));
    Ok(Outcome::Done)
}

/// The raw bytes of a binary `+USOWR`: the first `take` are sent (the socket's room when the
/// command came), the rest are read and dropped.
struct BinaryWrite {
    id: u8,
    /// The socket the prompt was for: id `id` may be another's by the time the bytes are in.
    handle: SocketHandle,
    take: usize,
    bytes: Vec<u8>,
}

impl PayloadTarget for BinaryWrite {
    fn write(&mut self, bytes: &[u8]) {
        let room = self.take - self.bytes.len();
        self.bytes
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finish(self: Box<Self>, ctx: &mut Ctx<'_>) -> CmdResult {
        let BinaryWrite {
            id, handle, bytes, ..
        } = *self;
        // The socket may have closed while the bytes came.
        if ctx.module.sockets.id_of(handle) != Some(id) {
            return Err(Refused::Socket(errno::ENOTCONN).into_cme(ctx));
        }
        let take = match writable(ctx, id, bytes.len()) {
            Ok(n) => n,
            Err(refused) => return Err(refused.into_cme(ctx)),
        };
        let mut bytes = bytes;
        bytes.truncate(take);
        queue_send(ctx, id, bytes);
        ctx.module.sockets.last_error = errno::NONE;
        ctx.info_fmt(format_args!("+USOWR: {id},{take}"));
        Ok(Outcome::Done)
    }
}

fn send_to(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let ip: IpAddr = r
        .string(64)?
        .parse()
        .map_err(|_| Refused::Socket(errno::EINVAL))?;
    let port = port(&mut r)?;
    let len = write_len(&mut r)?;
    let data = r.opt_string(2 * MAX_WRITE)?;
    r.finish()?;
    let to = SocketAddr::new(ip, port);
    let Some(text) = data else {
        // Binary: check the socket first, then the `@` prompt and `len` raw bytes.
        datagram_socket(ctx, id, len)?;
        let handle = socket(ctx, id)?.handle;
        return Ok(Outcome::Prompt(PayloadJob {
            prompt: AT_PROMPT,
            size: len as u64,
            timeout_error: CmeError::OperationNotAllowed,
            target: Box::new(BinarySendTo {
                id,
                handle,
                to,
                bytes: Vec::with_capacity(len),
            }),
        }));
    };
    let bytes = data_bytes(ctx, text, len)?;
    datagram_socket(ctx, id, len)?;
    queue_datagram(ctx, id, to, bytes);
    ctx.info_fmt(format_args!("+USOST: {id},{len}"));
    Ok(Outcome::Done)
}

/// Checks that UDP socket `id` can send a datagram of `len` bytes now.
fn datagram_socket(ctx: &mut Ctx<'_>, id: u8, len: usize) -> Result<(), Refused> {
    let s = socket(ctx, id)?;
    if s.protocol != Protocol::Udp {
        return Err(Refused::Socket(errno::EOPNOTSUPP));
    }
    match s.state {
        SocketState::Created
        | SocketState::Bound
        | SocketState::Listening
        | SocketState::Connected => {}
        SocketState::Connecting { .. } | SocketState::Binding { .. } | SocketState::PeerClosed => {
            return Err(Refused::Socket(errno::EPERM));
        }
    }
    if s.send_room() < len {
        return Err(Refused::Socket(errno::EAGAIN));
    }
    Ok(())
}

/// Queues a datagram for UDP socket `id` (checked by [`datagram_socket`]).
fn queue_datagram(ctx: &mut Ctx<'_>, id: u8, to: SocketAddr, bytes: Vec<u8>) {
    let Some(s) = ctx.module.sockets.get_mut(id) else {
        return;
    };
    if s.state == SocketState::Created {
        s.state = SocketState::Bound;
    }
    s.unsent += bytes.len();
    s.at_edge = true;
    let (handle, local_port, options) = (s.handle, s.local_port, s.options);
    ctx.module.queue_socket_op(SocketOp::SendTo {
        handle,
        local_port,
        options,
        to,
        bytes,
    });
}

/// The raw bytes of a binary `+USOST`: one datagram.
struct BinarySendTo {
    id: u8,
    /// The socket the prompt was for.
    handle: SocketHandle,
    to: SocketAddr,
    bytes: Vec<u8>,
}

impl PayloadTarget for BinarySendTo {
    fn write(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn finish(self: Box<Self>, ctx: &mut Ctx<'_>) -> CmdResult {
        let BinarySendTo {
            id,
            handle,
            to,
            bytes,
        } = *self;
        let len = bytes.len();
        // The socket may have closed while the bytes came.
        if ctx.module.sockets.id_of(handle) != Some(id) {
            return Err(Refused::Socket(errno::ENOTCONN).into_cme(ctx));
        }
        if let Err(refused) = datagram_socket(ctx, id, len) {
            return Err(refused.into_cme(ctx));
        }
        queue_datagram(ctx, id, to, bytes);
        ctx.module.sockets.last_error = errno::NONE;
        ctx.info_fmt(format_args!("+USOST: {id},{len}"));
        Ok(Outcome::Done)
    }
}

/// A read's length argument: 0..=[`MAX_READ`] ([`MAX_HEX_READ`] in hex mode, where a
/// larger one gets that much).
fn read_len(ctx: &Ctx<'_>, r: &mut ArgReader<'_>) -> Result<usize, Refused> {
    let len = r.int(0..=MAX_READ as i64)?;
    let cap = if hex_mode(ctx) {
        MAX_HEX_READ
    } else {
        MAX_READ
    };
    Ok(usize::try_from(len).unwrap_or(cap).min(cap))
}

fn read(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let len = read_len(ctx, &mut r)?;
    r.finish()?;
    let s = socket(ctx, id)?;
    if s.protocol == Protocol::Udp {
        // A connected UDP socket reads its peer's datagrams with `+USORD` too.
        if s.state != SocketState::Connected {
            return Err(Refused::Socket(errno::ENOTCONN));
        }
        if len == 0 {
            let pending = s.pending();
            ctx.info_fmt(format_args!("+USORD: {id},{pending}"));
            return Ok(Outcome::Done);
        }
        let (datagram, resume) = s.read_datagram(len);
        let bytes = datagram.map(|d| d.bytes).unwrap_or_default();
        answer_read(ctx, id, &bytes, resume);
        return Ok(Outcome::Done);
    }
    if !matches!(s.state, SocketState::Connected | SocketState::PeerClosed) {
        return Err(Refused::Socket(errno::ENOTCONN));
    }
    if len == 0 {
        let pending = s.pending();
        ctx.info_fmt(format_args!("+USORD: {id},{pending}"));
        return Ok(Outcome::Done);
    }
    let (bytes, resume) = s.read(len);
    let drained = s.state == SocketState::PeerClosed && s.pending() == 0;
    answer_read(ctx, id, &bytes, resume);
    if drained {
        ctx.module.close_socket(id, true);
    }
    Ok(Outcome::Done)
}

fn answer_read(ctx: &mut Ctx<'_>, id: u8, bytes: &[u8], resume: Option<SocketOp>) {
    if let Some(op) = resume {
        ctx.module.queue_socket_op(op);
    }
    let mut line = format!("+USORD: {id},{},", bytes.len()).into_bytes();
    push_data(ctx, &mut line, bytes);
    ctx.info(&line);
    announce_rest(ctx, id, !bytes.is_empty());
}

/// After a read that took something and left some: the URC with what is left (the manual's
/// "after a partial read").
fn announce_rest(ctx: &mut Ctx<'_>, id: u8, took: bool) {
    if took && ctx.module.sockets.get(id).is_some_and(|s| s.pending() > 0) {
        ctx.module.announce_data(id);
    }
}

fn receive_from(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let len = read_len(ctx, &mut r)?;
    r.finish()?;
    let s = socket(ctx, id)?;
    if s.protocol != Protocol::Udp {
        return Err(Refused::Socket(errno::EOPNOTSUPP));
    }
    if len == 0 {
        let pending = s.pending();
        ctx.info_fmt(format_args!("+USORF: {id},{pending}"));
        return Ok(Outcome::Done);
    }
    let (datagram, resume) = s.read_datagram(len);
    if let Some(op) = resume {
        ctx.module.queue_socket_op(op);
    }
    let Some(d) = datagram else {
        // Nothing to read: the manual's empty answer.
        ctx.info_fmt(format_args!("+USORF: {id},0"));
        return Ok(Outcome::Done);
    };
    let mut line = format!(
        "+USORF: {id},\"{}\",{},{},",
        d.from.ip(),
        d.from.port(),
        d.bytes.len()
    )
    .into_bytes();
    push_data(ctx, &mut line, &d.bytes);
    ctx.info(&line);
    announce_rest(ctx, id, true);
    Ok(Outcome::Done)
}

fn listen(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let port = port(&mut r)?;
    r.finish()?;
    if socket(ctx, id)?.state != SocketState::Created {
        return Err(Refused::Socket(errno::EISCONN));
    }
    // Answered once the edge has bound the port (or could not: 98 for a port in use).
    let waiter = ctx.module.await_reply(ctx.channel);
    let deadline = ctx.now.mono() + CONNECT_TIMEOUT;
    let handle = ctx
        .module
        .sockets
        .rehandle(id)
        .ok_or(Refused::Socket(errno::EBADF))?;
    let s = socket(ctx, id)?;
    s.state = SocketState::Binding { waiter, deadline };
    s.local_port = Some(port);
    s.at_edge = true;
    let (protocol, options) = (s.protocol, s.options);
    ctx.module.queue_socket_op(SocketOp::Listen {
        handle,
        protocol,
        port,
        options,
    });
    Ok(Outcome::Await)
}

fn close(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let asynchronous = r.opt_int(0..=1)? == Some(1);
    r.finish()?;
    let s = socket(ctx, id)?;
    if let SocketState::Connecting { waiter, .. } | SocketState::Binding { waiter, .. } = s.state {
        // The `+USOCO` waiting for it (on another channel) fails.
        ctx.module
            .reply(waiter, crate::socket::connect_failed(errno::ECONNABORTED));
    }
    ctx.module.close_socket(id, false);
    if asynchronous {
        // To the channel that asked, which waits for it.
        let channel = ctx.channel;
        ctx.module
            .post_urc(channel, format!("+UUSOCL: {id}").into_bytes());
    }
    Ok(Outcome::Done)
}

fn control(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let param = r.int(0..=99)?;
    r.finish()?;
    let s = socket(ctx, id)?;
    let value = match param {
        0 => s.protocol.number().to_string(),
        1 => s.last_error.to_string(),
        2 => s.sent.to_string(),
        3 => s.received.to_string(),
        4 => match s.remote {
            Some(a) => format!("\"{}\",{}", a.ip(), a.port()),
            None => return Err(Refused::Socket(errno::ENOTCONN)),
        },
        10 if s.protocol == Protocol::Tcp => s.tcp_state().to_string(),
        11 if s.protocol == Protocol::Tcp => s.unsent.to_string(),
        _ => return Err(Refused::Cme(CmeError::OperationNotSupported)),
    };
    ctx.info_fmt(format_args!("+USOCTL: {id},{param},{value}"));
    Ok(Outcome::Done)
}

/// `+USOSO`/`+USOGO` level and option numbers.
const LEVEL_IP: i64 = 0;
const LEVEL_TCP: i64 = 6;
const LEVEL_SOCKET: i64 = 65535;

fn set_option(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let level = r.int(0..=65535)?;
    let name = r.int(0..=65535)?;
    let value = r.int(0..=i64::from(u32::MAX))?;
    // Linger's time: the manual's 0..32767 (ms).
    let value2 = r.opt_int(0..=32767)?;
    r.finish()?;
    let bad = || Refused::Cme(CmeError::OperationNotSupported);
    let byte = |v: i64| u8::try_from(v).map_err(|_| bad());
    let flag = |v: i64| match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(bad()),
    };
    let s = socket(ctx, id)?;
    let o = &mut s.options;
    match (level, name) {
        (LEVEL_IP, 1) => o.tos = byte(value)?,
        (LEVEL_IP, 2) => o.ttl = byte(value)?,
        (LEVEL_SOCKET, 4) => o.reuse_addr = flag(value)?,
        (LEVEL_SOCKET, 8) => o.keep_alive = flag(value)?,
        (LEVEL_SOCKET, 32) => o.broadcast = flag(value)?,
        (LEVEL_SOCKET, 128) => {
            o.linger = match flag(value)? {
                true => Some(u16::try_from(value2.ok_or_else(bad)?).map_err(|_| bad())?),
                false => None,
            }
        }
        (LEVEL_TCP, 1) => o.no_delay = flag(value)?,
        (LEVEL_TCP, 2) => o.keep_idle_ms = u32::try_from(value).map_err(|_| bad())?,
        _ => return Err(bad()),
    }
    Ok(Outcome::Done)
}

fn get_option(ctx: &mut Ctx<'_>, mut r: ArgReader<'_>) -> SocketResult {
    let id = socket_id(&mut r)?;
    let level = r.int(0..=65535)?;
    let name = r.int(0..=65535)?;
    r.finish()?;
    let o = socket(ctx, id)?.options;
    let value = match (level, name) {
        (LEVEL_IP, 1) => o.tos.to_string(),
        (LEVEL_IP, 2) => o.ttl.to_string(),
        (LEVEL_SOCKET, 4) => u8::from(o.reuse_addr).to_string(),
        (LEVEL_SOCKET, 8) => u8::from(o.keep_alive).to_string(),
        (LEVEL_SOCKET, 32) => u8::from(o.broadcast).to_string(),
        (LEVEL_SOCKET, 128) => match o.linger {
            Some(s) => format!("1,{s}"),
            None => "0,0".to_string(),
        },
        (LEVEL_TCP, 1) => u8::from(o.no_delay).to_string(),
        (LEVEL_TCP, 2) => o.keep_idle_ms.to_string(),
        _ => return Err(Refused::Cme(CmeError::OperationNotSupported)),
    };
    ctx.info_fmt(format_args!("+USOGO: {value}"));
    Ok(Outcome::Done)
}
