//! The commands, organised like the u-blox AT manual's chapters. [`Command`] is the one
//! dispatch point: a name maps to exactly one variant (or [`Command::Unknown`]), and each
//! chapter module parses its arguments and answers with a response value: information lines
//! written through `Ctx`, then an `Outcome` or a `+CME ERROR`. Handlers never see a socket,
//! start a thread or read a clock: long work leaves as a job ([`crate::job`]), and the time is
//! `Ctx::now`.

pub mod control;
pub mod dns;
pub mod file_system;
pub mod fw_update;
pub mod general;
pub mod gpio;
pub mod http;
pub mod multiplexing;
pub mod network;
pub mod packet;
pub mod security;
pub mod sim;
pub mod socket;
pub mod tls_profile;

use std::io::Write;

use sealcell_at::CmeError;
use sealcell_at::format::ChannelSettings;
use sealcell_at::syntax::{AtCommand, Form};

use crate::job::DiskJob;
use crate::module::{ChannelId, Module};
use crate::time::Now;

/// Every command the module knows, by manual chapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Identification (manual ch. 4): `+CGMI`, `+CGMM`, `+CGMR`, `+CGSN`, `I`, `+CIMI`, `+CCID`.
    General(general::Cmd),
    /// Control and settings (ch. 5, 7, 14): `E`, `V`, `Q`, `Z`, `+CMEE`, `+CFUN`, `+IPR`, ...
    Control(control::Cmd),
    /// Network service (ch. 7): `+COPS`, `+CEREG`, `+CSQ`, `+UCGED`, ...
    Network(network::Cmd),
    /// Packet domain (ch. 18): `+CGDCONT`, `+CGACT`, `+CGCONTRDP`, `+CGPADDR`, `+UAUTHREQ`.
    Packet(packet::Cmd),
    /// File system (ch. 22): `+UDWNFILE`, `+URDFILE`, `+URDBLOCK`, `+UDELFILE`, `+ULSTFILE`.
    FileSystem(file_system::Cmd),
    /// Security (ch. 26, application note UBX-19022699): `+USECCFG`, `+USECMNG`.
    Security(security::Cmd),
    /// Firmware update (application note §4.2): `+UFWINSTALL`, `+UFWSINSTALL`, `+UFWUPD`.
    FirmwareUpdate(fw_update::Cmd),
    /// Security profiles (ch. 26.3, application note §4.1): `+USECPRF`.
    SecurityProfile(tls_profile::Cmd),
    /// HTTP(S) client (ch. 27, application note §4.1): `+UHTTP`, `+UHTTPC`, `+UHTTPER`.
    Http(http::Cmd),
    /// Restricted SIM access (27.007 §8.18): `+CRSM`.
    Sim(sim::Cmd),
    /// GPIO and GNSS control: `+UGPIOC`, `+UGPIOR`, `+UGPIOW`, `+UGPS`.
    Gpio(gpio::Cmd),
    /// `+CMUX`: 27.010 multiplexing.
    Multiplexing(multiplexing::Cmd),
    /// Sockets (ch. 25, at-contract §8): `+USOCR`, `+USOCO`, `+USOWR`, `+USORD`, ...
    Socket(socket::Cmd),
    /// DNS (ch. 24): `+UDNSRN`.
    Dns(dns::Cmd),
    /// Anything else: `ERROR` / `+CME ERROR: 100`.
    Unknown,
}

impl Command {
    /// The command for an upper-cased name.
    pub fn from_name(name: &str) -> Command {
        if let Some(c) = general::Cmd::from_name(name) {
            Command::General(c)
        } else if let Some(c) = control::Cmd::from_name(name) {
            Command::Control(c)
        } else if let Some(c) = network::Cmd::from_name(name) {
            Command::Network(c)
        } else if let Some(c) = packet::Cmd::from_name(name) {
            Command::Packet(c)
        } else if let Some(c) = file_system::Cmd::from_name(name) {
            Command::FileSystem(c)
        } else if let Some(c) = security::Cmd::from_name(name) {
            Command::Security(c)
        } else if let Some(c) = fw_update::Cmd::from_name(name) {
            Command::FirmwareUpdate(c)
        } else if let Some(c) = tls_profile::Cmd::from_name(name) {
            Command::SecurityProfile(c)
        } else if let Some(c) = http::Cmd::from_name(name) {
            Command::Http(c)
        } else if let Some(c) = sim::Cmd::from_name(name) {
            Command::Sim(c)
        } else if let Some(c) = gpio::Cmd::from_name(name) {
            Command::Gpio(c)
        } else if let Some(c) = multiplexing::Cmd::from_name(name) {
            Command::Multiplexing(c)
        } else if let Some(c) = socket::Cmd::from_name(name) {
            Command::Socket(c)
        } else if let Some(c) = dns::Cmd::from_name(name) {
            Command::Dns(c)
        } else {
            Command::Unknown
        }
    }
}

/// What a command did, besides its information lines.
pub(crate) enum Outcome {
    /// Finished: the line continues, then `OK`.
    Done,
    /// Send the `>` prompt and receive a raw payload.
    Prompt(PayloadJob),
    /// Answer `OK`, then power-cycle the module.
    Reboot,
    /// Answer `OK`, send these URCs, then power-cycle the module (a firmware install).
    RebootAfter(Vec<Vec<u8>>),
    /// Run an Xmodem-1k receive (`AT+UFWUPD`); the final result comes when it ends.
    Xmodem(Box<fw_update::XmodemJob>),
    /// Run this off the module lock; the command ends with what its continuation returns.
    /// Input waits meanwhile.
    Wait(DiskJob),
    /// Wait for an event the edge reports (a socket's connect, a lookup), started with
    /// `Module::await_reply`; the command ends with the continuation `Module::reply` gives.
    /// Input waits meanwhile.
    Await,
    /// Stream these bytes into the answer (chunk by chunk, as the host reads), then `OK`.
    Stream(Stream),
    /// `OK`, then the link speaks 27.010 with these parameters: the commands after this one
    /// on its line are not run, and the bytes after the line are frames.
    Multiplex(sealcell_at::commands::cmux::CmuxStatus),
}

/// What runs on the channel once a [`DiskJob`] is done: under the module lock, with the
/// channel's context, ending the command that started the job.
pub(crate) type Continuation = Box<dyn FnOnce(&mut Ctx<'_>) -> CmdResult + Send>;

/// A long answer read from a file as the host takes it (`+URDFILE`, `+URDBLOCK`): never more
/// than one chunk in memory.
pub(crate) struct Stream {
    pub(crate) reader: Box<dyn std::io::Read + Send>,
    /// Bytes still to copy from `reader`.
    pub(crate) remaining: u64,
    /// Written after the last byte (the closing quote and line end).
    pub(crate) suffix: &'static [u8],
    /// The file failed under the reader: the rest is zeros (the host parses by length) and
    /// the answer ends in an error.
    pub(crate) failed: bool,
}

/// A raw payload a command waits for after its prompt.
pub(crate) struct PayloadJob {
    /// What announces it: `\r\n>` (files, credentials) or `@` (socket writes).
    pub(crate) prompt: &'static [u8],
    pub(crate) size: u64,
    pub(crate) timeout_error: CmeError,
    pub(crate) target: Box<dyn PayloadTarget>,
}

/// Where payload bytes go, and what happens when the last one arrives.
pub(crate) trait PayloadTarget: Send {
    /// Takes the next payload bytes.
    fn write(&mut self, bytes: &[u8]);
    /// Called once every byte has arrived; may write information lines.
    /// Ends the command: at once, or with a job to wait for (a file's commit, an import: long
    /// work, off the module lock).
    fn finish(self: Box<Self>, ctx: &mut Ctx<'_>) -> CmdResult;
}

pub(crate) type CmdResult = Result<Outcome, CmeError>;

/// What a handler may touch: the module, its channel's settings, the response, the time.
pub(crate) struct Ctx<'a> {
    pub(crate) module: &'a mut Module,
    pub(crate) channel: ChannelId,
    pub(crate) settings: &'a mut ChannelSettings,
    out: &'a mut Vec<u8>,
    /// The time (monotonic and wall) of the input being answered.
    pub(crate) now: Now,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        module: &'a mut Module,
        channel: ChannelId,
        settings: &'a mut ChannelSettings,
        out: &'a mut Vec<u8>,
        now: Now,
    ) -> Self {
        Ctx {
            module,
            channel,
            settings,
            out,
            now,
        }
    }

    /// Changes persistent settings; they are on disk before the command answers.
    pub(crate) fn update_nvm(
        &mut self,
        change: impl FnOnce(&mut crate::nvm::Nvm),
    ) -> Result<(), CmeError> {
        self.module.nvm.update(change).map_err(storage_failure)
    }

    /// Writes bytes as they are (the start of a streamed answer).
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Whether information lines start with a line end (`ATV1`).
    pub(crate) fn verbose(&self) -> bool {
        self.settings.verbose
    }

    /// The module clock (`+CCLK`), seconds since the Unix epoch.
    pub(crate) fn clock_unix(&self) -> i64 {
        self.module.clock_unix(self.now)
    }

    /// Writes one information line.
    pub(crate) fn info(&mut self, text: &[u8]) {
        self.settings.write_info(self.out, text);
    }

    /// Writes one formatted information line without an intermediate allocation.
    pub(crate) fn info_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        if self.settings.verbose {
            self.out.extend_from_slice(b"\r\n");
        }
        // Writing into a Vec cannot fail.
        let _ = self.out.write_fmt(args);
        self.out.extend_from_slice(b"\r\n");
    }
}

/// Runs one command.
pub(crate) fn execute(cmd: &AtCommand<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    // The test bench's scenario faults due as this command starts.
    ctx.module.scenario_command(cmd.name.as_str());
    match Command::from_name(cmd.name.as_str()) {
        Command::General(c) => general::execute(c, cmd.form, ctx),
        Command::Control(c) => control::execute(c, cmd, ctx),
        Command::Network(c) => network::execute(c, cmd.form, ctx),
        Command::Packet(c) => packet::execute(c, cmd.form, ctx),
        Command::FileSystem(c) => file_system::execute(c, cmd.form, ctx),
        Command::Security(c) => security::execute(c, cmd.form, ctx),
        Command::FirmwareUpdate(c) => fw_update::execute(c, cmd.form, ctx),
        Command::SecurityProfile(c) => tls_profile::execute(c, cmd.form, ctx),
        Command::Http(c) => http::execute(c, cmd.form, ctx),
        Command::Sim(c) => sim::execute(c, cmd.form, ctx),
        Command::Gpio(c) => gpio::execute(c, cmd.form, ctx),
        Command::Multiplexing(c) => multiplexing::execute(c, cmd.form, ctx),
        Command::Socket(c) => socket::execute(c, cmd.form, ctx),
        Command::Dns(c) => dns::execute(c, cmd.form, ctx),
        Command::Unknown => Err(CmeError::Unknown),
    }
}

/// The answer to a form a command does not define.
pub(crate) fn undefined_form(_form: Form<'_>) -> CmdResult {
    Err(CmeError::Unknown)
}

/// A storage failure's answer (through [`crate::cme_map`], which logs the cause).
pub(crate) fn storage_failure(e: std::io::Error) -> CmeError {
    crate::cme_map::Failure::Io(e).into()
}
