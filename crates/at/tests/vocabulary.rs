//! The command vocabulary (`sealcell_at::commands`) round-trips: every generated value prints
//! to text that parses back to it (through the same hook the fuzzer calls), and arbitrary text
//! either does not parse or parses -> prints -> parses to the same value.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU16;

use proptest::prelude::*;
use proptest::sample::select;
use sealcell_at::commands::uhttp::{
    HttpAction, HttpAuthentication, HttpCommand, HttpContentType, HttpErrorReport, HttpOp,
    HttpProfileCommand, HttpProfileId, HttpRequest, HttpRequestResult, HttpSetting, HttpTimeout,
    MediaType,
};
use sealcell_at::commands::useccfg::{SealPassword, SecCfgCommand, SecCfgStatus};
use sealcell_at::commands::usecmng::{
    CertificateFacts, CredentialType, SecMngCommand, SecMngListItem, SecMngReport, SecMngReportOp,
};
use sealcell_at::commands::usecprf::{
    CipherSuite, IanaForm, LegacySuite, MinTlsVersion, PinLevel, Pinning, Psk, PskEncoding,
    PskIdentity, ResumptionSetting, ResumptionType, SecPrfCommand, SecPrfOp, SecPrfRead, SecPrfSet,
    SecPrfValue, SecProfileId, ValidationLevel,
};
use sealcell_at::commands::{AtString, Md5Digest, Secret, SetCommand};
use sealcell_at::fuzzing::{vocabulary, vocabulary_value};

/// Text an AT string can carry: no quote, no control character; at most `max` characters
/// (and at most 40, to keep cases small; the limits have their own unit tests).
fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[^\"\\p{{Cc}}]{{0,{}}}", max.min(40))).unwrap()
}

fn at<const N: usize>() -> impl Strategy<Value = AtString<N>> {
    text(N).prop_map(|s| AtString::new(s).unwrap())
}

fn secret<const N: usize>() -> impl Strategy<Value = Secret<N>> {
    text(N).prop_map(|s| Secret::new(&s).unwrap())
}

fn kind() -> impl Strategy<Value = CredentialType> {
    select(CredentialType::ALL.to_vec())
}

fn sec_profile() -> impl Strategy<Value = SecProfileId> {
    (0..SecProfileId::COUNT).prop_map(|p| SecProfileId::new(p).unwrap())
}

fn http_profile() -> impl Strategy<Value = HttpProfileId> {
    (0..HttpProfileId::COUNT).prop_map(|p| HttpProfileId::new(p).unwrap())
}

fn cipher() -> impl Strategy<Value = CipherSuite> {
    prop_oneof![
        Just(CipherSuite::Automatic),
        (1u8..=15).prop_map(|n| CipherSuite::Legacy(LegacySuite::new(n).unwrap())),
        (select(IanaForm::ALL), any::<u16>())
            .prop_map(|(form, code)| CipherSuite::Iana { form, code }),
    ]
}

fn psk() -> impl Strategy<Value = Psk> {
    prop_oneof![
        "[ !#-~]{0,64}".prop_map(|k| (k, PskEncoding::Ascii)),
        "([0-9A-Fa-f]{2}){0,64}".prop_map(|k| (k, PskEncoding::Hex)),
    ]
    .prop_map(|(k, e)| Psk::new(Secret::new(&k).unwrap(), e).unwrap())
}

fn psk_identity() -> impl Strategy<Value = PskIdentity> {
    prop_oneof![
        "[ !#-~]{0,128}".prop_map(|k| (k, PskEncoding::Ascii)),
        "([0-9a-f]{2}){0,30}".prop_map(|k| (k, PskEncoding::Hex)),
    ]
    .prop_map(|(k, e)| PskIdentity::new(AtString::new(k).unwrap(), e).unwrap())
}

fn sec_prf_value() -> impl Strategy<Value = SecPrfValue> {
    prop_oneof![
        select(ValidationLevel::ALL).prop_map(SecPrfValue::ValidationLevel),
        select(MinTlsVersion::ALL).prop_map(SecPrfValue::MinTlsVersion),
        cipher().prop_map(SecPrfValue::CipherSuite),
        at().prop_map(SecPrfValue::TrustedRoot),
        at().prop_map(SecPrfValue::ExpectedHostname),
        at().prop_map(SecPrfValue::ClientCertificate),
        at().prop_map(SecPrfValue::ClientKey),
        secret().prop_map(SecPrfValue::ClientKeyPassword),
        psk().prop_map(SecPrfValue::PreSharedKey),
        psk_identity().prop_map(SecPrfValue::PskIdentity),
        at().prop_map(SecPrfValue::ServerNameIndication),
        (at(), select(PinLevel::ALL)).prop_map(|(name, level)| {
            SecPrfValue::ServerCertificatePinning(Pinning { name, level })
        }),
        prop_oneof![
            any::<bool>().prop_map(ResumptionSetting::Enabled),
            select(ResumptionType::ALL).prop_map(ResumptionSetting::Type),
            (at(), proptest::option::of(secret()))
                .prop_map(|(id, master_key)| ResumptionSetting::Session { id, master_key }),
        ]
        .prop_map(SecPrfValue::SessionResumption),
    ]
}

fn sec_prf_set() -> impl Strategy<Value = SecPrfSet> {
    (sec_profile(), sec_prf_value()).prop_map(|(profile, value)| SecPrfSet { profile, value })
}

fn sec_prf_command() -> impl Strategy<Value = SecPrfCommand> {
    prop_oneof![
        sec_profile().prop_map(SecPrfCommand::Reset),
        (sec_profile(), select(SecPrfOp::ALL))
            .prop_map(|(profile, op)| SecPrfCommand::Read { profile, op }),
        sec_prf_set().prop_map(SecPrfCommand::Set),
    ]
}

fn sec_prf_read() -> impl Strategy<Value = SecPrfRead> {
    sec_prf_set().prop_filter_map("write-only op", |s| {
        s.value.reading().map(|reading| SecPrfRead {
            profile: s.profile,
            reading,
        })
    })
}

fn sec_mng_command() -> impl Strategy<Value = SecMngCommand> {
    prop_oneof![
        (kind(), at(), any::<i64>(), proptest::option::of(secret())).prop_map(
            |(kind, name, size, password)| SecMngCommand::Import {
                kind,
                name,
                size,
                password
            }
        ),
        (kind(), at(), at(), proptest::option::of(secret())).prop_map(
            |(kind, name, file, password)| SecMngCommand::ImportFile {
                kind,
                name,
                file,
                password
            }
        ),
        (kind(), at()).prop_map(|(kind, name)| SecMngCommand::Remove { kind, name }),
        proptest::option::of(kind()).prop_map(SecMngCommand::List),
        (kind(), at()).prop_map(|(kind, name)| SecMngCommand::Md5 { kind, name }),
    ]
}

fn md5() -> impl Strategy<Value = Md5Digest> {
    any::<[u8; 16]>().prop_map(Md5Digest)
}

fn sec_mng_report() -> impl Strategy<Value = SecMngReport> {
    (select(SecMngReportOp::ALL), kind(), at(), md5()).prop_map(|(op, kind, name, md5)| {
        SecMngReport {
            op,
            kind,
            name,
            md5,
        }
    })
}

fn sec_mng_list_item() -> impl Strategy<Value = SecMngListItem> {
    (
        kind(),
        at(),
        proptest::option::of((at(), at())).prop_map(|c| {
            c.map(|(subject_cn, not_after)| CertificateFacts {
                subject_cn,
                not_after,
            })
        }),
    )
        .prop_map(|(kind, name, certificate)| SecMngListItem {
            kind,
            name,
            certificate,
        })
}

fn sec_cfg_command() -> impl Strategy<Value = SecCfgCommand> {
    prop_oneof![
        Just(SecCfgCommand::Status),
        Just(SecCfgCommand::Disable),
        "[ !#-~]{1,128}".prop_map(|p| SecCfgCommand::Seal(SealPassword::new(&p).unwrap())),
    ]
}

fn content_type() -> impl Strategy<Value = HttpContentType> {
    prop_oneof![
        Just(HttpContentType::FormUrlEncoded),
        Just(HttpContentType::TextPlain),
        Just(HttpContentType::OctetStream),
        Just(HttpContentType::MultipartFormData),
        Just(HttpContentType::Json),
        Just(HttpContentType::Xml),
        "[ !#-~]{1,64}".prop_map(|t| HttpContentType::UserDefined(MediaType::new(&t).unwrap())),
    ]
}

fn http_setting() -> impl Strategy<Value = HttpSetting> {
    prop_oneof![
        at().prop_map(HttpSetting::ServerIp),
        at().prop_map(HttpSetting::ServerName),
        at().prop_map(HttpSetting::User),
        secret().prop_map(HttpSetting::Password),
        select(HttpAuthentication::ALL).prop_map(HttpSetting::Authentication),
        (1u16..).prop_map(|p| HttpSetting::Port(NonZeroU16::new(p).unwrap())),
        (any::<bool>(), proptest::option::of(sec_profile())).prop_map(
            |(enabled, security_profile)| HttpSetting::Secure {
                enabled,
                security_profile
            }
        ),
        (1u16..=3600).prop_map(|s| HttpSetting::Timeout(HttpTimeout::new(s).unwrap())),
        at().prop_map(HttpSetting::CustomHeader),
    ]
}

fn http_profile_command() -> impl Strategy<Value = HttpProfileCommand> {
    prop_oneof![
        http_profile().prop_map(HttpProfileCommand::Reset),
        (http_profile(), select(HttpOp::ALL))
            .prop_map(|(profile, op)| HttpProfileCommand::Read { profile, op }),
        (http_profile(), http_setting())
            .prop_map(|(profile, setting)| HttpProfileCommand::Set { profile, setting }),
    ]
}

fn http_action() -> impl Strategy<Value = HttpAction> {
    prop_oneof![
        at().prop_map(|response| HttpAction::Head { response }),
        at().prop_map(|response| HttpAction::Get { response }),
        at().prop_map(|response| HttpAction::Delete { response }),
        (at(), at(), content_type()).prop_map(|(response, send, content_type)| HttpAction::Put {
            response,
            send,
            content_type
        }),
        (at(), at(), content_type()).prop_map(|(response, send, content_type)| {
            HttpAction::PostFile {
                response,
                send,
                content_type,
            }
        }),
        (at(), at(), content_type()).prop_map(|(response, data, content_type)| {
            HttpAction::PostData {
                response,
                data,
                content_type,
            }
        }),
        Just(HttpAction::FirmwareDownload),
    ]
}

fn http_request() -> impl Strategy<Value = HttpRequest> {
    (http_profile(), at(), http_action()).prop_map(|(profile, path, action)| HttpRequest {
        profile,
        path,
        action,
    })
}

fn http_request_result() -> impl Strategy<Value = HttpRequestResult> {
    let command = select(
        HttpCommand::ALL
            .iter()
            .copied()
            .filter(|c| *c != HttpCommand::FirmwareDownload)
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        (http_profile(), command, any::<bool>()).prop_map(|(profile, command, success)| {
            HttpRequestResult::Request {
                profile,
                command,
                success,
            }
        }),
        (
            http_profile(),
            any::<bool>(),
            any::<u16>(),
            proptest::option::of(md5())
        )
            .prop_map(|(profile, success, status, md5)| {
                HttpRequestResult::FirmwareDownload {
                    profile,
                    success,
                    status,
                    md5,
                }
            }),
    ]
}

fn http_error_report() -> impl Strategy<Value = HttpErrorReport> {
    (http_profile(), any::<u8>(), any::<u16>()).prop_map(|(profile, class, code)| HttpErrorReport {
        profile,
        class,
        code,
    })
}

/// Text shaped like AT arguments: integers, quoted strings, bare tokens and omissions, joined by
/// commas, so the parsers see many near misses.
fn argument_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        (-3i64..300).prop_map(|n| n.to_string()),
        "[0-9]{1,22}",
        "\"[^\"]{0,12}\"",
        "\"[0-9A-Fa-f]{0,34}\"",
        Just(String::new()),
        "[A-Z0-9+-]{1,3}",
    ];
    proptest::collection::vec(token, 0..8).prop_map(|t| t.join(","))
}

proptest! {
    #[test]
    fn usecprf_values_round_trip(
        cmd in sec_prf_command(),
        set in sec_prf_set(),
        read in sec_prf_read(),
    ) {
        vocabulary_value(&cmd);
        vocabulary_value(&set);
        vocabulary_value(&read);
        vocabulary(cmd.to_string().as_bytes());
        vocabulary(read.to_string().as_bytes());
        // What the host sends is what the module parses.
        let line = set.line();
        let args = set.to_string();
        prop_assert_eq!(line.strip_prefix("AT+USECPRF="), Some(args.as_str()));
    }

    #[test]
    fn usecmng_values_round_trip(
        cmd in sec_mng_command(),
        report in sec_mng_report(),
        item in sec_mng_list_item(),
    ) {
        vocabulary_value(&cmd);
        vocabulary_value(&report);
        vocabulary_value(&item);
        vocabulary(cmd.to_string().as_bytes());
        vocabulary(report.to_string().as_bytes());
        vocabulary(item.to_string().as_bytes());
    }

    #[test]
    fn useccfg_values_round_trip(cmd in sec_cfg_command(), sealed in any::<bool>()) {
        vocabulary_value(&cmd);
        vocabulary_value(&SecCfgStatus { sealed });
        // A shown line never holds the password.
        if let SecCfgCommand::Seal(p) = &cmd {
            prop_assert!(cmd.shown().ends_with("\"<redacted>\""));
            let line = cmd.line();
            prop_assert_eq!(line.as_str(), format!("AT+USECCFG=0,1,\"{}\"", p.expose()));
        }
    }

    #[test]
    fn uhttp_values_round_trip(
        profile in http_profile_command(),
        request in http_request(),
        result in http_request_result(),
        error in http_error_report(),
    ) {
        vocabulary_value(&profile);
        vocabulary_value(&request);
        vocabulary_value(&result);
        vocabulary_value(&error);
        vocabulary(request.to_string().as_bytes());
        vocabulary(result.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_text_parses_or_is_refused(s in "\\PC{0,80}") {
        vocabulary(s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_parse_or_are_refused(b in proptest::collection::vec(any::<u8>(), 0..80)) {
        vocabulary(&b);
    }

    #[test]
    fn argument_shaped_text_parses_or_is_refused(s in argument_text()) {
        vocabulary(s.as_bytes());
    }
}
