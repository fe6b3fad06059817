//! Behaviour of the TLS directory across starts, and of operator-supplied files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rustls_pki_types::PrivateKeyDer;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

use super::*;

/// A directory under the system temp dir, removed when dropped (also when a test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "palisade-pki-{test}-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            OffsetDateTime::now_utc().unix_timestamp_nanos(),
        );
        let path = std::env::temp_dir().join(unique);
        fs::create_dir(&path).expect("create test dir");
        Self(path)
    }

    /// The TLS directory inside, not created yet.
    fn tls(&self) -> PathBuf {
        self.0.join("tls")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| (*name).to_owned()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn read(path: &Path) -> Vec<u8> {
    fs::read(path).expect("read file")
}

fn names_the(err: &PkiError, path: &Path) -> bool {
    err.to_string().contains(&path.display().to_string())
}

#[test]
fn first_start_creates_private_dir_and_owner_only_key_files() {
    let tmp = TempDir::new("modes");
    let dir = tmp.tls();
    let tls = load_or_create(&dir, &names(&["localhost"])).expect("first start");

    assert_eq!(tls.origin, CertOrigin::Issued(IssueReason::Missing));
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("ca-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("server-key.pem")), 0o600);
    assert_eq!(mode(&dir.join("ca.pem")), 0o644);
    assert_eq!(mode(&dir.join("server.pem")), 0o644);

    let mut left: Vec<String> = fs::read_dir(&dir)
        .expect("list dir")
        .map(|entry| {
            entry
                .expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]
    );
}

#[test]
fn second_start_reuses_ca_and_server_cert_byte_for_byte() {
    let tmp = TempDir::new("reuse");
    let dir = tmp.tls();
    let first = load_or_create(&dir, &names(&["localhost", "127.0.0.1"])).expect("first");
    let files: Vec<_> = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
        .iter()
        .map(|name| read(&dir.join(name)))
        .collect();

    let second = load_or_create(&dir, &names(&["127.0.0.1", "LOCALHOST"])).expect("second");
    assert_eq!(second.origin, CertOrigin::Reused);
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    assert_eq!(second.server_cert_chain_pem, first.server_cert_chain_pem);
    assert_eq!(second.server_key_pem, first.server_key_pem);
    for (name, before) in ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"]
        .iter()
        .zip(files)
    {
        assert_eq!(read(&dir.join(name)), before, "{name} changed");
    }
}

#[test]
fn new_server_name_reissues_server_cert_but_keeps_ca() {
    let tmp = TempDir::new("rename");
    let dir = tmp.tls();
    let first = load_or_create(&dir, &names(&["localhost"])).expect("first");
    let ca_key = read(&dir.join("ca-key.pem"));

    let second = load_or_create(&dir, &names(&["localhost", "chat.example.com"])).expect("second");
    assert_eq!(
        second.origin,
        CertOrigin::Issued(IssueReason::NamesNotCovered)
    );
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    assert_eq!(read(&dir.join("ca-key.pem")), ca_key);
    assert_ne!(second.server_cert_chain_pem, first.server_cert_chain_pem);
    assert_ne!(second.server_key_pem, first.server_key_pem);

    let chain = second.cert_chain().expect("chain");
    let leaf = decode::x509(&dir, &chain[0]).expect("leaf");
    assert!(ServerName::all_in(&leaf).contains(&ServerName::Dns("chat.example.com".into())));
}

#[test]
fn server_cert_verifies_against_ca_and_lists_dns_and_ip_names() {
    let tmp = TempDir::new("verify");
    let tls =
        load_or_create(&tmp.tls(), &names(&["localhost", "127.0.0.1", "[::1]"])).expect("start");
    let ca_der = tls.ca_cert_der().expect("ca der");
    let chain = tls.cert_chain().expect("chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1], ca_der);

    let ca = decode::x509(&tmp.0, &ca_der).expect("ca");
    let leaf = decode::x509(&tmp.0, &chain[0]).expect("leaf");
    assert_eq!(leaf.issuer().as_raw(), ca.subject().as_raw());
    leaf.verify_signature(Some(ca.public_key()))
        .expect("leaf signed by CA");
    ca.verify_signature(None).expect("CA self-signed");

    let sans = leaf
        .subject_alternative_name()
        .expect("SAN ok")
        .expect("SAN present");
    let general = &sans.value.general_names;
    assert!(general.contains(&GeneralName::DNSName("localhost")));
    assert!(general.contains(&GeneralName::IPAddress(&[127, 0, 0, 1])));
    assert!(
        general
            .iter()
            .any(|g| matches!(g, GeneralName::IPAddress(b) if b.len() == 16))
    );
    let eku = leaf
        .extended_key_usage()
        .expect("EKU ok")
        .expect("EKU present");
    assert!(eku.value.server_auth);
    assert!(!leaf.is_ca());
}

#[test]
fn ca_is_a_ten_year_root_limited_to_signing_certificates_and_crls() {
    let tmp = TempDir::new("ca-shape");
    let tls = load_or_create(&tmp.tls(), &names(&["localhost"])).expect("start");
    let ca_der = tls.ca_cert_der().expect("ca der");
    let ca = decode::x509(&tmp.0, &ca_der).expect("ca");

    let constraints = ca.basic_constraints().expect("ok").expect("present");
    assert!(constraints.value.ca);
    assert_eq!(constraints.value.path_len_constraint, Some(0));
    let usage = ca.key_usage().expect("ok").expect("present").value;
    assert!(usage.key_cert_sign() && usage.crl_sign());
    assert!(!usage.digital_signature());

    let subject = ca.subject().to_string();
    assert!(subject.starts_with("CN=Palisade Internal CA "), "{subject}");
    let validity = ca.validity();
    let lifetime = validity.not_after.to_datetime() - validity.not_before.to_datetime();
    assert!(lifetime >= Duration::days(3650), "{lifetime}");
}

#[test]
fn server_cert_expiring_within_30_days_is_reissued_with_the_same_ca() {
    let tmp = TempDir::new("expiry");
    let dir = tmp.tls();
    let now = OffsetDateTime::now_utc();
    let first = load_or_create_at(&dir, &names(&["localhost"]), now).expect("first");
    let not_after = first.server_cert_not_after().expect("not after");
    assert!(not_after - now <= Duration::days(90) && not_after - now > Duration::days(89));

    let later = now + Duration::days(45);
    let same = load_or_create_at(&dir, &names(&["localhost"]), later).expect("45 days on");
    assert_eq!(same.origin, CertOrigin::Reused);

    let later = now + Duration::days(61);
    let renewed = load_or_create_at(&dir, &names(&["localhost"]), later).expect("61 days on");
    assert_eq!(renewed.origin, CertOrigin::Issued(IssueReason::ExpiresSoon));
    assert_eq!(renewed.ca_cert_pem, first.ca_cert_pem);
    assert!(renewed.server_cert_not_after().expect("not after") > later + Duration::days(89));
}

#[test]
fn ca_cert_without_its_key_is_an_error_naming_the_key_file() {
    let tmp = TempDir::new("no-ca-key");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    let ca_before = read(&dir.join("ca.pem"));
    fs::remove_file(dir.join("ca-key.pem")).expect("remove key");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::CaKeyMissing { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca-key.pem")), "{err}");
    assert_eq!(read(&dir.join("ca.pem")), ca_before);
    assert!(!dir.join("ca-key.pem").exists());
}

#[test]
fn ca_key_without_its_cert_is_an_error_naming_the_cert_file() {
    let tmp = TempDir::new("no-ca-cert");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    fs::remove_file(dir.join("ca.pem")).expect("remove cert");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::CaCertMissing { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca.pem")), "{err}");
}

#[test]
fn corrupt_ca_cert_is_an_error_naming_the_file_and_is_not_overwritten() {
    let tmp = TempDir::new("corrupt-ca");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    let garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n";
    fs::write(dir.join("ca.pem"), garbage).expect("corrupt");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::BadCertificate { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca.pem")), "{err}");
    assert_eq!(read(&dir.join("ca.pem")), garbage.as_bytes());

    fs::write(dir.join("ca.pem"), "no PEM here").expect("corrupt");
    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::NoCertificate { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca.pem")), "{err}");
    assert_eq!(read(&dir.join("ca.pem")), b"no PEM here");
}

#[test]
fn ca_key_from_elsewhere_is_an_error_naming_both_files() {
    let tmp = TempDir::new("ca-mismatch");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    fs::copy(dir.join("server-key.pem"), dir.join("ca-key.pem")).expect("swap key");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::CaKeyMismatch { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca-key.pem")), "{err}");
    assert!(names_the(&err, &dir.join("ca.pem")), "{err}");
}

#[test]
fn corrupt_server_key_is_an_error_naming_the_file_without_quoting_it() {
    let tmp = TempDir::new("corrupt-key");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    let secret_looking =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXNlY3JldA==\n-----END PRIVATE KEY-----\n";
    fs::write(dir.join("server-key.pem"), secret_looking).expect("corrupt");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    let message = err.to_string();
    assert!(matches!(err, PkiError::BadPrivateKey { .. }), "{message}");
    assert!(names_the(&err, &dir.join("server-key.pem")), "{message}");
    assert!(!message.contains("c2VjcmV0"), "{message}");
}

#[test]
fn missing_or_mismatched_server_key_gets_a_new_server_pair() {
    let tmp = TempDir::new("server-key");
    let dir = tmp.tls();
    let first = load_or_create(&dir, &names(&["localhost"])).expect("first");

    fs::remove_file(dir.join("server-key.pem")).expect("remove key");
    let second = load_or_create(&dir, &names(&["localhost"])).expect("second");
    assert_eq!(second.origin, CertOrigin::Issued(IssueReason::KeyMissing));
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);

    fs::write(dir.join("server-key.pem"), &first.server_key_pem).expect("old key back");
    let third = load_or_create(&dir, &names(&["localhost"])).expect("third");
    assert_eq!(third.origin, CertOrigin::Issued(IssueReason::KeyMismatch));
    assert_eq!(mode(&dir.join("server-key.pem")), 0o600);
}

#[test]
fn material_converts_to_rustls_types_and_debug_hides_the_key() {
    let tmp = TempDir::new("material");
    let tls = load_or_create(&tmp.tls(), &names(&["localhost"])).expect("start");

    assert!(matches!(
        tls.private_key().expect("key"),
        PrivateKeyDer::Pkcs8(_)
    ));
    let debug = format!("{tls:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(debug.contains("[hidden]"), "{debug}");
}

#[test]
fn operator_files_load_when_the_key_matches_the_leaf() {
    let tmp = TempDir::new("operator");
    let dir = tmp.tls();
    let internal = load_or_create(&dir, &names(&["localhost"])).expect("make files");

    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    let tls = load_operator_files(&cert, &key).expect("operator files");
    assert_eq!(tls.origin, CertOrigin::Operator);
    assert_eq!(
        tls.cert_chain().expect("chain"),
        internal.cert_chain().expect("chain")
    );
    assert!(tls.ca_cert_pem.is_empty());
    assert_eq!(tls.ca_cert_path, cert);
    assert!(matches!(
        tls.ca_cert_der(),
        Err(PkiError::NoInternalCa { .. })
    ));
    tls.private_key().expect("key");
}

#[test]
fn operator_key_for_another_cert_is_an_error_naming_both_files() {
    let tmp = TempDir::new("operator-mismatch");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("make files");

    let cert = dir.join("server.pem");
    let key = dir.join("ca-key.pem");
    let err = load_operator_files(&cert, &key).expect_err("must refuse");
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
    assert!(names_the(&err, &cert) && names_the(&err, &key), "{err}");
}

#[test]
fn operator_file_that_is_missing_or_holds_no_key_is_an_error_naming_it() {
    let tmp = TempDir::new("operator-missing");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("make files");
    let cert = dir.join("server.pem");

    let absent = dir.join("absent.pem");
    let err = load_operator_files(&absent, &dir.join("server-key.pem")).expect_err("no cert");
    assert!(
        matches!(err, PkiError::Read { .. }) && names_the(&err, &absent),
        "{err}"
    );

    let err = load_operator_files(&cert, &cert).expect_err("cert is not a key");
    assert!(
        matches!(err, PkiError::NoPrivateKey { .. }) && names_the(&err, &cert),
        "{err}"
    );
}

#[test]
fn server_pair_from_another_ca_is_replaced() {
    let tmp = TempDir::new("foreign-leaf");
    let dir = tmp.tls();
    let other = tmp.0.join("other");
    let ours = load_or_create(&dir, &names(&["localhost"])).expect("ours");
    load_or_create(&other, &names(&["localhost"])).expect("other");
    for name in ["server.pem", "server-key.pem"] {
        fs::copy(other.join(name), dir.join(name)).expect("copy foreign file");
    }

    let tls = load_or_create(&dir, &names(&["localhost"])).expect("restart");
    assert_eq!(tls.origin, CertOrigin::Issued(IssueReason::NotIssuedByCa));
    assert_eq!(tls.ca_cert_pem, ours.ca_cert_pem);
    let chain = tls.cert_chain().expect("chain");
    let ca_der = tls.ca_cert_der().expect("ca der");
    let ca = decode::x509(&dir, &ca_der).expect("ca");
    let leaf = decode::x509(&dir, &chain[0]).expect("leaf");
    leaf.verify_signature(Some(ca.public_key()))
        .expect("signed by our CA");
}

#[test]
fn expired_ca_is_an_error_naming_the_file_and_is_kept() {
    let tmp = TempDir::new("ca-expired");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    let ca_before = read(&dir.join("ca.pem"));

    let much_later = OffsetDateTime::now_utc() + Duration::days(3660);
    let err = load_or_create_at(&dir, &names(&["localhost"]), much_later).expect_err("expired");
    assert!(matches!(err, PkiError::CaExpired { .. }), "{err}");
    assert!(names_the(&err, &dir.join("ca.pem")), "{err}");
    assert_eq!(read(&dir.join("ca.pem")), ca_before);
}

#[test]
fn unreadable_server_key_is_not_overwritten_even_without_a_server_cert() {
    let tmp = TempDir::new("key-no-cert");
    let dir = tmp.tls();
    load_or_create(&dir, &names(&["localhost"])).expect("first");
    fs::remove_file(dir.join("server.pem")).expect("remove cert");
    fs::write(dir.join("server-key.pem"), "not a key").expect("corrupt");

    let err = load_or_create(&dir, &names(&["localhost"])).expect_err("must refuse");
    assert!(matches!(err, PkiError::NoPrivateKey { .. }), "{err}");
    assert_eq!(read(&dir.join("server-key.pem")), b"not a key");
}

#[test]
fn reissue_gives_a_new_server_pair_under_the_same_ca_and_needs_one() {
    let tmp = TempDir::new("reissue");
    let dir = tmp.tls();
    let list = names(&["127.0.0.1"]);
    assert!(matches!(
        reissue_server(&dir, &list),
        Err(PkiError::CaCertMissing { .. })
    ));
    let first = load_or_create(&dir, &list).expect("first");
    let again = reissue_server(&dir, &list).expect("reissued");
    assert_eq!(again.origin, CertOrigin::Issued(IssueReason::Requested));
    assert_eq!(again.ca_cert_pem, first.ca_cert_pem);
    assert_ne!(again.server_cert_chain_pem, first.server_cert_chain_pem);
    assert_eq!(mode(&dir.join("server-key.pem")), 0o600);
    let reloaded = load_operator_files(&again.server_cert_path, &again.server_key_path);
    assert!(reloaded.is_ok(), "the new files form a pair");
}
