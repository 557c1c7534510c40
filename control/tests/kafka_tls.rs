//! Kafka connections that must be refused at start, each with one message naming the setting,
//! in well under 10 s and with exit code 2: a CA that did not sign the broker's certificate, a
//! certificate for another host name, a plaintext client at a TLS listener, SASL at a broker
//! that does not do it. The TLS listener is `stunnel` (Debian's stunnel4) in front of the
//! embedded mock cluster (`spate broker`), with certificates made at test time; a planted SASL
//! password must appear nowhere in what spate prints. The happy paths (100,000 events over TLS
//! and mTLS, verified) need a broker that advertises the TLS port: scripts/tls-e2e.sh, on tansu.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("spate-kafka-tls-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `spate broker` (the embedded mock cluster) on loopback; returns it and its bootstrap address.
fn mock_broker() -> (Kill, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spate"))
        .arg("broker")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (Kill(c), line.trim().to_string())
}

/// stunnel terminating TLS on two loopback ports, forwarding to `backend`: one with the
/// certificate for localhost, one with a certificate for another name. Waits until both listen.
fn stunnel(d: &Path, backend: &str) -> (Kill, u16, u16) {
    let (good, other) = (free_port(), free_port());
    let conf = d.join("stunnel.conf");
    let c = d.display();
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\n[good]\naccept = 127.0.0.1:{good}\nconnect = {backend}\ncert = {c}/server.pem\nkey = {c}/server.key\n\
             [other]\naccept = 127.0.0.1:{other}\nconnect = {backend}\ncert = {c}/other.pem\nkey = {c}/other.key\n"
        ),
    )
    .unwrap();
    let child = Command::new("stunnel4")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stunnel4 (Debian package stunnel4; scripts/test.sh installs it)");
    let k = Kill(child);
    let up = spate_test_support::wait_for(Instant::now() + Duration::from_secs(10), || {
        [good, other].iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok())
    });
    assert!(up, "stunnel did not listen");
    (k, good, other)
}

fn run(args: &[&str]) -> (Output, Duration) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["run", "--sink", "kafka", "--topic", "tls", "--duration", "20s", "--quiet"])
        .args(args)
        .output()
        .unwrap();
    (o, t.elapsed())
}

#[test]
fn refused_connections_name_the_setting_within_seconds() {
    let d = dir();
    spate_test_support::make_certs(&d, None);
    let (_broker, backend) = mock_broker();
    let (_stunnel, good, other) = stunnel(&d, &backend);
    let ca = d.join("ca.pem");
    let rogue = d.join("rogue-ca.pem");
    let pw = d.join("sasl-password");
    std::fs::write(&pw, "sasl-planted-secret-31\n").unwrap();
    let cases: Vec<(&str, Vec<String>, &str)> = vec![
        (
            "wrong CA",
            vec![
                "--brokers".into(),
                format!("localhost:{good}"),
                "--kafka-ca".into(),
                rogue.display().to_string(),
            ],
            "`sink.kafka.tls.ca_file`",
        ),
        (
            "no CA (system store)",
            vec!["--brokers".into(), format!("localhost:{good}"), "--kafka-tls".into()],
            "`sink.kafka.tls.ca_file`",
        ),
        (
            "wrong host name",
            vec![
                "--brokers".into(),
                format!("localhost:{other}"),
                "--kafka-ca".into(),
                ca.display().to_string(),
            ],
            "`sink.kafka.tls.verify_hostname`",
        ),
        (
            "plaintext at a TLS port",
            vec!["--brokers".into(), format!("localhost:{good}")],
            "`sink.kafka.tls`",
        ),
        (
            "SASL at a broker without it",
            vec![
                "--brokers".into(),
                backend.clone(),
                "--kafka-sasl-mechanism".into(),
                "SCRAM-SHA-512".into(),
                "--kafka-sasl-username".into(),
                "u".into(),
                "--kafka-sasl-password-file".into(),
                pw.display().to_string(),
            ],
            "`sink.kafka.sasl`",
        ),
    ];
    for (what, args, key) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (o, took) = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        eprintln!("{what}: exit {:?} after {} ms: {err}", o.status.code(), took.as_millis());
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(&format!("config error at {key}")) && err.contains("fix:"),
            "{what}: {err}"
        );
        assert!(took < Duration::from_secs(10), "{what}: took {took:?}");
        assert!(!err.contains("sasl-planted-secret-31") && o.stdout.is_empty(), "{what}: {err}");
    }
    // The verifier says the same.
    let o = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args([
            "verify",
            "--topic",
            "tls",
            "--brokers",
            &format!("localhost:{other}"),
            "--kafka-ca",
            &ca.display().to_string(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("config error at `sink.kafka.tls.verify_hostname`"), "{err}");
}
