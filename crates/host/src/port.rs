//! Where the module is, and the byte link to it.
//!
//! A [`PortSpec`] is written as spec/cli.md says: `/dev/ttyUSB0[@BAUD]` (a serial port, 8N1,
//! 115200 baud unless given), a PTY path (the emulator's `--pty LINK`, minicom-style), or
//! `tcp:HOST:PORT` (the emulator's default listener). RTS/CTS flow control is a separate switch
//! ([`Flow`]), as real TOBY-L2 UARTs want it and USB CDC ports ignore it.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// The baud rate used when a serial port is named without `@BAUD` (the TOBY-L2 default).
pub const DEFAULT_BAUD: u32 = 115_200;

/// Hardware flow control on a serial port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flow {
    /// No flow control (USB CDC ports, PTYs, three-wire UARTs).
    #[default]
    None,
    /// RTS/CTS hardware flow control.
    RtsCts,
}

/// A module's address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `tcp:HOST:PORT`.
    Tcp {
        /// Host name or address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A serial device or PTY path, with its baud rate.
    Serial {
        /// The device path.
        path: PathBuf,
        /// Baud rate (ignored by PTYs and USB CDC ports).
        baud: u32,
        /// Flow control.
        flow: Flow,
    },
}

/// A port specification that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortSpecError {
    /// Empty.
    #[error("the port is empty")]
    Empty,
    /// `tcp:` without a valid `HOST:PORT`.
    #[error("`{0}` is not tcp:HOST:PORT")]
    BadTcp(String),
    /// `@BAUD` that is not a positive number.
    #[error("`{0}` is not a baud rate")]
    BadBaud(String),
}

impl FromStr for PortSpec {
    type Err = PortSpecError;

    fn from_str(s: &str) -> Result<PortSpec, PortSpecError> {
        if s.is_empty() {
            return Err(PortSpecError::Empty);
        }
        if let Some(rest) = s.strip_prefix("tcp:") {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| PortSpecError::BadTcp(s.to_string()))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port
                .parse()
                .map_err(|_| PortSpecError::BadTcp(s.to_string()))?;
            if host.is_empty() || port == 0 {
                return Err(PortSpecError::BadTcp(s.to_string()));
            }
            return Ok(PortSpec::Tcp {
                host: host.to_string(),
                port,
            });
        }
        let (path, baud) = match s.rsplit_once('@') {
            Some((path, baud)) => {
                let baud: u32 = baud
                    .parse()
                    .ok()
                    .filter(|&b| b > 0)
                    .ok_or_else(|| PortSpecError::BadBaud(baud.to_string()))?;
                (path, baud)
            }
            None => (s, DEFAULT_BAUD),
        };
        Ok(PortSpec::Serial {
            path: PathBuf::from(path),
            baud,
            flow: Flow::None,
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Tcp { host, port } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            PortSpec::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            PortSpec::Serial { path, baud, .. } => write!(f, "{}@{baud}", path.display()),
        }
    }
}

impl PortSpec {
    /// The same port with flow control set (serial ports only; TCP has none).
    pub fn with_flow(mut self, wanted: Flow) -> PortSpec {
        if let PortSpec::Serial { flow, .. } = &mut self {
            *flow = wanted;
        }
        self
    }

    /// Whether the link is a serial line (where a real module wants a pause after `>`).
    pub fn is_serial(&self) -> bool {
        matches!(self, PortSpec::Serial { .. })
    }

    /// Whether an irreversible seal over this link needs a person's confirmation (cli.md, "The
    /// production line"): a serial port or PTY may be a real module, and so may TCP to another
    /// machine (a serial server); loopback TCP is the emulator.
    pub fn needs_seal_confirmation(&self) -> bool {
        match self {
            PortSpec::Serial { .. } => true,
            PortSpec::Tcp { host, .. } => !is_loopback(host),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `typed` is the confirmation of a seal of the module `imei`: its last four digits,
/// surrounding white space ignored.
pub fn confirms_seal(imei: &str, typed: &str) -> bool {
    let typed = typed.trim();
    imei.len() >= 4 && typed.len() == 4 && imei.ends_with(typed)
}

/// A byte link to the module with a settable read timeout.
pub trait Link: Read + Write + Send {
    /// Sets how long one `read` may block before it fails with `TimedOut`/`WouldBlock`.
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()>;

    /// Sets up again, within `wait`, what the link set up on the module and a reboot undid (a
    /// multiplexer: [`crate::mux::MuxLink`]). Nothing, for a plain link.
    fn after_reboot(&mut self, wait: Duration) -> io::Result<()> {
        let _ = wait;
        Ok(())
    }
}

impl Link for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        TcpStream::set_read_timeout(self, Some(timeout.max(Duration::from_millis(1))))
    }
}

struct SerialLink(serialport::TTYPort);

impl Read for SerialLink {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for SerialLink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl Link for SerialLink {
    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        serialport::SerialPort::set_timeout(&mut self.0, timeout.max(Duration::from_millis(1)))
            .map_err(io::Error::from)
    }
}

/// Opens the link: a TCP connection (10 s connect timeout per address) or a serial port in raw
/// mode, 8N1, at the given baud rate.
pub fn open(spec: &PortSpec) -> io::Result<Box<dyn Link>> {
    match spec {
        PortSpec::Tcp { host, port } => {
            use std::net::ToSocketAddrs;
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            for addr in (host.as_str(), *port).to_socket_addrs()? {
                match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
        PortSpec::Serial { path, baud, flow } => {
            let path = path.to_string_lossy();
            let port = serialport::new(path, *baud)
                .data_bits(serialport::DataBits::Eight)
                .parity(serialport::Parity::None)
                .stop_bits(serialport::StopBits::One)
                .flow_control(match flow {
                    Flow::None => serialport::FlowControl::None,
                    Flow::RtsCts => serialport::FlowControl::Hardware,
                })
                .timeout(Duration::from_millis(100))
                .open_native()
                .map_err(io::Error::from)?;
            Ok(Box::new(SerialLink(port)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_links_need_a_confirmation() {
        let need = |s: &str| s.parse::<PortSpec>().unwrap().needs_seal_confirmation();
        assert!(need("/dev/ttyUSB0"));
        assert!(need("/tmp/ttyTOBY@9600"));
        assert!(need("tcp:192.0.2.7:4000"));
        assert!(need("tcp:serial-server.example:23"));
        assert!(!need("tcp:127.0.0.1:5555"));
        assert!(!need("tcp:127.8.9.1:5555"));
        assert!(!need("tcp:[::1]:5555"));
        assert!(!need("tcp:localhost:5555"));
    }

    #[test]
    fn the_typed_digits() {
        assert!(confirms_seal("490154203237518", "7518"));
        assert!(confirms_seal("490154203237518", " 7518\n"));
        assert!(!confirms_seal("490154203237518", "518"));
        assert!(!confirms_seal("490154203237518", "37518"));
        assert!(!confirms_seal("490154203237518", "7519"));
        assert!(!confirms_seal("", ""));
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            "tcp:127.0.0.1:5555".parse(),
            Ok(PortSpec::Tcp {
                host: "127.0.0.1".into(),
                port: 5555
            })
        );
        assert_eq!(
            "tcp:[::1]:5555".parse::<PortSpec>().map(|p| p.to_string()),
            Ok("tcp:[::1]:5555".into())
        );
        assert_eq!(
            "/dev/ttyUSB0@921600".parse(),
            Ok(PortSpec::Serial {
                path: "/dev/ttyUSB0".into(),
                baud: 921_600,
                flow: Flow::None
            })
        );
        assert_eq!(
            "./module.pty".parse(),
            Ok(PortSpec::Serial {
                path: "./module.pty".into(),
                baud: DEFAULT_BAUD,
                flow: Flow::None
            })
        );
    }

    #[test]
    fn refuses_bad_forms_naming_them() {
        assert_eq!(
            "tcp:localhost".parse::<PortSpec>(),
            Err(PortSpecError::BadTcp("tcp:localhost".into()))
        );
        assert_eq!(
            "tcp:localhost:0".parse::<PortSpec>(),
            Err(PortSpecError::BadTcp("tcp:localhost:0".into()))
        );
        assert_eq!(
            "/dev/ttyS0@fast".parse::<PortSpec>(),
            Err(PortSpecError::BadBaud("fast".into()))
        );
        assert_eq!("".parse::<PortSpec>(), Err(PortSpecError::Empty));
    }
}
