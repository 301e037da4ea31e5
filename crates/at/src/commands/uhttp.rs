//! `+UHTTP`, `+UHTTPC`, `+UUHTTPCR`, `+UHTTPER`: the HTTP(S) client (at-contract §5;
//! application note §4.1; u-blox AT manual §27).
//!
//! | Wire form | Type |
//! |---|---|
//! | `AT+UHTTP=<p>` (reset), `=<p>,<op>` (read), `=<p>,<op>,<value>` (set) | [`HttpProfileCommand`] |
//! | `AT+UHTTPC=<p>,<command>,"<path>",...` | [`HttpRequest`] |
//! | `+UUHTTPCR: <p>,<command>,<result>[,<status>,"<md5>"]` | [`HttpRequestResult`] |
//! | `+UHTTPER: <p>,<class>,<code>` | [`HttpErrorReport`] |
//!
//! **Limits (u-blox AT manual §27)**, in characters: server name or address 128, user and
//! password 30, path and file names 128, custom header 256, `+UHTTPC` data 1024, a user-defined
//! content type 64. What the module checks beyond the shape (a path starts with `/`, a file name
//! follows the file system's rules, a header is `<0-4>:<name>:<value>`) stays with the module.

use std::fmt;
use std::num::NonZeroU16;

use super::usecprf::SecProfileId;
use super::{
    AtString, InfoLine, Md5Digest, ParseError, Reveal, Secret, SetCommand, StringError, Wire,
    WriteArgs, info_fields, parse_all, profile_id, read_bool, secret_args, shown_line,
    wire_display, wire_enum, write_bool,
};
use crate::args::{ArgError, ArgReader, Args};

/// A server name or address (ops 0 and 1).
pub type ServerText = AtString<128>;
/// A user name (op 2).
pub type UserName = AtString<30>;
/// A password (op 3, write-only).
pub type Password = Secret<30>;
/// A path or file name of `+UHTTPC`.
pub type PathText = AtString<128>;

/// The answer to `AT+UHTTP=?`.
pub const PROFILE_TEST_RESPONSE: &str = "+UHTTP: (0-3),(0-7,9)";
/// The answer to `AT+UHTTPC=?`.
pub const REQUEST_TEST_RESPONSE: &str = "+UHTTPC: (0-3),(0-5,100)";

profile_id! {
    /// An HTTP profile id: **0..3**, volatile.
    pub struct HttpProfileId(count = 4);
}

wire_enum! {
    /// A `+UHTTP` op. There is no op 8.
    pub enum HttpOp {
        /// 0: server IP address.
        ServerIp = 0,
        /// 1: server name.
        ServerName = 1,
        /// 2: user name.
        User = 2,
        /// 3: password (write-only).
        Password = 3,
        /// 4: authentication, [`HttpAuthentication`].
        Authentication = 4,
        /// 5: server port (default 80; 443 when op 6 turns TLS on and no port was set).
        Port = 5,
        /// 6: secure (TLS) on or off, with the `+USECPRF` profile.
        Secure = 6,
        /// 7: timeout in seconds.
        Timeout = 7,
        /// 9: custom request header, `"<0-4>:<name>:<value>"`.
        CustomHeader = 9,
    }
}

wire_enum! {
    /// Op 4: HTTP authentication.
    pub enum HttpAuthentication {
        /// 0 (default): none.
        NoAuthentication = 0,
        /// 1: basic, with ops 2 and 3.
        Basic = 1,
    }
}

wire_enum! {
    /// The `+UHTTPC` command.
    pub enum HttpCommand {
        /// 0: HEAD.
        Head = 0,
        /// 1: GET.
        Get = 1,
        /// 2: DELETE.
        Delete = 2,
        /// 3: PUT a file.
        Put = 3,
        /// 4: POST a file.
        PostFile = 4,
        /// 5: POST data given in the command.
        PostData = 5,
        /// 100: firmware download into `FOAT/updatePackage.bin` (a GET).
        FirmwareDownload = 100,
    }
}

impl HttpCommand {
    /// The HTTP method it sends.
    pub const fn method(self) -> &'static str {
        match self {
            HttpCommand::Head => "HEAD",
            HttpCommand::Get | HttpCommand::FirmwareDownload => "GET",
            HttpCommand::Delete => "DELETE",
            HttpCommand::Put => "PUT",
            HttpCommand::PostFile | HttpCommand::PostData => "POST",
        }
    }
}

wire_display!(HttpOp, HttpAuthentication, HttpCommand);

/// Op 7: a timeout of **1..3600 seconds**.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpTimeout(u16);

impl HttpTimeout {
    /// The timeout, if within 1..3600 s.
    pub const fn new(seconds: u16) -> Option<HttpTimeout> {
        if seconds >= 1 && seconds <= 3600 {
            Some(HttpTimeout(seconds))
        } else {
            None
        }
    }

    /// Seconds.
    pub const fn seconds(self) -> u16 {
        self.0
    }
}

/// A `+UHTTP` value as set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpSetting {
    /// Op 0.
    ServerIp(ServerText),
    /// Op 1.
    ServerName(ServerText),
    /// Op 2.
    User(UserName),
    /// Op 3 (write-only).
    Password(Password),
    /// Op 4.
    Authentication(HttpAuthentication),
    /// Op 5.
    Port(NonZeroU16),
    /// Op 6: `<0|1>[,<USECPRF profile>]`; without a profile the module keeps the one it had
    /// (profile 0 by default).
    Secure {
        /// TLS on or off.
        enabled: bool,
        /// The security profile.
        security_profile: Option<SecProfileId>,
    },
    /// Op 7.
    Timeout(HttpTimeout),
    /// Op 9: `"<0-4>:<name>:<value>"` as given (the module checks the inner form).
    CustomHeader(AtString<256>),
}

impl HttpSetting {
    /// The op it sets.
    pub fn op(&self) -> HttpOp {
        match self {
            HttpSetting::ServerIp(_) => HttpOp::ServerIp,
            HttpSetting::ServerName(_) => HttpOp::ServerName,
            HttpSetting::User(_) => HttpOp::User,
            HttpSetting::Password(_) => HttpOp::Password,
            HttpSetting::Authentication(_) => HttpOp::Authentication,
            HttpSetting::Port(_) => HttpOp::Port,
            HttpSetting::Secure { .. } => HttpOp::Secure,
            HttpSetting::Timeout(_) => HttpOp::Timeout,
            HttpSetting::CustomHeader(_) => HttpOp::CustomHeader,
        }
    }

    fn read(op: HttpOp, r: &mut ArgReader<'_>) -> Result<HttpSetting, ArgError> {
        Ok(match op {
            HttpOp::ServerIp => HttpSetting::ServerIp(AtString::read(r)?),
            HttpOp::ServerName => HttpSetting::ServerName(AtString::read(r)?),
            HttpOp::User => HttpSetting::User(AtString::read(r)?),
            HttpOp::Password => HttpSetting::Password(Secret::read(r)?),
            HttpOp::Authentication => HttpSetting::Authentication(r.wire()?),
            HttpOp::Port => {
                let position = r.next_position();
                let port = u16::try_from(r.int(1..=65535)?)
                    .ok()
                    .and_then(NonZeroU16::new)
                    .ok_or(ArgError::OutOfRange { position })?;
                HttpSetting::Port(port)
            }
            HttpOp::Secure => HttpSetting::Secure {
                enabled: read_bool(r)?,
                security_profile: r.opt_wire()?,
            },
            HttpOp::Timeout => {
                let position = r.next_position();
                let secs = u16::try_from(r.int(1..=3600)?)
                    .ok()
                    .and_then(HttpTimeout::new)
                    .ok_or(ArgError::OutOfRange { position })?;
                HttpSetting::Timeout(secs)
            }
            HttpOp::CustomHeader => HttpSetting::CustomHeader(AtString::read(r)?),
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match self {
            HttpSetting::ServerIp(v) | HttpSetting::ServerName(v) => v.write(f),
            HttpSetting::User(v) => v.write(f),
            HttpSetting::Password(v) => v.write(f, reveal),
            HttpSetting::Authentication(v) => write!(f, "{v}"),
            HttpSetting::Port(v) => write!(f, "{v}"),
            HttpSetting::Secure {
                enabled,
                security_profile,
            } => {
                write_bool(f, *enabled)?;
                match security_profile {
                    Some(p) => write!(f, ",{p}"),
                    None => Ok(()),
                }
            }
            HttpSetting::Timeout(t) => write!(f, "{}", t.0),
            HttpSetting::CustomHeader(v) => v.write(f),
        }
    }
}

/// The set form of `+UHTTP`, whichever of its three meanings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpProfileCommand {
    /// `AT+UHTTP=<p>`: back to the defaults.
    Reset(HttpProfileId),
    /// `AT+UHTTP=<p>,<op>`: read one op.
    Read {
        /// The profile.
        profile: HttpProfileId,
        /// The op.
        op: HttpOp,
    },
    /// `AT+UHTTP=<p>,<op>,<value>`.
    Set {
        /// The profile.
        profile: HttpProfileId,
        /// The value, which names its op.
        setting: HttpSetting,
    },
}

impl WriteArgs for HttpProfileCommand {
    fn write_args(&self, f: &mut fmt::Formatter<'_>, reveal: Reveal) -> fmt::Result {
        match self {
            HttpProfileCommand::Reset(p) => write!(f, "{p}"),
            HttpProfileCommand::Read { profile, op } => write!(f, "{profile},{op}"),
            HttpProfileCommand::Set { profile, setting } => {
                write!(f, "{profile},{},", setting.op())?;
                setting.write(f, reveal)
            }
        }
    }
}

secret_args!(HttpProfileCommand);

impl Wire for HttpProfileCommand {
    fn parse(text: &str) -> Result<HttpProfileCommand, ParseError> {
        let mut r = Args(text).reader();
        let profile = r.wire()?;
        let cmd = match r.opt_wire()? {
            None => HttpProfileCommand::Reset(profile),
            Some(op) if r.is_empty() => HttpProfileCommand::Read { profile, op },
            Some(op) => HttpProfileCommand::Set {
                profile,
                setting: HttpSetting::read(op, &mut r)?,
            },
        };
        r.finish()?;
        Ok(cmd)
    }
}

impl SetCommand for HttpProfileCommand {
    const NAME: &'static str = "+UHTTP";

    fn shown(&self) -> String {
        shown_line(self)
    }
}

/// A user-defined content type (`+UHTTPC` content type 6): **1..64 printable ASCII
/// characters**.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MediaType(AtString<64>);

impl MediaType {
    /// A content type, if it follows the rule.
    pub fn new(text: &str) -> Result<MediaType, StringError> {
        if !media_type_fits(text) {
            return Err(StringError::Rule(
                "a content type is 1..64 printable ASCII characters",
            ));
        }
        AtString::new(text).map(MediaType)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

fn media_type_fits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// The `+UHTTPC` content type of a PUT or POST body.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HttpContentType {
    /// 0: `application/x-www-form-urlencoded`.
    FormUrlEncoded,
    /// 1: `text/plain`.
    TextPlain,
    /// 2: `application/octet-stream`.
    OctetStream,
    /// 3: `multipart/form-data`.
    MultipartFormData,
    /// 4: `application/json`.
    Json,
    /// 5: `application/xml`.
    Xml,
    /// 6 with the type as a string.
    UserDefined(MediaType),
}

impl HttpContentType {
    /// The wire number.
    pub fn wire(&self) -> u8 {
        match self {
            HttpContentType::FormUrlEncoded => 0,
            HttpContentType::TextPlain => 1,
            HttpContentType::OctetStream => 2,
            HttpContentType::MultipartFormData => 3,
            HttpContentType::Json => 4,
            HttpContentType::Xml => 5,
            HttpContentType::UserDefined(_) => 6,
        }
    }

    /// The `Content-Type` header value.
    pub fn media_type(&self) -> &str {
        match self {
            HttpContentType::FormUrlEncoded => "application/x-www-form-urlencoded",
            HttpContentType::TextPlain => "text/plain",
            HttpContentType::OctetStream => "application/octet-stream",
            HttpContentType::MultipartFormData => "multipart/form-data",
            HttpContentType::Json => "application/json",
            HttpContentType::Xml => "application/xml",
            HttpContentType::UserDefined(t) => t.as_str(),
        }
    }

    fn read(r: &mut ArgReader<'_>) -> Result<HttpContentType, ArgError> {
        Ok(match r.int(0..=6)? {
            0 => HttpContentType::FormUrlEncoded,
            1 => HttpContentType::TextPlain,
            2 => HttpContentType::OctetStream,
            3 => HttpContentType::MultipartFormData,
            4 => HttpContentType::Json,
            5 => HttpContentType::Xml,
            _ => {
                let position = r.next_position();
                let text: AtString<64> = AtString::read(r)?;
                if !media_type_fits(text.as_str()) {
                    return Err(ArgError::OutOfRange { position });
                }
                HttpContentType::UserDefined(MediaType(text))
            }
        })
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.wire())?;
        if let HttpContentType::UserDefined(t) = self {
            f.write_str(",")?;
            t.0.write(f)?;
        }
        Ok(())
    }
}

/// What a `+UHTTPC` command does, with its own arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpAction {
    /// 0: HEAD; the response goes to `response` (empty: `http_last_response_<p>`).
    Head {
        /// The response file.
        response: PathText,
    },
    /// 1: GET.
    Get {
        /// The response file.
        response: PathText,
    },
    /// 2: DELETE.
    Delete {
        /// The response file.
        response: PathText,
    },
    /// 3: PUT the file `send`.
    Put {
        /// The response file.
        response: PathText,
        /// The file to send.
        send: PathText,
        /// Its content type.
        content_type: HttpContentType,
    },
    /// 4: POST the file `send`.
    PostFile {
        /// The response file.
        response: PathText,
        /// The file to send.
        send: PathText,
        /// Its content type.
        content_type: HttpContentType,
    },
    /// 5: POST `data`.
    PostData {
        /// The response file.
        response: PathText,
        /// The body, **at most 1024 characters**.
        data: AtString<1024>,
        /// Its content type.
        content_type: HttpContentType,
    },
    /// 100: download the firmware package (`AT+UHTTPC=<p>,100,"<path>"`; a file name after
    /// the path is accepted and ignored).
    FirmwareDownload,
}

impl HttpAction {
    /// The command number's meaning.
    pub fn command(&self) -> HttpCommand {
        match self {
            HttpAction::Head { .. } => HttpCommand::Head,
            HttpAction::Get { .. } => HttpCommand::Get,
            HttpAction::Delete { .. } => HttpCommand::Delete,
            HttpAction::Put { .. } => HttpCommand::Put,
            HttpAction::PostFile { .. } => HttpCommand::PostFile,
            HttpAction::PostData { .. } => HttpCommand::PostData,
            HttpAction::FirmwareDownload => HttpCommand::FirmwareDownload,
        }
    }
}

/// `AT+UHTTPC=<p>,<command>,"<path>",...`: start a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The HTTP profile.
    pub profile: HttpProfileId,
    /// The path on the server.
    pub path: PathText,
    /// The command and its arguments.
    pub action: HttpAction,
}

impl HttpRequest {
    fn read(r: &mut ArgReader<'_>) -> Result<HttpRequest, ArgError> {
        let profile = r.wire()?;
        let command: HttpCommand = r.wire()?;
        let path = AtString::read(r)?;
        let action = if command == HttpCommand::FirmwareDownload {
            // Clients that always send a file name keep working; it is not used.
            let _: Option<PathText> = AtString::read_opt(r)?;
            HttpAction::FirmwareDownload
        } else {
            let response = AtString::read(r)?;
            match command {
                HttpCommand::Head => HttpAction::Head { response },
                HttpCommand::Get => HttpAction::Get { response },
                HttpCommand::Delete => HttpAction::Delete { response },
                HttpCommand::Put => HttpAction::Put {
                    response,
                    send: AtString::read(r)?,
                    content_type: HttpContentType::read(r)?,
                },
                HttpCommand::PostFile => HttpAction::PostFile {
                    response,
                    send: AtString::read(r)?,
                    content_type: HttpContentType::read(r)?,
                },
                HttpCommand::PostData | HttpCommand::FirmwareDownload => HttpAction::PostData {
                    response,
                    data: AtString::read(r)?,
                    content_type: HttpContentType::read(r)?,
                },
            }
        };
        Ok(HttpRequest {
            profile,
            path,
            action,
        })
    }
}

impl fmt::Display for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},", self.profile, self.action.command())?;
        self.path.write(f)?;
        match &self.action {
            HttpAction::Head { response }
            | HttpAction::Get { response }
            | HttpAction::Delete { response } => {
                f.write_str(",")?;
                response.write(f)
            }
            HttpAction::Put {
                response,
                send,
                content_type,
            }
            | HttpAction::PostFile {
                response,
                send,
                content_type,
            } => {
                f.write_str(",")?;
                response.write(f)?;
                f.write_str(",")?;
                send.write(f)?;
                f.write_str(",")?;
                content_type.write(f)
            }
            HttpAction::PostData {
                response,
                data,
                content_type,
            } => {
                f.write_str(",")?;
                response.write(f)?;
                f.write_str(",")?;
                data.write(f)?;
                f.write_str(",")?;
                content_type.write(f)
            }
            HttpAction::FirmwareDownload => Ok(()),
        }
    }
}

impl Wire for HttpRequest {
    fn parse(text: &str) -> Result<HttpRequest, ParseError> {
        parse_all(text, HttpRequest::read)
    }
}

impl SetCommand for HttpRequest {
    const NAME: &'static str = "+UHTTPC";
}

/// `+UUHTTPCR: ...`: a request has ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpRequestResult {
    /// `<p>,<command>,<result>` for commands 0..5 (`command` is never
    /// [`HttpCommand::FirmwareDownload`]).
    Request {
        /// The HTTP profile.
        profile: HttpProfileId,
        /// The command.
        command: HttpCommand,
        /// Whether it succeeded (the response is in the file).
        success: bool,
    },
    /// `<p>,100,<result>,<http status>,"<md5>"`.
    FirmwareDownload {
        /// The HTTP profile.
        profile: HttpProfileId,
        /// Whether the package is in place.
        success: bool,
        /// The HTTP status (0 when none arrived).
        status: u16,
        /// MD5 of the package (`""` on the wire when there is none).
        md5: Option<Md5Digest>,
    },
}

impl fmt::Display for HttpRequestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpRequestResult::Request {
                profile,
                command,
                success,
            } => {
                write!(f, "{} {profile},{command},", Self::PREFIX)?;
                write_bool(f, *success)
            }
            HttpRequestResult::FirmwareDownload {
                profile,
                success,
                status,
                md5,
            } => {
                write!(f, "{} {profile},100,", Self::PREFIX)?;
                write_bool(f, *success)?;
                match md5 {
                    Some(m) => write!(f, ",{status},\"{m}\""),
                    None => write!(f, ",{status},\"\""),
                }
            }
        }
    }
}

impl Wire for HttpRequestResult {
    fn parse(line: &str) -> Result<HttpRequestResult, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        let profile = r.wire()?;
        let command = r.wire()?;
        let success = read_bool(&mut r)?;
        let result = if command == HttpCommand::FirmwareDownload {
            // In range: read with the type's bounds.
            let status = u16::try_from(r.int(0..=i64::from(u16::MAX))?).unwrap_or(u16::MAX);
            let position = r.next_position();
            let md5 = match r.string(32)? {
                "" => None,
                hex => Some(Md5Digest::from_hex(hex).ok_or(ArgError::OutOfRange { position })?),
            };
            HttpRequestResult::FirmwareDownload {
                profile,
                success,
                status,
                md5,
            }
        } else {
            HttpRequestResult::Request {
                profile,
                command,
                success,
            }
        };
        r.finish()?;
        Ok(result)
    }
}

impl InfoLine for HttpRequestResult {
    const PREFIX: &'static str = "+UUHTTPCR:";
}

/// `+UHTTPER: <p>,<class>,<code>`: the last error of a profile (`0,0`: none; class 3 code 73
/// for any TLS failure; docs/uhttper.md lists the rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpErrorReport {
    /// The HTTP profile.
    pub profile: HttpProfileId,
    /// The error class.
    pub class: u8,
    /// The error code.
    pub code: u16,
}

impl fmt::Display for HttpErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {},{},{}",
            Self::PREFIX,
            self.profile,
            self.class,
            self.code
        )
    }
}

impl Wire for HttpErrorReport {
    fn parse(line: &str) -> Result<HttpErrorReport, ParseError> {
        let mut r = info_fields(line, Self::PREFIX)?;
        let profile = r.wire()?;
        let class = r.int(0..=i64::from(u8::MAX))?;
        let code = r.int(0..=i64::from(u16::MAX))?;
        r.finish()?;
        Ok(HttpErrorReport {
            profile,
            // In range: read with the types' bounds just above.
            class: u8::try_from(class).unwrap_or(u8::MAX),
            code: u16::try_from(code).unwrap_or(u16::MAX),
        })
    }
}

impl InfoLine for HttpErrorReport {
    const PREFIX: &'static str = "+UHTTPER:";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: u8) -> HttpProfileId {
        HttpProfileId::new(id).unwrap()
    }

    fn text<const N: usize>(s: &str) -> AtString<N> {
        AtString::new(s).unwrap()
    }

    #[test]
    fn numbers_are_http_rs_s() {
        let ops: Vec<u8> = HttpOp::ALL.iter().map(|o| o.wire()).collect();
        assert_eq!(ops, [0, 1, 2, 3, 4, 5, 6, 7, 9]);
        let cmds: Vec<(u8, &str)> = HttpCommand::ALL
            .iter()
            .map(|c| (c.wire(), c.method()))
            .collect();
        assert_eq!(
            cmds,
            [
                (0, "HEAD"),
                (1, "GET"),
                (2, "DELETE"),
                (3, "PUT"),
                (4, "POST"),
                (5, "POST"),
                (100, "GET")
            ]
        );
        assert_eq!(HttpContentType::Json.wire(), 4);
        assert_eq!(HttpContentType::Xml.media_type(), "application/xml");
    }

    #[test]
    fn profile_commands_as_fota_sends_them() {
        let set = |setting| HttpProfileCommand::Set {
            profile: p(0),
            setting,
        };
        assert_eq!(
            HttpProfileCommand::Reset(p(0)).line().as_str(),
            "AT+UHTTP=0"
        );
        assert_eq!(
            set(HttpSetting::ServerName(text("fota.example.com")))
                .line()
                .as_str(),
            "AT+UHTTP=0,1,\"fota.example.com\""
        );
        assert_eq!(
            set(HttpSetting::Port(NonZeroU16::MIN.saturating_add(442)))
                .line()
                .as_str(),
            "AT+UHTTP=0,5,443"
        );
        let secure = set(HttpSetting::Secure {
            enabled: true,
            security_profile: SecProfileId::new(1),
        });
        assert_eq!(secure.line().as_str(), "AT+UHTTP=0,6,1,1");
        assert_eq!(HttpProfileCommand::parse("0,6,1,1"), Ok(secure));
        let pw = set(HttpSetting::Password(Secret::new("pw").unwrap()));
        assert_eq!(pw.shown(), "AT+UHTTP=0,3,\"<redacted>\"");
        for bad in [
            "4",
            "0,8,1",
            "0,5,0",
            "0,5,65536",
            "0,7,3601",
            "0,6,1,5",
            "0,2,\"u\",1",
        ] {
            assert!(HttpProfileCommand::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_print_and_parse() {
        let fw = HttpRequest {
            profile: p(0),
            path: text("/fw/package.zip"),
            action: HttpAction::FirmwareDownload,
        };
        assert_eq!(fw.line().as_str(), "AT+UHTTPC=0,100,\"/fw/package.zip\"");
        assert_eq!(
            HttpRequest::parse("0,100,\"/fw/package.zip\",\"ignored\""),
            Ok(fw)
        );
        let post = HttpRequest {
            profile: p(1),
            path: text("/api"),
            action: HttpAction::PostData {
                response: text(""),
                data: text("{}"),
                content_type: HttpContentType::UserDefined(MediaType::new("text/csv").unwrap()),
            },
        };
        assert_eq!(post.to_string(), "1,5,\"/api\",\"\",\"{}\",6,\"text/csv\"");
        assert_eq!(HttpRequest::parse(&post.to_string()), Ok(post));
        assert!(HttpRequest::parse("0,6,\"/\",\"f\"").is_err());
        assert!(HttpRequest::parse("0,4,\"/\",\"f\",\"g\",6,\"\"").is_err());
        assert!(HttpRequest::parse("0,1,\"/\"").is_err());
    }

    #[test]
    fn results_and_errors() {
        let done = HttpRequestResult::FirmwareDownload {
            profile: p(0),
            success: true,
            status: 200,
            md5: Some(Md5Digest([0x0f; 16])),
        };
        let line = format!("+UUHTTPCR: 0,100,1,200,\"{}\"", "0f".repeat(16));
        assert_eq!(done.to_string(), line);
        assert_eq!(HttpRequestResult::parse(&line), Ok(done));
        let failed = HttpRequestResult::parse("+UUHTTPCR: 0,100,0,0,\"\"");
        assert_eq!(
            failed,
            Ok(HttpRequestResult::FirmwareDownload {
                profile: p(0),
                success: false,
                status: 0,
                md5: None
            })
        );
        assert_eq!(
            HttpRequestResult::parse("+UUHTTPCR: 2,1,1"),
            Ok(HttpRequestResult::Request {
                profile: p(2),
                command: HttpCommand::Get,
                success: true
            })
        );
        assert!(HttpRequestResult::parse("+UUHTTPCR: 0,100,1").is_err());
        let e = HttpErrorReport {
            profile: p(0),
            class: 3,
            code: 73,
        };
        assert_eq!(e.to_string(), "+UHTTPER: 0,3,73");
        assert_eq!(HttpErrorReport::parse("+UHTTPER: 0,3,73"), Ok(e));
    }
}
