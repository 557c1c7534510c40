//! `spate serve` over TLS: with `--tls-client-ca` only a client holding a certificate that CA
//! signed gets an answer; plain HTTP and certificate-less clients get none; a client that
//! stalls in the handshake is dropped within the request deadline; bad files are refused at
//! start naming the flag, without echoing their content. Certificates are made at test time by
//! scripts/tls-certs.sh (openssl); the client is rustls. Loopback only; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn certs(name: &str) -> PathBuf {
    let d = tmpdir(name);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/tls-certs.sh");
    let ok = Command::new("bash").arg(script).arg(&d).status().expect("bash").success();
    assert!(ok, "scripts/tls-certs.sh failed (needs openssl)");
    d
}

fn client_config(d: &Path, client_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(d.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let b = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let c = if client_cert {
        let chain: Vec<_> = CertificateDer::pem_file_iter(d.join("client.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(d.join("client.key")).unwrap();
        b.with_client_auth_cert(chain, key).unwrap()
    } else {
        b.with_no_client_auth()
    };
    Arc::new(c)
}

/// One HTTPS request; Err with what went wrong when there is no answer.
fn https(
    addr: &str,
    tls: &Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Resp, String> {
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(tls.clone(), name).map_err(|e| e.to_string())?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    s.write_all(&request(addr, method, path, headers, body)).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    let read = s.read_to_end(&mut raw);
    parse_response(&raw).ok_or_else(|| format!("no answer: {read:?}"))
}

#[test]
fn mutual_tls_answers_only_clients_with_a_certificate() {
    let d = certs("tls-mutual");
    std::fs::write(d.join("token"), "tls-token\n").unwrap();
    let p = Proc::serve(&[
        "--tls-cert",
        d.join("server.pem").to_str().unwrap(),
        "--tls-key",
        d.join("server.key").to_str().unwrap(),
        "--tls-client-ca",
        d.join("ca.pem").to_str().unwrap(),
        "--token-file",
        d.join("token").to_str().unwrap(),
    ]);
    let a = p.addr.as_str();
    let with_cert = client_config(&d, true);

    let r = https(a, &with_cert, "GET", "/healthz", &[], b"").expect("healthz over mTLS");
    assert_eq!(r.status, 200, "{}", r.body);
    let auth = ("Authorization", "Bearer tls-token");
    let json = ("Content-Type", "application/json");
    let body = br#"{"sink": "null", "rate": 1000, "count": 200}"#;
    let r = https(a, &with_cert, "POST", "/v1/start", &[auth, json], body).unwrap();
    assert!(r.status == 200 || r.status == 202, "start over mTLS: {} {}", r.status, r.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    let finished = spate_test_support::wait_for(deadline, || {
        let s = https(a, &with_cert, "GET", "/v1/status", &[auth], b"").unwrap().json();
        s["state"] == "finished" && s["summary"]["generated"].as_u64() == Some(200)
    });
    assert!(finished, "the run over mTLS did not finish: {}", p.stderr.lock().unwrap());

    // Without a client certificate the handshake fails: no answer at all.
    let without = client_config(&d, false);
    let r = https(a, &without, "GET", "/healthz", &[], b"");
    assert!(r.is_err(), "a client without a certificate was answered: {:?}", r.map(|r| r.status));
    // Plain HTTP at the TLS port gets no HTTP answer.
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n\r\n").as_bytes());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"), "plain HTTP was answered over the TLS port");

    // A client that connects and never starts the handshake is dropped by the request deadline.
    let t = Instant::now();
    let mut idle = TcpStream::connect(a).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let n = idle.read(&mut [0u8; 16]);
    let waited = t.elapsed();
    assert!(matches!(n, Ok(0)), "the idle connection was not closed: {n:?}");
    assert!(waited < Duration::from_secs(8), "closed only after {waited:?}");
    println!("serve_tls: a silent client is dropped after {:.2} s", waited.as_secs_f64());
}

#[test]
fn tls_without_client_certificates_serves_anyone_who_trusts_it() {
    let d = certs("tls-plain");
    let p = Proc::serve(&[
        "--tls-cert",
        d.join("server.pem").to_str().unwrap(),
        "--tls-key",
        d.join("server.key").to_str().unwrap(),
    ]);
    let r = https(&p.addr, &client_config(&d, false), "GET", "/v1/status", &[], b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn bad_tls_files_are_refused_naming_the_flag_without_their_content() {
    let d = certs("tls-bad");
    std::fs::write(d.join("junk.pem"), "PLANTED-SECRET-CONTENT\n").unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).to_string())
    };
    let path = |f: &str| d.join(f).to_str().unwrap().to_string();
    for (args, flag) in [
        (vec!["--tls-cert", &path("junk.pem"), "--tls-key", &path("server.key")], "--tls-cert"),
        (vec!["--tls-cert", &path("server.pem"), "--tls-key", &path("junk.pem")], "--tls-key"),
        // Another certificate's key: no server identity.
        (vec!["--tls-cert", &path("server.pem"), "--tls-key", &path("other.key")], "--tls-key"),
        (
            vec![
                "--tls-cert",
                &path("server.pem"),
                "--tls-key",
                &path("server.key"),
                "--tls-client-ca",
                &path("junk.pem"),
            ],
            "--tls-client-ca",
        ),
        (vec!["--tls-cert", &path("missing.pem"), "--tls-key", &path("server.key")], "--tls-cert"),
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?} does not name {flag}: {err}");
        assert!(!err.contains("PLANTED"), "{args:?} echoed the file: {err}");
    }
    // A key without a certificate is a usage error of its own.
    let (code, _) = run(&["--tls-key", &path("server.key")]);
    assert_ne!(code, Some(0));
}
