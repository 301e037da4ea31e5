//! Restricted SIM access (at-contract §1.1; u-blox AT manual, SIM management chapter, "Restricted
//! SIM access +CRSM"; 3GPP TS 27.007 §8.18) on the emulated USIM.
//!
//! The card has four transparent elementary files: EF ICCID (`2FE2`, TS 102 221 §13.2), EF IMSI
//! (`6F07`, TS 31.102 §4.2.2), EF FPLMN (`6F7B`, §4.2.16, the only one a host may update, kept
//! in `nvm.toml`) and EF AD (`6FAD`, §4.2.18). Answers carry the card's status words
//! `<sw1>,<sw2>` as decimal numbers: `144,0` (`9000`) is success; a refusal by the card is
//! still `OK` at the AT level. Only a malformed command line is a `+CME ERROR: 4`.
//!
//! ```text
//! AT+CRSM=176,28539,0,0,12        +CRSM: 144,0,"FFFFFFFFFFFFFFFFFFFFFFFF"
//! AT+CRSM=214,28539,0,0,3,"00F110"  +CRSM: 144,0
//! AT+CRSM=176,28472,0,0,1         +CRSM: 106,130   (no such file)
//! ```

use sealcell_at::CmeError;
use sealcell_at::args::ArgReader;
use sealcell_at::syntax::Form;

use super::{CmdResult, Ctx, Outcome, undefined_form};
use crate::identity::Identity;

/// A SIM access command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `+CRSM=<command>[,<fileid>[,<P1>,<P2>,<P3>[,"<data>"[,"<pathid>"]]]]`.
    RestrictedAccess,
}

impl Cmd {
    pub(crate) fn from_name(name: &str) -> Option<Cmd> {
        (name == "+CRSM").then_some(Cmd::RestrictedAccess)
    }
}

/// `<command>` values of 27.007 §8.18.
const READ_BINARY: i64 = 176;
const READ_RECORD: i64 = 178;
const GET_RESPONSE: i64 = 192;
const RETRIEVE_DATA: i64 = 203;
const UPDATE_BINARY: i64 = 214;
const SET_DATA: i64 = 219;
const UPDATE_RECORD: i64 = 220;
const STATUS: i64 = 242;

/// The most bytes one command carries (`<P3>` is one byte, ISO/IEC 7816-4).
///
/// # Security
/// Caps `<data>` at 255 bytes (510 hex digits) before it is decoded, and every read is at most
/// this long, so no command line makes the module build a large answer.
pub const MAX_TRANSFER: usize = 255;

/// The longest `<pathid>` accepted, in hex digits (a path of four file ids).
///
/// # Security
/// Bounds the optional path argument, which is checked and otherwise ignored.
pub const MAX_PATH_HEX: usize = 16;

pub use crate::nvm::FPLMN_LEN;

/// EF AD (TS 31.102 §4.2.18): normal operation (`00`), no additional information (`0000`),
/// and a 2-digit MNC in the IMSI (`02`: the test network 001/01).
pub const AD: [u8; 4] = [0x00, 0x00, 0x00, 0x02];

/// The card's status words (ISO/IEC 7816-4, TS 102 221 §10.2), as `(sw1, sw2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sw(u8, u8);

impl Sw {
    /// `9000`: normal ending of the command.
    const OK: Sw = Sw(0x90, 0x00);
    /// `6A82`: file not found.
    const FILE_NOT_FOUND: Sw = Sw(0x6A, 0x82);
    /// `6982`: security status not satisfied (the file may not be updated).
    const SECURITY_STATUS: Sw = Sw(0x69, 0x82);
    /// `6981`: command incompatible with the file structure (a record command on a
    /// transparent EF).
    const INCOMPATIBLE: Sw = Sw(0x69, 0x81);
    /// `6B00`: wrong P1-P2, the offset is outside the file.
    const WRONG_OFFSET: Sw = Sw(0x6B, 0x00);
    /// `6700`: wrong length, the data would run past the end of the file.
    const WRONG_LENGTH: Sw = Sw(0x67, 0x00);
}

/// The elementary files of the emulated SIM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ef {
    /// EF ICCID, `2FE2` (12258) under the MF: the `+CCID` digits, swapped-nibble BCD.
    Iccid,
    /// EF IMSI, `6F07` (28423) under ADF USIM: length byte, then the IMSI as a mobile identity.
    Imsi,
    /// EF FPLMN, `6F7B` (28539): forbidden PLMNs, updatable, persistent.
    Fplmn,
    /// EF AD, `6FAD` (28589): administrative data.
    Ad,
}

impl Ef {
    /// The file with this id, if the card has it.
    pub fn from_id(id: i64) -> Option<Ef> {
        Some(match id {
            0x2FE2 => Ef::Iccid,
            0x6F07 => Ef::Imsi,
            0x6F7B => Ef::Fplmn,
            0x6FAD => Ef::Ad,
            _ => return None,
        })
    }

    /// The file id.
    pub fn id(self) -> u16 {
        match self {
            Ef::Iccid => 0x2FE2,
            Ef::Imsi => 0x6F07,
            Ef::Fplmn => 0x6F7B,
            Ef::Ad => 0x6FAD,
        }
    }

    /// The file's contents.
    fn contents(self, ctx: &Ctx<'_>) -> Vec<u8> {
        match self {
            Ef::Iccid => iccid_ef(&ctx.module.identity.iccid).to_vec(),
            Ef::Imsi => imsi_ef(&ctx.module.identity.imsi).to_vec(),
            Ef::Fplmn => fplmn(&ctx.module.nvm.values).to_vec(),
            Ef::Ad => AD.to_vec(),
        }
    }

    /// The file's size in bytes.
    fn size(self) -> usize {
        match self {
            Ef::Iccid => 10,
            Ef::Imsi => 9,
            Ef::Fplmn => FPLMN_LEN,
            Ef::Ad => AD.len(),
        }
    }

    /// Whether a host may `UPDATE BINARY` it (ICCID, IMSI and AD need the ADM key).
    fn updatable(self) -> bool {
        self == Ef::Fplmn
    }

    /// The FCP template `GET RESPONSE` returns (TS 102 221 §11.1.1.3.2): file descriptor
    /// (shareable transparent working EF), file id, life cycle "operational, activated", the
    /// EF ARR record that holds its access rules, and the file size.
    fn fcp(self) -> Vec<u8> {
        let [id_hi, id_lo] = self.id().to_be_bytes();
        let arr: u16 = if self == Ef::Iccid { 0x2F06 } else { 0x6F06 };
        let [arr_hi, arr_lo] = arr.to_be_bytes();
        let [size_hi, size_lo] = u16::try_from(self.size()).unwrap_or(0).to_be_bytes();
        let body = [
            0x82, 0x02, 0x41, 0x21, // file descriptor
            0x83, 0x02, id_hi, id_lo, // file identifier
            0x8A, 0x01, 0x05, // life cycle status
            0x8B, 0x03, arr_hi, arr_lo, 0x01, // security attributes (referenced)
            0x80, 0x02, size_hi, size_lo, // file size
        ];
        let mut out = vec![0x62, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }
}

pub use crate::nvm::factory_fplmn_hex;

/// EF FPLMN as stored; a damaged value reads as the factory one.
fn fplmn(nvm: &crate::nvm::Nvm) -> [u8; FPLMN_LEN] {
    let mut out = [0xFF; FPLMN_LEN];
    match hex::decode(&nvm.sim_fplmn) {
        Ok(bytes) if bytes.len() == FPLMN_LEN => out.copy_from_slice(&bytes),
        _ => tracing::warn!("nvm.toml: sim_fplmn is not 24 bytes of hex; reading it as all FF"),
    }
    out
}

/// The decimal digit of an ASCII digit, `0xF` (the filler) for anything else.
fn nibble(c: u8) -> u8 {
    if c.is_ascii_digit() { c - b'0' } else { 0xF }
}

/// Packs nibbles two to a byte, the first in the low half ("swapped nibbles"), padding with
/// `F` to `N` bytes.
fn pack<const N: usize>(nibbles: impl Iterator<Item = u8>) -> [u8; N] {
    let mut out = [0xFF; N];
    for (i, n) in nibbles.take(2 * N).enumerate() {
        let byte = &mut out[i / 2];
        *byte = if i % 2 == 0 {
            (*byte & 0xF0) | n
        } else {
            (*byte & 0x0F) | (n << 4)
        };
    }
    out
}

/// EF ICCID (TS 102 221 §13.2): the ICCID as `+CCID` prints it, BCD with swapped nibbles,
/// padded with `F` to 10 bytes (`89001012...` is `98 00 01 .2 ...`).
pub fn iccid_ef(iccid: &str) -> [u8; 10] {
    pack(iccid.bytes().take(20).map(nibble))
}

/// EF IMSI (TS 31.102 §4.2.2): byte 1 is the length of what follows; then the IMSI as a
/// mobile identity (TS 24.008 §10.5.1.4): the low nibble of the first byte is the type of
/// identity (`001`, IMSI) with the odd/even bit (`1000` when the digit count is odd), its
/// high nibble digit 1; then the remaining digits in swapped-nibble BCD, `F` filling. Unused
/// bytes are `FF`. The 15-digit IMSI `001010123456789` is `08 09 10 10 10 32 54 76 98`.
pub fn imsi_ef(imsi: &str) -> [u8; 9] {
    let digits: Vec<u8> = imsi.bytes().take(15).map(nibble).collect();
    let parity_and_type = if digits.len() % 2 == 1 {
        0b1001
    } else {
        0b0001
    };
    let identity: [u8; 8] = pack(std::iter::once(parity_and_type).chain(digits.iter().copied()));
    let mut out = [0xFF; 9];
    // One nibble of type plus the digits, rounded up to whole bytes: at most 8.
    out[0] = ((digits.len() + 2) / 2) as u8;
    out[1..].copy_from_slice(&identity);
    out
}

/// `identity`'s EF ICCID and EF IMSI, for tools and tests that check what a host reads.
pub fn identity_files(identity: &Identity) -> ([u8; 10], [u8; 9]) {
    (iccid_ef(&identity.iccid), imsi_ef(&identity.imsi))
}

pub(crate) fn execute(_cmd: Cmd, form: Form<'_>, ctx: &mut Ctx<'_>) -> CmdResult {
    match form {
        Form::Set(args) => crsm(ctx, args.reader())?,
        // 27.007: the test command only answers OK.
        Form::Test => {}
        form => return undefined_form(form),
    }
    Ok(Outcome::Done)
}

/// The arguments of one `+CRSM` command line, checked for type and range.
struct Request {
    command: i64,
    file: Option<i64>,
    p1: Option<i64>,
    p2: Option<i64>,
    p3: Option<i64>,
    data: Option<Vec<u8>>,
}

impl Request {
    fn parse(mut r: ArgReader<'_>) -> Result<Request, CmeError> {
        let command = r.int(0..=255)?;
        let file = r.opt_int(0..=0xFFFF)?;
        let p1 = r.opt_int(0..=255)?;
        let p2 = r.opt_int(0..=255)?;
        let p3 = r.opt_int(0..=255)?;
        let data = r
            .opt_string(2 * MAX_TRANSFER)?
            .map(decode_hex)
            .transpose()?;
        if let Some(path) = r.opt_string(MAX_PATH_HEX)? {
            let path = decode_hex(path)?;
            if path.len() % 2 != 0 {
                return Err(CmeError::OperationNotSupported);
            }
        }
        r.finish()?;
        Ok(Request {
            command,
            file,
            p1,
            p2,
            p3,
            data,
        })
    }

    /// `<fileid>`, `<P1>`, `<P2>` and `<P3>`, which 27.007 makes mandatory for every command
    /// except GET RESPONSE and STATUS.
    fn addressed(&self) -> Result<(i64, usize, usize), CmeError> {
        match (self.file, self.p1, self.p2, self.p3) {
            (Some(file), Some(p1), Some(p2), Some(p3)) => {
                Ok((file, (p1 * 256 + p2) as usize, p3 as usize))
            }
            _ => Err(CmeError::OperationNotSupported),
        }
    }
}

/// Hex digits (either case) to bytes; an odd count or another character is `+CME ERROR: 4`.
fn decode_hex(text: &str) -> Result<Vec<u8>, CmeError> {
    hex::decode(text).map_err(|_| CmeError::OperationNotSupported)
}

fn crsm(ctx: &mut Ctx<'_>, r: ArgReader<'_>) -> Result<(), CmeError> {
    let req = Request::parse(r)?;
    let sw_and_data = match req.command {
        READ_BINARY => {
            if req.data.is_some() {
                return Err(CmeError::OperationNotSupported);
            }
            let (file, offset, p3) = req.addressed()?;
            read_binary(ctx, file, offset, p3)
        }
        UPDATE_BINARY => {
            let (file, offset, p3) = req.addressed()?;
            let data = match req.data {
                Some(d) if !d.is_empty() && d.len() == p3 => d,
                _ => return Err(CmeError::OperationNotSupported),
            };
            (update_binary(ctx, file, offset, &data)?, None)
        }
        READ_RECORD | UPDATE_RECORD | RETRIEVE_DATA | SET_DATA => {
            let (file, _, _) = req.addressed()?;
            if req.command == READ_RECORD && req.data.is_some() {
                return Err(CmeError::OperationNotSupported);
            }
            let sw = match Ef::from_id(file) {
                Some(_) => Sw::INCOMPATIBLE,
                None => Sw::FILE_NOT_FOUND,
            };
            (sw, None)
        }
        // Reads: data sent to them is a malformed command line.
        GET_RESPONSE | STATUS if req.data.is_some() => {
            return Err(CmeError::OperationNotSupported);
        }
        GET_RESPONSE => {
            let file = req.file.ok_or(CmeError::OperationNotSupported)?;
            match Ef::from_id(file) {
                Some(ef) => (Sw::OK, Some(ef.fcp())),
                None => (Sw::FILE_NOT_FOUND, None),
            }
        }
        // The card is there and working; like STATUS with P2 = '0C', no data is returned.
        STATUS => (Sw::OK, None),
        _ => return Err(CmeError::OperationNotSupported),
    };
    let (Sw(sw1, sw2), data) = sw_and_data;
    match data {
        Some(bytes) => {
            let text = hex::encode_upper(bytes);
            ctx.info_fmt(format_args!("+CRSM: {sw1},{sw2},\"{text}\""));
        }
        None => ctx.info_fmt(format_args!("+CRSM: {sw1},{sw2}")),
    }
    Ok(())
}

/// READ BINARY: `p3` bytes (0 means 256, as Le in ISO/IEC 7816-3) from `offset`, at most to the
/// end of the file. An offset at or past the end is `6B00`.
fn read_binary(ctx: &Ctx<'_>, file: i64, offset: usize, p3: usize) -> (Sw, Option<Vec<u8>>) {
    let Some(ef) = Ef::from_id(file) else {
        return (Sw::FILE_NOT_FOUND, None);
    };
    let contents = ef.contents(ctx);
    if offset >= contents.len() {
        return (Sw::WRONG_OFFSET, None);
    }
    let want = if p3 == 0 { 256 } else { p3 };
    let end = contents.len().min(offset + want);
    (Sw::OK, Some(contents[offset..end].to_vec()))
}

/// UPDATE BINARY: writes `data` at `offset` of EF FPLMN, durably before the answer. Other
/// files are read-only (`6982`); data that would run past the end is `6700`, an offset past
/// it `6B00`, and nothing is written.
fn update_binary(ctx: &mut Ctx<'_>, file: i64, offset: usize, data: &[u8]) -> Result<Sw, CmeError> {
    let Some(ef) = Ef::from_id(file) else {
        return Ok(Sw::FILE_NOT_FOUND);
    };
    if !ef.updatable() {
        return Ok(Sw::SECURITY_STATUS);
    }
    if offset >= FPLMN_LEN {
        return Ok(Sw::WRONG_OFFSET);
    }
    if offset + data.len() > FPLMN_LEN {
        return Ok(Sw::WRONG_LENGTH);
    }
    let mut contents = fplmn(&ctx.module.nvm.values);
    contents[offset..offset + data.len()].copy_from_slice(data);
    ctx.update_nvm(|n| n.sim_fplmn = hex::encode_upper(contents))?;
    Ok(Sw::OK)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Instant;

    use super::*;
    use crate::{Channel, Module, ModuleConfig};

    #[test]
    fn iccid_is_swapped_nibble_bcd() {
        assert_eq!(
            hex::encode_upper(iccid_ef("89001012345678901234")),
            "98000121436587092143"
        );
        // 19 digits: the last byte is filled with F.
        assert_eq!(
            hex::encode_upper(iccid_ef("8900101234567890123")),
            "980001214365870921F3"
        );
        // Short or empty: F fills the rest of the 10 bytes.
        assert_eq!(hex::encode_upper(iccid_ef("891")), "98F1FFFFFFFFFFFFFFFF");
        assert_eq!(iccid_ef(""), [0xFF; 10]);
    }

    #[test]
    fn imsi_is_a_mobile_identity() {
        // Odd digit count: type 001 with the odd bit, 9 in the low nibble of the first byte.
        assert_eq!(
            hex::encode_upper(imsi_ef("001010123456789")),
            "080910101032547698"
        );
        assert_eq!(
            hex::encode_upper(imsi_ef("310150123456789")),
            "083901511032547698"
        );
        // Even digit count (14): type 001 without the odd bit, F fills the last nibble.
        assert_eq!(
            hex::encode_upper(imsi_ef("00101012345678")),
            "0801101010325476F8"
        );
        // Six digits: four bytes of identity, then FF.
        assert_eq!(hex::encode_upper(imsi_ef("001010")), "04011010F0FFFFFFFF");
    }

    #[test]
    fn fcp_template() {
        assert_eq!(
            hex::encode_upper(Ef::Fplmn.fcp()),
            "62148202412183026F7B8A01058B036F060180020018"
        );
        assert_eq!(Ef::Iccid.fcp().len(), 22);
    }

    fn config(dir: &std::path::Path) -> ModuleConfig {
        let mut c = ModuleConfig::new(dir);
        c.kdf = sealcell_store::crypto::KdfPolicy::INSECURE_FAST_FOR_TESTS;
        c
    }

    fn at(m: &mut Module, c: &mut Channel, line: &str) -> String {
        let mut out = Vec::new();
        c.feed(
            m,
            format!("{line}\r").as_bytes(),
            crate::Now::virtual_start(Instant::now()),
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_the_modules_own_identity() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Module::open(
            config(dir.path()),
            crate::Now::virtual_start(Instant::now()),
        )
        .unwrap();
        let mut c = Channel::new(&mut m);
        at(&mut m, &mut c, "ATE0");
        let (iccid, imsi) = identity_files(m.identity());
        assert_eq!(
            at(&mut m, &mut c, "AT+CRSM=176,12258,0,0,10"),
            format!(
                "\r\n+CRSM: 144,0,\"{}\"\r\n\r\nOK\r\n",
                hex::encode_upper(iccid)
            )
        );
        assert_eq!(
            at(&mut m, &mut c, "AT+CRSM=176,28423,0,0,0"),
            format!(
                "\r\n+CRSM: 144,0,\"{}\"\r\n\r\nOK\r\n",
                hex::encode_upper(imsi)
            )
        );
        // The digits read back are the ones +CIMI and +CCID print.
        let id = m.identity().clone();
        let imsi_digits: String = hex::encode_upper(&imsi[1..])
            .as_bytes()
            .chunks(2)
            .flat_map(|p| [p[1] as char, p[0] as char])
            .skip(1)
            .collect();
        assert_eq!(imsi_digits, id.imsi);
        let iccid_digits: String = hex::encode_upper(iccid)
            .as_bytes()
            .chunks(2)
            .flat_map(|p| [p[1] as char, p[0] as char])
            .filter(|c| *c != 'F')
            .collect();
        assert_eq!(iccid_digits, id.iccid);
        // Offset 1, to the end of the file.
        assert_eq!(
            at(&mut m, &mut c, "AT+CRSM=176,12258,0,1,200"),
            format!(
                "\r\n+CRSM: 144,0,\"{}\"\r\n\r\nOK\r\n",
                hex::encode_upper(&iccid[1..])
            )
        );
    }

    #[test]
    fn fplmn_survives_a_process_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut m = Module::open(
                config(dir.path()),
                crate::Now::virtual_start(Instant::now()),
            )
            .unwrap();
            let mut c = Channel::new(&mut m);
            at(&mut m, &mut c, "ATE0");
            assert_eq!(
                at(&mut m, &mut c, "AT+CRSM=214,28539,0,3,6,\"13F00162F220\""),
                "\r\n+CRSM: 144,0\r\n\r\nOK\r\n"
            );
        }
        let mut m = Module::open(
            config(dir.path()),
            crate::Now::virtual_start(Instant::now()),
        )
        .unwrap();
        let mut c = Channel::new(&mut m);
        at(&mut m, &mut c, "ATE0");
        assert_eq!(
            at(&mut m, &mut c, "AT+CRSM=176,28539,0,0,0"),
            "\r\n+CRSM: 144,0,\"FFFFFF13F00162F220FFFFFFFFFFFFFFFFFFFFFFFFFFFFFF\"\r\n\r\nOK\r\n"
        );
    }

    #[test]
    fn a_damaged_fplmn_reads_as_factory() {
        let mut nvm = crate::nvm::Nvm {
            sim_fplmn: "00".into(),
            ..Default::default()
        };
        assert_eq!(fplmn(&nvm), [0xFF; FPLMN_LEN]);
        nvm.sim_fplmn = "zz".repeat(FPLMN_LEN);
        assert_eq!(fplmn(&nvm), [0xFF; FPLMN_LEN]);
        // An nvm.toml written before the field existed gets the factory value.
        let old: crate::nvm::Nvm = toml::from_str("mno_profile = 100\n").unwrap();
        assert_eq!(old.sim_fplmn, factory_fplmn_hex());
        assert!(old.gpio.is_empty());
    }
}
