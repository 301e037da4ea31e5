//! `sealcell fw keygen | sign | verify | digest`: the application note's §4.3 signing procedure
//! as one tool, with the key in a file or in a PKCS#11 token (`pkcs11:` URIs, RFC 7512). Exit
//! codes: 0 valid / signed, 1 invalid, 2 unusable input (a wrong PIN, a missing token or key).

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use sealcell_fw::certificate::{CertificateError, ClockPolicy, SignerCertificate};
use sealcell_fw::encoding::{SignatureFormat, decode_signature, to_base64};
use sealcell_fw::hash::sha256_reader;
use sealcell_fw::key::{SignatureError, VerifyingKey};
use sealcell_fw::pkcs11::{self, Pin, Pkcs11Error, Pkcs11Uri};
use sealcell_fw::sign::{SigningKey, SigningKeyError};
use sealcell_fw::verify::{VerifyError, verify_package, verify_with_key};
use sealcell_host::bounded_read::{MAX_CERTIFICATE_FILE, MAX_CREDENTIAL_FILE, MAX_SIGNATURE_FILE};
use zeroize::Zeroizing;

use crate::{Failure, read_capped};

/// `sealcell fw ...`.
#[derive(Debug, Args)]
pub(crate) struct FwArgs {
    #[command(subcommand)]
    command: FwCommand,
}

#[derive(Debug, Subcommand)]
enum FwCommand {
    /// Make a signing key and a self-signed certificate with key usage digitalSignature
    /// (priv.key as PKCS#8 PEM, mode 0600; cert.pem; pubkey.pem), as the §4.3.1 script does;
    /// with --pkcs11, the key pair is made inside the token and only cert.pem and pubkey.pem are
    /// written.
    Keygen(KeygenArgs),
    /// Sign a firmware package: PKCS#1 v1.5 over SHA-256 for RSA keys (byte-identical to
    /// `openssl dgst -sha256 -sign KEY FILE`), ECDSA P-256 DER for EC keys; the key in a file or
    /// in a PKCS#11 token (--key 'pkcs11:token=TOKEN;object=LABEL').
    Sign(SignArgs),
    /// Verify a package's signature with a certificate or a public key (exit 0 valid, 1 invalid,
    /// 2 unusable input).
    Verify(VerifyArgs),
    /// Print a package's SHA-256: what an external signer signs (RSA PKCS#1 v1.5 SHA-256 or
    /// ECDSA P-256 over this digest).
    Digest(DigestArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OutFormat {
    /// One line of base64, ready for AT+UFWSINSTALL.
    Base64,
    /// Lowercase hex.
    Hex,
    /// The raw signature bytes.
    Bin,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum InFormat {
    /// Decide from the content.
    Auto,
    /// Base64, with or without line breaks.
    Base64,
    /// Hex.
    Hex,
    /// Raw bytes.
    Bin,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum DigestFormat {
    /// Lowercase hex, as `openssl dgst -sha256` and `sha256sum` print it.
    Hex,
    /// Base64 of the 32 bytes.
    Base64,
}

#[derive(Debug, Args)]
struct DigestArgs {
    /// Output encoding.
    #[arg(long, value_enum, default_value = "hex")]
    format: DigestFormat,
    /// Print one JSON object (sha256 in hex, size).
    #[arg(long)]
    json: bool,
    /// The package.
    file: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("alg").args(["rsa", "ec"])))]
struct KeygenArgs {
    /// The directory to write priv.key, cert.pem and pubkey.pem into (made if missing; existing
    /// files are never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Make the key pair inside this PKCS#11 token instead
    /// ('pkcs11:token=TOKEN;object=LABEL[;id=ID][?pin-source=file:PATH][&module-path=LIB]');
    /// the library from module-path= or $SEALCELL_PKCS11_MODULE, the PIN from pin-source=,
    /// $SEALCELL_PKCS11_PIN or a prompt.
    #[arg(long, value_name = "URI")]
    pkcs11: Option<String>,
    /// The certificate's subject common name.
    #[arg(long, value_name = "CN", default_value = "Firmware Signer")]
    subject: String,
    /// Validity in days.
    #[arg(long, value_name = "N", default_value_t = 365)]
    days: u32,
    /// An RSA key of this many bits (2048 to 4096; the default is RSA 2048).
    #[arg(long, value_name = "BITS")]
    rsa: Option<u32>,
    /// An ECDSA key on this curve (p256).
    #[arg(long, value_name = "CURVE", value_parser = ["p256"])]
    ec: Option<String>,
}

#[derive(Debug, Args)]
struct SignArgs {
    /// The private key: PKCS#1, SEC1, PKCS#8 or encrypted PKCS#8; PEM or DER. Or a key in a
    /// PKCS#11 token: 'pkcs11:token=TOKEN;object=LABEL[;id=ID][?pin-source=file:PATH]
    /// [&module-path=LIB]' (the library from module-path= or $SEALCELL_PKCS11_MODULE; the PIN
    /// from pin-source=, $SEALCELL_PKCS11_PIN or a prompt, never from the command line).
    #[arg(long)]
    key: PathBuf,
    /// A file holding the password of an encrypted key (else $SEALCELL_KEY_PASSWORD, else a
    /// prompt on the terminal).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Output encoding.
    #[arg(long, value_enum, default_value = "base64")]
    format: OutFormat,
    /// Write the signature here instead of standard output.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    out: Option<PathBuf>,
    /// The package to sign.
    file: PathBuf,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("signer").required(true).args(["cert", "pubkey"])))]
struct VerifyArgs {
    /// The signer's certificate (its key usage, when present, must include digitalSignature).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The signer's public key (`openssl x509 -pubkey` output).
    #[arg(long)]
    pubkey: Option<PathBuf>,
    /// The signature file.
    #[arg(long)]
    signature: PathBuf,
    /// The signature's encoding.
    #[arg(long, value_enum, default_value = "auto")]
    format: InFormat,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// The package.
    file: PathBuf,
}

pub(crate) fn run(args: FwArgs) -> Result<(), Failure> {
    match args.command {
        FwCommand::Keygen(a) => keygen(a),
        FwCommand::Sign(a) => sign(a),
        FwCommand::Verify(a) => verify(a),
        FwCommand::Digest(a) => digest(a),
    }
}

fn open_package(path: &Path) -> Result<(File, u64), Failure> {
    let f = File::open(path)
        .with_context(|| format!("cannot open the package {}", path.display()))
        .map_err(|e| Failure::usage(e, None))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((f, len))
}

/// A progress bar on a terminal for packages of 64 MiB or more; nothing otherwise.
pub(crate) fn progress(len: u64) -> impl FnMut(u64) {
    let bar = (std::io::stderr().is_terminal() && len >= 64 << 20).then(|| {
        let b = indicatif::ProgressBar::new(len);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    move |done| {
        if let Some(b) = &bar {
            b.set_position(done);
            if done >= len {
                b.finish_and_clear();
            }
        }
    }
}

fn key_password(args: &SignArgs) -> Result<Option<Zeroizing<Vec<u8>>>, Failure> {
    if let Some(file) = &args.password_file {
        let mut p = Zeroizing::new(read_capped(file, MAX_CREDENTIAL_FILE, "password file")?);
        while p.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            p.pop();
        }
        return Ok(Some(p));
    }
    if let Ok(p) = std::env::var("SEALCELL_KEY_PASSWORD") {
        return Ok(Some(Zeroizing::new(p.into_bytes())));
    }
    Ok(None)
}

/// Reads a password from the controlling terminal with echo off.
fn prompt_password(prompt: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    prompt_secret(
        prompt,
        "the key is encrypted and there is no terminal to ask for its password",
        "pass --password-file FILE or set SEALCELL_KEY_PASSWORD",
    )
}

/// Reads a secret from the controlling terminal with echo off; without a terminal, fails with
/// `no_terminal` and `hint`.
fn prompt_secret(
    prompt: &str,
    no_terminal: &'static str,
    hint: &str,
) -> Result<Zeroizing<Vec<u8>>, Failure> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .context(no_terminal)
        .map_err(|e| Failure::usage(e, Some(hint.to_string())))?;
    let saved = tcgetattr(&tty).map_err(|e| Failure::usage(e, None))?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(&tty, SetArg::TCSANOW, &quiet).map_err(|e| Failure::usage(e, None))?;
    let _ = write!(tty, "{prompt}");
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    while tty.read(&mut byte).map(|n| n == 1).unwrap_or(false) && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let _ = tcsetattr(&tty, SetArg::TCSANOW, &saved);
    let _ = writeln!(tty);
    Ok(line)
}

fn sign(args: SignArgs) -> Result<(), Failure> {
    if let Some(uri) = args.key.to_str().filter(|k| Pkcs11Uri::is_uri(k)) {
        let uri = uri.to_string();
        return sign_in_token(&args, &uri);
    }
    let key_bytes = Zeroizing::new(read_capped(&args.key, MAX_CREDENTIAL_FILE, "key file")?);
    let password = key_password(&args)?;
    let key = match SigningKey::parse(&key_bytes, password.as_deref().map(|p| p.as_slice())) {
        Err(SigningKeyError::Password) if password.is_none() => {
            let p = prompt_password(&format!("password for {}: ", args.key.display()))?;
            SigningKey::parse(&key_bytes, Some(&p))
        }
        other => other,
    }
    .with_context(|| format!("cannot use the key {}", args.key.display()))
    .map_err(|e| Failure::usage(e, None))?;
    let (file, len) = open_package(&args.file)?;
    let (digest, _) = sha256_reader(file, progress(len))
        .with_context(|| format!("cannot read the package {}", args.file.display()))
        .map_err(|e| Failure::usage(e, None))?;
    let sig = key
        .sign_digest(&digest)
        .context("signing failed")
        .map_err(|e| Failure::usage(e, None))?;
    write_signature(&args, sig)
}

/// Writes a signature as `--format` and `--out` say.
fn write_signature(args: &SignArgs, sig: Vec<u8>) -> Result<(), Failure> {
    let out = match args.format {
        OutFormat::Base64 => format!("{}\n", to_base64(&sig)).into_bytes(),
        OutFormat::Hex => format!("{}\n", hex::encode(&sig)).into_bytes(),
        OutFormat::Bin => sig,
    };
    match &args.out {
        Some(path) => std::fs::write(path, &out)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(|e| Failure::usage(e, None)),
        None => crate::print_bytes(&out),
    }
}

/// Refuses existing `files`: keygen never overwrites a key.
fn refuse_existing(files: &[PathBuf]) -> Result<(), Failure> {
    match files.iter().find(|f| f.exists()) {
        Some(existing) => Err(Failure::usage(
            anyhow::anyhow!(
                "{} exists; keygen never overwrites a key",
                existing.display()
            ),
            Some("choose another --out directory".into()),
        )),
        None => Ok(()),
    }
}

/// Writes a new file (never replacing one) with `mode`, synced.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn create_out_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
        .map_err(|e| Failure::usage(e, None))
}

fn keygen(args: KeygenArgs) -> Result<(), Failure> {
    use sealcell_fw::keygen::{KeyAlgorithm, generate};
    if args.days == 0 {
        return Err(Failure::usage(
            anyhow::anyhow!("--days must be at least 1"),
            None,
        ));
    }
    let algorithm = if args.ec.is_some() {
        KeyAlgorithm::P256
    } else {
        KeyAlgorithm::Rsa(args.rsa.unwrap_or(2048))
    };
    if let Some(uri) = &args.pkcs11 {
        return keygen_in_token(&args, uri, algorithm);
    }
    let files = ["priv.key", "cert.pem", "pubkey.pem"].map(|f| args.out.join(f));
    refuse_existing(&files)?;
    let g = generate(algorithm, &args.subject, args.days).map_err(|e| Failure::usage(e, None))?;
    create_out_dir(&args.out)?;
    let write = write_new;
    let results = [
        write(&files[0], g.private_key_pem.as_bytes(), 0o600),
        write(&files[1], g.certificate_pem.as_bytes(), 0o644),
        write(&files[2], g.public_key_pem.as_bytes(), 0o644),
    ];
    for (r, f) in results.into_iter().zip(&files) {
        r.with_context(|| format!("cannot write {}", f.display()))
            .map_err(|e| Failure::usage(e, None))?;
    }
    println!(
        "{}\n{}\n{}",
        files[0].display(),
        files[1].display(),
        files[2].display()
    );
    Ok(())
}

/// A token error: exit 2, its hint.
fn token_failure(e: Pkcs11Error) -> Failure {
    let hint = e.hint();
    Failure::usage(e, hint)
}

/// Parses the URI, loads the library, finds the token and logs in (asking for the PIN only
/// when the token needs one).
fn with_token_session<T>(
    uri: &str,
    work: impl FnOnce(&Pkcs11Uri, &pkcs11::Session<'_>) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let uri = Pkcs11Uri::parse(uri).map_err(|e| token_failure(e.into()))?;
    let env = std::env::var_os(pkcs11::MODULE_ENV);
    let module_path = pkcs11::module_path(&uri, env.as_deref()).map_err(token_failure)?;
    let module = pkcs11::Module::load(&module_path).map_err(token_failure)?;
    let token = module.token(&uri).map_err(token_failure)?;
    let pin = if token.login_required() {
        Some(token_pin(&uri)?)
    } else {
        None
    };
    let session = token.login(pin.as_ref()).map_err(token_failure)?;
    drop(pin);
    work(&uri, &session)
}

/// The PIN: `pin-source=file:` of the URI, else `$SEALCELL_PKCS11_PIN`, else a prompt on the
/// terminal.
fn token_pin(uri: &Pkcs11Uri) -> Result<Pin, Failure> {
    if let Some(path) = &uri.pin_source {
        return Pin::from_file(path).map_err(token_failure);
    }
    if let Some(pin) = std::env::var_os(pkcs11::PIN_ENV).filter(|p| !p.is_empty()) {
        let pin = pin.into_string().map_err(|_| {
            Failure::usage(
                anyhow::anyhow!("${} is not UTF-8 text", pkcs11::PIN_ENV),
                None,
            )
        })?;
        return Ok(Pin::new(Zeroizing::new(pin)));
    }
    let mut typed = prompt_secret(
        &format!("PIN for the token {:?}: ", uri.token),
        "the token needs a PIN and there is no terminal to ask for it",
        "add ?pin-source=file:PATH to the URI or set SEALCELL_PKCS11_PIN",
    )?;
    let text = String::from_utf8(std::mem::take(&mut *typed)).map_err(|e| {
        // The bytes go back into a zeroized buffer before the error is returned.
        *typed = e.into_bytes();
        Failure::usage(anyhow::anyhow!("the PIN typed is not UTF-8 text"), None)
    })?;
    Ok(Pin::new(Zeroizing::new(text)))
}

fn sign_in_token(args: &SignArgs, uri: &str) -> Result<(), Failure> {
    if args.password_file.is_some() {
        return Err(Failure::usage(
            anyhow::anyhow!("--password-file is for key files, not for a key in a token"),
            Some("a token's PIN comes from ?pin-source=file:PATH in the URI, $SEALCELL_PKCS11_PIN or the prompt".into()),
        ));
    }
    // The package is opened first: a wrong path fails before anyone is asked for a PIN.
    let (file, len) = open_package(&args.file)?;
    let sig = with_token_session(uri, |uri, session| {
        let key = session.private_key(uri).map_err(token_failure)?;
        session
            .sign_reader(&key, file, progress(len))
            .map_err(|e| match e {
                Pkcs11Error::Io(io) => Failure::usage(
                    anyhow::Error::new(io)
                        .context(format!("cannot read the package {}", args.file.display())),
                    None,
                ),
                other => token_failure(other),
            })
    })?;
    write_signature(args, sig)
}

fn keygen_in_token(
    args: &KeygenArgs,
    uri: &str,
    algorithm: sealcell_fw::keygen::KeyAlgorithm,
) -> Result<(), Failure> {
    let files = ["cert.pem", "pubkey.pem"].map(|f| args.out.join(f));
    refuse_existing(&files)?;
    // The directory exists before the key does, so a bad --out fails with nothing made.
    create_out_dir(&args.out)?;
    let (uri, generated) = with_token_session(uri, |uri, session| {
        let g = session
            .generate(uri, algorithm, &args.subject, args.days)
            .map_err(token_failure)?;
        Ok((uri.clone(), g))
    })?;
    write_new(&files[0], generated.certificate_pem.as_bytes(), 0o644)
        .and_then(|()| write_new(&files[1], generated.public_key_pem.as_bytes(), 0o644))
        .with_context(|| {
            format!(
                "the key pair is in the token, but its certificate could not be written to {}",
                args.out.display()
            )
        })
        .map_err(|e| {
            Failure::usage(
                e,
                Some(
                    "make the directory writable and run keygen again with another object= label"
                        .into(),
                ),
            )
        })?;
    let key = Pkcs11Uri {
        id: Some(generated.id),
        ..uri
    };
    println!("{key}\n{}\n{}", files[0].display(), files[1].display());
    Ok(())
}

fn digest(args: DigestArgs) -> Result<(), Failure> {
    let (file, len) = open_package(&args.file)?;
    let (digest, size) = sha256_reader(file, progress(len))
        .with_context(|| format!("cannot read the package {}", args.file.display()))
        .map_err(|e| Failure::usage(e, None))?;
    let text = match args.format {
        DigestFormat::Hex => hex::encode(digest),
        DigestFormat::Base64 => to_base64(&digest),
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "sha256": hex::encode(digest), "size": size })
        );
    } else {
        println!("{text}");
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> Result<(), Failure> {
    let format = match args.format {
        InFormat::Auto => SignatureFormat::Auto,
        InFormat::Base64 => SignatureFormat::Base64,
        InFormat::Hex => SignatureFormat::Hex,
        InFormat::Bin => SignatureFormat::Binary,
    };
    let sig_text = read_capped(&args.signature, MAX_SIGNATURE_FILE, "signature file")?;
    let sig = decode_signature(&sig_text, format)
        .with_context(|| format!("cannot decode the signature {}", args.signature.display()))
        .map_err(|e| {
            Failure::usage(
                e,
                Some("--format base64|hex|bin says how it is written".into()),
            )
        })?;
    let (file, len) = open_package(&args.file)?;
    let result = match (&args.cert, &args.pubkey) {
        (Some(cert), _) => {
            let der_or_pem = read_capped(cert, MAX_CERTIFICATE_FILE, "certificate file")?;
            let cert = SignerCertificate::parse(&der_or_pem);
            match cert {
                Ok(c) => verify_package(file, &sig, &c, ClockPolicy::Ignore, progress(len)),
                Err(e) => Err(VerifyError::Certificate(e)),
            }
        }
        (None, Some(pubkey)) => {
            let bytes = read_capped(pubkey, MAX_CERTIFICATE_FILE, "public key file")?;
            let pem = String::from_utf8_lossy(&bytes).into_owned();
            match VerifyingKey::from_spki_pem(&pem) {
                Ok(k) => verify_with_key(file, &sig, &k, progress(len)),
                Err(e) => Err(VerifyError::Key(e)),
            }
        }
        (None, None) => {
            return Err(Failure::usage(
                anyhow::anyhow!("--cert or --pubkey is required"),
                None,
            ));
        }
    };
    match result {
        Ok(v) => {
            if args.json {
                let j = serde_json::json!({
                    "valid": true,
                    "sha256": hex::encode(v.sha256()),
                    "size": v.size(),
                    "signer": v.signer(),
                });
                println!("{j}");
            } else {
                println!(
                    "valid: {} bytes, SHA-256 {}, signed by {}",
                    v.size(),
                    hex::encode(v.sha256()),
                    v.signer()
                );
            }
            Ok(())
        }
        Err(e) => {
            let invalid = matches!(
                e,
                VerifyError::Signature(
                    SignatureError::Mismatch | SignatureError::WrongLength { .. }
                ) | VerifyError::Certificate(CertificateError::NoDigitalSignatureUsage)
            );
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "valid": false, "error": e.to_string() })
                );
            }
            let hint = matches!(e, VerifyError::Signature(SignatureError::Mismatch)).then(|| {
                "the package, the signature or the key is not the one that was signed".to_string()
            });
            Err(Failure {
                code: if invalid { 1 } else { 2 },
                error: anyhow::Error::new(e).context("not verified"),
                hint,
            })
        }
    }
}
