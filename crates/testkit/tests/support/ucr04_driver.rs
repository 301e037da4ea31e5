//! The driver of the ublox-cellular-rs **0.4.0** test in `../ublox_cellular_rs.rs`: a program
//! of its own (a scratch package that test builds, with `ucr04_driver.lock`), because 0.4.0
//! cannot be a dependency of this workspace: its atat 0.13 pins
//! `embedded-hal = "=1.0.0-alpha.4"`, and 0.5's `embedded-hal = "1.0.0"` is in the same semver
//! bucket, so one lock file cannot hold both.
//!
//! It drives 0.4's command structs over TCP to the emulator at the address it is given: the
//! exact bytes of `AtatCmd::as_bytes`, atat 0.13's own `DefaultDigester` to cut the answer into
//! the slice `AtatCmd::parse` is given (as its `IngressManager` does), and `AtatUrc::parse` for
//! the URCs. atat 0.13's `Client` itself needs embedded-hal alpha serial and timer traits.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

fn main() {
    let addr = std::env::args().nth(1).expect("the emulator's address");
    driver::run(&addr);
}

mod driver {
    use std::collections::VecDeque;
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::time::{Duration, Instant};

    use no_std_net::{IpAddr, Ipv4Addr};
    use ublox_cellular::atat::heapless::Vec;
    use ublox_cellular::atat::{
        self, AtatCmd, AtatUrc, DefaultDigester, DefaultUrcMatcher, DigestResult, Digester,
        InternalError,
    };
    use ublox_cellular::command::dns::ResolveNameIp;
    use ublox_cellular::command::dns::types::ResolutionType;
    use ublox_cellular::command::ip_transport_layer::types::{
        HexMode, SocketControlParam, SocketProtocol,
    };
    use ublox_cellular::command::ip_transport_layer::urc::SocketDataAvailable;
    use ublox_cellular::command::ip_transport_layer::{
        CloseSocket, ConnectSocket, CreateSocket, GetSocketError, PrepareUDPSendToDataBinary,
        PrepareWriteSocketDataBinary, ReadSocketData, ReadUDPSocketData, SetHexMode, SocketControl,
        UDPSendToDataBinary, WriteSocketData, WriteSocketDataBinary,
    };
    use ublox_cellular::command::mobile_control::SetReportMobileTerminationError;
    use ublox_cellular::command::mobile_control::types::TerminationErrorMode;
    use ublox_cellular::command::{AT, Urc};
    use ublox_cellular::serde_bytes::Bytes;
    use ublox_cellular::sockets::SocketHandle;

    /// The ingress buffer: a +USORD of 512 hex characters and its framing fit.
    const BUF: usize = 2048;
    const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

    /// atat 0.13's ingress side over a TCP stream: the bytes go into the digester as its
    /// `IngressManager` feeds them, responses come back whole, URCs are queued.
    struct Modem {
        stream: TcpStream,
        buf: Vec<u8, BUF>,
        digester: DefaultDigester,
        matcher: DefaultUrcMatcher,
        urcs: VecDeque<std::vec::Vec<u8>>,
    }

    type Answer = Result<Vec<u8, BUF>, InternalError>;

    impl Modem {
        fn connect(addr: &str) -> Modem {
            let stream = TcpStream::connect(addr).unwrap();
            stream.set_nodelay(true).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            Modem {
                stream,
                buf: Vec::new(),
                digester: DefaultDigester::default(),
                matcher: DefaultUrcMatcher,
                urcs: VecDeque::new(),
            }
        }

        /// Runs the digester over what is buffered until it makes no more progress.
        fn digest(&mut self) -> Option<Answer> {
            loop {
                let before = self.buf.len();
                match self.digester.digest(&mut self.buf, &mut self.matcher) {
                    DigestResult::Response(r) => return Some(r),
                    DigestResult::Urc(u) => self.urcs.push_back(u.to_vec()),
                    DigestResult::None if self.buf.len() == before => return None,
                    DigestResult::None => {}
                }
            }
        }

        /// Reads what has arrived (for up to 50 ms) into the ingress buffer.
        fn pump(&mut self, deadline: Instant, what: &str) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let mut chunk = [0u8; 512];
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("the emulator closed the channel waiting for {what}"),
                Ok(n) => self
                    .buf
                    .extend_from_slice(&chunk[..n])
                    .expect("ingress overflow"),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }

        /// Sends `cmd` after checking its exact bytes, and parses the answer as atat's client
        /// does (`check_response`): `parse(Ok(<text before OK>))` or `parse(Err(Error(..)))`.
        fn send<A: AtatCmd<LEN>, const LEN: usize>(
            &mut self,
            cmd: &A,
            bytes: &[u8],
        ) -> Result<A::Response, atat::Error<A::Error>> {
            let out = cmd.as_bytes();
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(bytes),
                "as_bytes()"
            );
            if A::FORCE_RECEIVE_STATE {
                self.digester.force_receive_state();
            }
            self.stream.write_all(&out).unwrap();
            if !A::EXPECTS_RESPONSE_CODE {
                return cmd.parse(Ok(&[]));
            }
            let what = String::from_utf8_lossy(bytes).into_owned();
            let deadline = Instant::now() + Duration::from_secs(10);
            let answer = loop {
                if let Some(answer) = self.digest() {
                    break answer;
                }
                self.pump(deadline, &what);
            };
            println!(
                "{what:?} -> {:?}",
                answer
                    .as_ref()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            );
            match answer {
                Ok(v) => cmd.parse(Ok(&v)),
                Err(e) => cmd.parse(Err(e)),
            }
        }

        /// The next URC, parsed with the crate's `Urc` (`AtatUrc::parse`).
        fn urc(&mut self) -> Urc {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(line) = self.urcs.pop_front() {
                    println!("URC {:?}", String::from_utf8_lossy(&line));
                    return Urc::parse(&line).expect("a URC the crate knows");
                }
                if self.digest().is_some() {
                    panic!("a response while waiting for a URC");
                }
                self.pump(deadline, "a URC");
            }
        }
    }

    fn tcp_echo() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    while let Ok(n) = conn.read(&mut buf) {
                        if n == 0 || conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        port
    }

    fn udp_echo() -> u16 {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        });
        port
    }

    fn data_available(urc: Urc) -> (u8, usize) {
        match urc {
            Urc::SocketDataAvailable(SocketDataAvailable { socket, length }) => (socket.0, length),
            other => panic!("expected +UUSORD, got {other:?}"),
        }
    }

    fn udp_data_available(urc: Urc) -> (u8, usize) {
        match urc {
            Urc::SocketDataAvailableUDP(SocketDataAvailable { socket, length }) => {
                (socket.0, length)
            }
            other => panic!("expected +UUSORF, got {other:?}"),
        }
    }

    fn read(
        modem: &mut Modem,
        socket: u8,
        length: usize,
        bytes: &str,
    ) -> (u8, usize, Option<String>) {
        let data = modem
            .send(
                &ReadSocketData {
                    socket: SocketHandle(socket),
                    length,
                },
                bytes.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{bytes:?}: {e:?}"));
        (
            data.socket.0,
            data.length,
            data.data.map(|d| d.as_str().to_owned()),
        )
    }

    fn control(modem: &mut Modem, param: SocketControlParam, bytes: &str) -> u32 {
        let r = modem
            .send(
                &SocketControl {
                    socket: SocketHandle(0),
                    param_id: param.clone(),
                },
                bytes.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{bytes:?}: {e:?}"));
        assert_eq!(r.socket.0, 0);
        assert!(r.param_id == param, "{bytes:?}: the param_id echoed");
        r.param_val
    }

    fn hex_mode(modem: &mut Modem, on: bool) {
        let (mode, bytes) = if on {
            (HexMode::Enabled, "AT+UDCONF=1,1\r\n")
        } else {
            (HexMode::Disabled, "AT+UDCONF=1,0\r\n")
        };
        modem
            .send(
                &SetHexMode {
                    hex_mode_disable: mode,
                },
                bytes.as_bytes(),
            )
            .expect("AT+UDCONF=1");
    }

    pub(crate) fn run(addr: &str) {
        let tcp_port = tcp_echo();
        let udp_port = udp_echo();
        let mut modem = Modem::connect(addr);

        // atat 0.13's digester needs the echo (the module's default) to know a response
        // from a URC: echo stays on.
        modem.send(&AT, b"AT\r\n").expect("AT");
        modem
            .send(
                &SetReportMobileTerminationError {
                    n: TerminationErrorMode::Enabled,
                },
                b"AT+CMEE=1\r\n",
            )
            .expect("AT+CMEE=1");

        // TCP: create, connect to the echo server, text write, the URC, reads.
        let tcp = modem
            .send(
                &CreateSocket {
                    protocol: SocketProtocol::TCP,
                    local_port: None,
                },
                b"AT+USOCR=6\r\n",
            )
            .expect("AT+USOCR=6");
        assert_eq!(tcp.socket.0, 0);
        modem
            .send(
                &ConnectSocket {
                    socket: SocketHandle(0),
                    remote_addr: LOCALHOST,
                    remote_port: tcp_port,
                },
                format!("AT+USOCO=0,\"127.0.0.1\",{tcp_port}\r\n").as_bytes(),
            )
            .expect("AT+USOCO");
        let written = modem
            .send(
                &WriteSocketData {
                    socket: SocketHandle(0),
                    length: 5,
                    data: "hello",
                },
                b"AT+USOWR=0,5,\"hello\"\r\n",
            )
            .expect("AT+USOWR text");
        assert_eq!((written.socket.0, written.length), (0, 5));
        assert_eq!(data_available(modem.urc()), (0, 5));
        assert_eq!(read(&mut modem, 0, 0, "AT+USORD=0,0\r\n"), (0, 5, None));
        assert_eq!(
            read(&mut modem, 0, 2, "AT+USORD=0,2\r\n"),
            (0, 2, Some("he".into()))
        );
        assert_eq!(data_available(modem.urc()), (0, 3));
        assert_eq!(
            read(&mut modem, 0, 100, "AT+USORD=0,100\r\n"),
            (0, 3, Some("llo".into()))
        );
        assert_eq!(
            read(&mut modem, 0, 10, "AT+USORD=0,10\r\n"),
            (0, 0, Some(String::new()))
        );

        // Hex mode: the crate's hex write (`WriteSocketDataHex`, data `&[u8]`) panics in
        // serde_at 0.13 (`serialize_seq` is unreachable!()), so the text struct carries the
        // hex digits, as the manual's base syntax has them.
        hex_mode(&mut modem, true);
        let written = modem
            .send(
                &WriteSocketData {
                    socket: SocketHandle(0),
                    length: 4,
                    data: "00FF0D0A",
                },
                b"AT+USOWR=0,4,\"00FF0D0A\"\r\n",
            )
            .expect("AT+USOWR hex");
        assert_eq!((written.socket.0, written.length), (0, 4));
        assert_eq!(data_available(modem.urc()), (0, 4));
        assert_eq!(
            read(&mut modem, 0, 4, "AT+USORD=0,4\r\n"),
            (0, 4, Some("00FF0D0A".into()))
        );
        hex_mode(&mut modem, false);

        // Binary: the @ prompt, then the raw bytes (a quote, CR LF, a NUL), which the crate
        // reads back in hex mode as its data service does. atat 0.13 ends every command line
        // with CR LF: the LF ends the command line, it is not the first data byte.
        modem
            .send(
                &PrepareWriteSocketDataBinary {
                    socket: SocketHandle(0),
                    length: 6,
                },
                b"AT+USOWR=0,6\r\n",
            )
            .expect("AT+USOWR binary prompt");
        let payload: &[u8] = b"a\"\r\nb\0";
        let written = modem
            .send(
                &WriteSocketDataBinary {
                    data: Bytes::new(payload),
                },
                payload,
            )
            .expect("AT+USOWR binary data");
        assert_eq!((written.socket.0, written.length), (0, 6));
        assert_eq!(data_available(modem.urc()), (0, 6));
        hex_mode(&mut modem, true);
        assert_eq!(
            read(&mut modem, 0, 6, "AT+USORD=0,6\r\n"),
            (0, 6, Some("61220D0A6200".into()))
        );
        hex_mode(&mut modem, false);

        // +USOCTL and +USOER: 15 bytes each way, an established TCP socket, no error.
        use SocketControlParam as P;
        assert_eq!(control(&mut modem, P::SocketType, "AT+USOCTL=0,0\r\n"), 6);
        assert_eq!(
            control(&mut modem, P::LastSocketError, "AT+USOCTL=0,1\r\n"),
            0
        );
        assert_eq!(control(&mut modem, P::BytesSent, "AT+USOCTL=0,2\r\n"), 15);
        assert_eq!(
            control(&mut modem, P::BytesReceived, "AT+USOCTL=0,3\r\n"),
            15
        );
        assert_eq!(
            control(&mut modem, P::SocketStatus, "AT+USOCTL=0,10\r\n"),
            4
        );
        assert_eq!(
            control(&mut modem, P::OutgoingUnackData, "AT+USOCTL=0,11\r\n"),
            0
        );
        // Param 4 answers `+USOCTL: 0,4,"127.0.0.1",<port>` (the manual's form), which the
        // response's `param_val: u32` cannot hold.
        let peer = modem.send(
            &SocketControl {
                socket: SocketHandle(0),
                param_id: P::RemotePeerSocketAddr,
            },
            b"AT+USOCTL=0,4\r\n",
        );
        assert!(matches!(peer, Err(atat::Error::Parse)));
        let error = modem
            .send(&GetSocketError, b"AT+USOER\r\n")
            .expect("AT+USOER");
        assert_eq!(error.error, 0);

        // UDP beside it: socket 1, a binary sendto, +UUSORF, then +USORF in hex mode.
        let udp = modem
            .send(
                &CreateSocket {
                    protocol: SocketProtocol::UDP,
                    local_port: None,
                },
                b"AT+USOCR=17\r\n",
            )
            .expect("AT+USOCR=17");
        assert_eq!(udp.socket.0, 1);
        modem
            .send(
                &PrepareUDPSendToDataBinary {
                    socket: SocketHandle(1),
                    remote_addr: LOCALHOST,
                    remote_port: udp_port,
                    length: 4,
                },
                format!("AT+USOST=1,\"127.0.0.1\",{udp_port},4\r\n").as_bytes(),
            )
            .expect("AT+USOST prompt");
        let datagram: &[u8] = b"\0\r\n\"";
        let sent = modem
            .send(
                &UDPSendToDataBinary {
                    data: Bytes::new(datagram),
                },
                datagram,
            )
            .expect("AT+USOST data");
        assert_eq!((sent.socket.0, sent.length), (1, 4));
        assert_eq!(udp_data_available(modem.urc()), (1, 4));
        // The length query answers `+USORF: 1,4` (manual: no address), which the crate's
        // `UDPSocketData` (address and port mandatory) cannot parse.
        let query = modem.send(
            &ReadUDPSocketData {
                socket: SocketHandle(1),
                length: 0,
            },
            b"AT+USORF=1,0\r\n",
        );
        assert!(matches!(query, Err(atat::Error::Parse)));
        hex_mode(&mut modem, true);
        let got = modem
            .send(
                &ReadUDPSocketData {
                    socket: SocketHandle(1),
                    length: 1024,
                },
                b"AT+USORF=1,1024\r\n",
            )
            .expect("AT+USORF");
        assert_eq!(got.socket.0, 1);
        assert!(got.remote_addr == LOCALHOST);
        assert_eq!(got.remote_port, udp_port);
        assert_eq!(got.length, 4);
        // The datagram whole: NUL, CR, LF and a quote.
        assert_eq!(got.data.as_deref(), Some("000D0A22"));
        hex_mode(&mut modem, false);

        // +USOCO on the UDP socket that has sent with +USOST fixes its peer (BSD's connect).
        let connect = |socket| ConnectSocket {
            socket: SocketHandle(socket),
            remote_addr: LOCALHOST,
            remote_port: udp_port,
        };
        modem
            .send(
                &connect(1),
                format!("AT+USOCO=1,\"127.0.0.1\",{udp_port}\r\n").as_bytes(),
            )
            .expect("AT+USOCO on a bound UDP socket");
        let written = modem
            .send(
                &WriteSocketData {
                    socket: SocketHandle(1),
                    length: 2,
                    data: "hi",
                },
                b"AT+USOWR=1,2,\"hi\"\r\n",
            )
            .expect("AT+USOWR on it");
        assert_eq!((written.socket.0, written.length), (1, 2));
        assert_eq!(udp_data_available(modem.urc()), (1, 2));
        assert_eq!(
            read(&mut modem, 1, 100, "AT+USORD=1,100\r\n"),
            (1, 2, Some("hi".into()))
        );

        // A connected UDP socket (a fresh one): +USOCO fixes the peer, then +USOWR and +USORD.
        let udp = modem
            .send(
                &CreateSocket {
                    protocol: SocketProtocol::UDP,
                    local_port: None,
                },
                b"AT+USOCR=17\r\n",
            )
            .expect("AT+USOCR=17");
        assert_eq!(udp.socket.0, 2);
        modem
            .send(
                &connect(2),
                format!("AT+USOCO=2,\"127.0.0.1\",{udp_port}\r\n").as_bytes(),
            )
            .expect("AT+USOCO udp");
        let written = modem
            .send(
                &WriteSocketData {
                    socket: SocketHandle(2),
                    length: 4,
                    data: "ping",
                },
                b"AT+USOWR=2,4,\"ping\"\r\n",
            )
            .expect("AT+USOWR udp");
        assert_eq!((written.socket.0, written.length), (2, 4));
        assert_eq!(udp_data_available(modem.urc()), (2, 4));
        assert_eq!(
            read(&mut modem, 2, 100, "AT+USORD=2,100\r\n"),
            (2, 4, Some("ping".into()))
        );

        // DNS through the host's resolver.
        let resolved = modem
            .send(
                &ResolveNameIp {
                    resolution_type: ResolutionType::DomainNameToIp,
                    ip_domain_string: "localhost",
                },
                b"AT+UDNSRN=0,\"localhost\"\r\n",
            )
            .expect("AT+UDNSRN");
        assert_eq!(resolved.ip_domain_string.as_str(), "127.0.0.1");

        // Close them; a closed socket is an error, and +USOER says EBADF (9).
        for (socket, bytes) in [
            (0, "AT+USOCL=0\r\n"),
            (1, "AT+USOCL=1\r\n"),
            (2, "AT+USOCL=2\r\n"),
        ] {
            modem
                .send(
                    &CloseSocket {
                        socket: SocketHandle(socket),
                    },
                    bytes.as_bytes(),
                )
                .expect("AT+USOCL");
        }
        let closed = modem.send(
            &ReadSocketData {
                socket: SocketHandle(0),
                length: 1,
            },
            b"AT+USORD=0,1\r\n",
        );
        assert!(matches!(closed, Err(atat::Error::Error(_))));
        let error = modem
            .send(&GetSocketError, b"AT+USOER\r\n")
            .expect("AT+USOER");
        assert_eq!(error.error, 9);
        modem.send(&AT, b"AT\r\n").expect("AT at the end");
        println!("ublox-cellular-rs 0.4.0: all socket checks passed");
    }
}
