//! At the wire: `AT+USECMNG=0,2,...,"<password>"` with keys encrypted the way older tools write
//! them (`tests/fixtures/legacy-keys`: PBES1 and PKCS#12 schemes, and the traditional OpenSSL
//! encrypted PEM with `Proc-Type: 4,ENCRYPTED` / `DEK-Info: DES-EDE3-CBC,...` headers, as
//! ubxlib's test key is), before and after the seal. The reported MD5 is openssl's, of the
//! decrypted PKCS#8 DER (for a traditional PEM: of the PKCS#1 or SEC1 DER inside); a wrong or
//! missing password is `+CME ERROR: 1913`, as for PBES2, and so is a DEK-Info cipher the module
//! does not decrypt.

// Test code: a failed unwrap or panic is a failed test, reported with its location.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use sealcell_modem::{Channel, Module};
use sealcell_testkit::{at, boot};

fn legacy(name: &str) -> (Vec<u8>, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy-keys");
    let facts = std::fs::read_to_string(dir.join("facts.txt")).unwrap();
    let md5 = facts
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}\t")))
        .and_then(|rest| rest.rsplit('\t').next())
        .unwrap()
        .to_string();
    (std::fs::read(dir.join(name)).unwrap(), md5)
}

fn import(m: &mut Module, c: &mut Channel, name: &str, data: &[u8], password: &str) -> String {
    let prompt = at(
        m,
        c,
        format!("AT+USECMNG=0,2,\"{name}\",{},\"{password}\"\r", data.len()).as_bytes(),
    );
    assert_eq!(prompt, "\r\n>", "{name}");
    at(m, c, data)
}

#[test]
fn usecmng_imports_pbes1_and_pkcs12_keys_with_openssls_md5() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(tmp.path());
    for (sealed, files) in [
        (
            false,
            &[
                "rsa-pbe-md5-des.pem",
                "ec-pbe-sha1-des.der",
                "rsa-pem-des3.pem",
            ][..],
        ),
        (
            true,
            &[
                "ec-pbe-sha1-3des.pem",
                "rsa-pbe-sha1-2des.der",
                "rsa-pem-des3-crlf.pem",
                "ec-pem-des3.pem",
            ],
        ),
    ] {
        if sealed {
            assert_eq!(
                at(&mut m, &mut c, b"AT+USECCFG=0,1,\"my_pwd\"\r"),
                "\r\nOK\r\n"
            );
        }
        for &file in files {
            let (data, md5) = legacy(file);
            assert_eq!(
                import(&mut m, &mut c, file, &data, "legacy-pass"),
                format!("\r\n+USECMNG: 0,2,\"{file}\",\"{md5}\"\r\n\r\nOK\r\n"),
                "{file}"
            );
            assert_eq!(
                at(
                    &mut m,
                    &mut c,
                    format!("AT+USECMNG=4,2,\"{file}\"\r").as_bytes()
                ),
                format!("\r\n+USECMNG: 4,2,\"{file}\",\"{md5}\"\r\n\r\nOK\r\n")
            );
            assert_eq!(
                import(&mut m, &mut c, "other", &data, "legacy-pasS"),
                "\r\n+CME ERROR: 1913\r\n",
                "{file}, wrong password"
            );
            let prompt = at(
                &mut m,
                &mut c,
                format!("AT+USECMNG=0,2,\"other\",{}\r", data.len()).as_bytes(),
            );
            assert_eq!(prompt, "\r\n>");
            assert_eq!(
                at(&mut m, &mut c, &data),
                "\r\n+CME ERROR: 1913\r\n",
                "{file}, no password"
            );
        }
    }
}

#[test]
fn usecmng_refuses_a_traditional_pem_of_an_unsupported_cipher_and_the_session_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut m, mut c) = boot(tmp.path());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/legacy-keys");
    let cfb = std::fs::read(dir.join("fail_rsa-pem-des3-cfb.pem")).unwrap();
    assert_eq!(
        import(&mut m, &mut c, "k", &cfb, "legacy-pass"),
        "\r\n+CME ERROR: 1913\r\n"
    );
    let (data, md5) = legacy("rsa-pem-des3.pem");
    assert_eq!(
        import(&mut m, &mut c, "k", &data, "legacy-pass"),
        format!("\r\n+USECMNG: 0,2,\"k\",\"{md5}\"\r\n\r\nOK\r\n")
    );
    assert_eq!(
        at(&mut m, &mut c, b"AT+USECMNG=3\r"),
        "\r\n\"PK\",\"k\"\r\n\r\nOK\r\n"
    );
}
