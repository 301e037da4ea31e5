//! The one table of `+CME ERROR` codes and texts (at-contract §9).
//!
//! Both wire forms come from this table: `AT+CMEE=1` prints the number, `AT+CMEE=2` the text.
//! Texts follow the u-blox AT manual appendix and the forms seen on real modules
//! (`FILE NOT FOUND`, `FFS TIMEOUT` in capitals, `unknown` in lower case).

macro_rules! cme_table {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $text:literal; )*) => {
        /// A `+CME ERROR` result: the module understood the command but refused or failed it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum CmeError {
            $( $(#[$doc])* $variant, )*
        }

        impl CmeError {
            /// Every code of the table, in table order.
            pub const ALL: &'static [CmeError] = &[$(CmeError::$variant,)*];

            /// The numeric code printed with `AT+CMEE=1`.
            pub const fn code(self) -> u16 {
                match self { $(CmeError::$variant => $code,)* }
            }

            /// The verbose text printed with `AT+CMEE=2`.
            pub const fn text(self) -> &'static str {
                match self { $(CmeError::$variant => $text,)* }
            }

            /// The error with this numeric code, if the table has it.
            pub fn from_code(code: u16) -> Option<CmeError> {
                match code { $($code => Some(CmeError::$variant),)* _ => None }
            }
        }
    };
}

cme_table! {
    /// Command valid but refused in the module's current state (for example, after the seal).
    OperationNotAllowed = 3, "Operation not allowed";
    /// Wrong argument count, type or range.
    OperationNotSupported = 4, "Operation not supported";
    /// A password did not match.
    IncorrectPassword = 16, "Incorrect password";
    /// No room left.
    MemoryFull = 20, "Memory full";
    /// Internal storage failed.
    MemoryFailure = 23, "Memory failure";
    /// A string argument is longer than the command allows.
    TextStringTooLong = 24, "Text string too long";
    /// A string argument holds characters the command does not allow.
    InvalidCharactersInTextString = 25, "Invalid characters in text string";
    /// Generic parameter error.
    IncorrectParameters = 50, "Incorrect parameters";
    /// Unknown command, or a form the command does not define.
    Unknown = 100, "unknown";
    /// Generic flash file system error.
    FfsError = 1600, "FFS error";
    /// The named file does not exist.
    FileNotFound = 1612, "FILE NOT FOUND";
    /// The file exists but could not be opened.
    CannotOpenFile = 1613, "Cannot open file";
    /// File system: file not found.
    FfsFileNotFound = 1624, "FFS file not found";
    /// The file system has no room for the data.
    FfsMemoryNotAvailable = 1637, "FFS memory not available";
    /// The file name breaks the naming rules.
    FfsInvalidFilename = 1638, "FFS invalid filename";
    /// No payload byte arrived within the timeout during `+UDWNFILE`.
    FfsTimeout = 1649, "FFS TIMEOUT";
    /// Security: remote object in the wrong state.
    SecRemoteObjectWrongState = 1670, "SEC remote object wrong state";
    /// Security: root of trust not personalized.
    SecRotNotPersonalized = 1671, "SEC ROT not personalized";
    /// Security: loss of connectivity.
    SecLossOfConnectivity = 1672, "SEC loss of connectivity";
    /// Security: service not authorized.
    SecServiceNotAuthorized = 1673, "SEC service not authorized";
    /// Security: a firmware package installation is required.
    SecFwPackageInstallationRequired = 1674, "SEC FW package installation required";
    /// Security: the firmware package is not valid (signature or format).
    SecFwPackageNotValid = 1675, "SEC FW package not valid";
    /// Security: resource not available.
    SecResourceNotAvailable = 1676, "SEC resource not available";
    /// Security: data not available.
    SecDataNotAvailable = 1677, "SEC data not available";
    /// Security: timeout.
    SecTimeout = 1678, "SEC timeout";
    /// Security: stored data inconsistent or unsupported (a cloned or tampered store).
    SecDataInconsistentOrUnsupported = 1679, "SEC data inconsistent or unsupported";
    /// Security: PSPK lock pending.
    SecPspkLockPending = 1680, "SEC pspk lock pending";
    /// Security: C2C already paired.
    SecC2cAlreadyPaired = 1681, "SEC C2C already paired";
    /// Security: C2C channels consumed.
    SecC2cChannelsConsumed = 1682, "SEC C2C channels consumed";
    /// Security: C2C pairing not present.
    SecC2cPairingNotPresent = 1683, "SEC C2C pairing not present";
    /// Security: busy.
    SecBusy = 1684, "SEC busy";
    /// No payload byte arrived within the timeout during `+USECMNG` import.
    UsecmngImportTimeout = 1910, "USECMNG import timeout expired (no input for > 20 s)";
    /// The declared `+USECMNG` import size exceeds the limit (**8192 bytes on TOBY-L2**).
    UsecmngImportFileSizeExceedsLimit = 1911, "USECMNG import file size exceeds limit";
    /// The credential store has no memory left.
    UsecmngNoMemoryAvailable = 1912, "USECMNG no memory available";
    /// The imported data is not a certificate or key in an accepted format.
    UsecmngInvalidCertificateKeyFormat = 1913, "USECMNG invalid certificate/key format";
    /// The credential store is full (**16 items on TOBY-L2**).
    UsecmngDatabaseFull = 1914, "USECMNG database full";
    /// The command timed out.
    CommandTimeout = 2000, "Command timeout";
    /// The command was aborted.
    CommandAborted = 3000, "Command aborted";
    /// FOTA: package download state or name mismatch.
    FotaPackageDownloadStateOrNameMismatch = 5000, "FOTA package download state or name mismatch";
    /// FOTA: package data corrupted (for example an MD5 mismatch).
    FotaPackageDataCorrupted = 5001, "FOTA package data corrupted";
    /// FOTA: memory is in use.
    FotaMemoryIsInUse = 5002, "FOTA memory is in use";
}

impl CmeError {
    /// Looks up a verbose text as printed with `AT+CMEE=2` (case-insensitive, since modules
    /// differ in capitalisation).
    pub fn from_text(text: &str) -> Option<CmeError> {
        let text = text.trim();
        CmeError::ALL
            .iter()
            .copied()
            .find(|e| e.text().eq_ignore_ascii_case(text))
    }
}

impl core::fmt::Display for CmeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "+CME ERROR: {} ({})", self.code(), self.text())
    }
}

impl std::error::Error for CmeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_texts_are_unique_and_round_trip() {
        let mut codes = std::collections::HashSet::new();
        let mut texts = std::collections::HashSet::new();
        for &e in CmeError::ALL {
            assert!(codes.insert(e.code()), "duplicate code {}", e.code());
            assert!(
                texts.insert(e.text().to_ascii_lowercase()),
                "duplicate text {}",
                e.text()
            );
            assert_eq!(CmeError::from_code(e.code()), Some(e));
            assert_eq!(CmeError::from_text(e.text()), Some(e));
        }
    }

    #[test]
    fn contract_codes_have_contract_texts() {
        assert_eq!(CmeError::Unknown.code(), 100);
        assert_eq!(CmeError::Unknown.text(), "unknown");
        assert_eq!(CmeError::FileNotFound.text(), "FILE NOT FOUND");
        assert_eq!(CmeError::FfsTimeout.code(), 1649);
        assert_eq!(CmeError::SecFwPackageNotValid.code(), 1675);
        assert_eq!(CmeError::SecDataInconsistentOrUnsupported.code(), 1679);
        assert_eq!(CmeError::UsecmngDatabaseFull.code(), 1914);
        let sec: Vec<u16> = CmeError::ALL
            .iter()
            .map(|e| e.code())
            .filter(|c| (1670..=1684).contains(c))
            .collect();
        assert_eq!(sec, (1670..=1684).collect::<Vec<_>>());
    }
}
