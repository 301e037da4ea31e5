//! The host's small parsers on arbitrary input: ports, URLs and the quoted fields of list lines
//! never panic, and what parses prints back to itself.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use sealcell_host::fota::HttpsUrl;
use sealcell_host::port::PortSpec;
use sealcell_host::provision::quoted_fields;

proptest! {
    #[test]
    fn ports_parse_or_refuse_and_round_trip(s in "\\PC{0,40}|tcp:[a-z0-9.:\\[\\]]{0,20}:[0-9]{0,6}|/dev/tty[A-Z]{0,4}[0-9]?(@[0-9]{0,8})?") {
        if let Ok(p) = s.parse::<PortSpec>() {
            let again: PortSpec = p.to_string().parse().unwrap();
            prop_assert_eq!(&again.to_string(), &p.to_string());
        }
    }

    #[test]
    fn urls_parse_or_refuse(s in "\\PC{0,60}|https://[a-z0-9.:@\\[\\]]{0,20}(:[0-9]{0,6})?(/\\PC{0,20})?") {
        if let Ok(u) = s.parse::<HttpsUrl>() {
            prop_assert!(u.path.starts_with('/'));
            prop_assert!(!u.host.is_empty());
            prop_assert!(!u.path.contains('"'));
        }
    }

    #[test]
    fn quoted_fields_take_what_is_between_quotes(fields in proptest::collection::vec("[^\"]{0,12}", 0..6)) {
        let line = fields.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(",");
        prop_assert_eq!(quoted_fields(&line), fields);
    }
}
