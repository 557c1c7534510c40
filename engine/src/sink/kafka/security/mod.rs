//! Connecting to a secured cluster: TLS (server verification, client certificates) and SASL
//! (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with OIDC client credentials), as the `sink.kafka.tls` and
//! `sink.kafka.sasl` sections, turned into librdkafka properties; and the reading of librdkafka's
//! connection errors into one message that names the setting to fix.

mod diagnose;
mod settings;

pub use diagnose::{await_metadata, log_failures, ErrorTrap};
pub use settings::{RawOauth, RawSasl, RawTls, Sasl, Security, Tls, TYPED};

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::ClientConfig;

    fn props(s: &Security) -> std::collections::HashMap<String, String> {
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        c.config_map().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn protocols_follow_from_the_sections() {
        let tls = RawTls::default();
        let sasl = RawSasl {
            mechanism: Some("scram-sha-512".into()),
            username: Some("u".into()),
            password: Some("pw12".into()),
            ..Default::default()
        };
        assert_eq!(Security::from_raw(None, None).unwrap().protocol(), "plaintext");
        assert_eq!(Security::from_raw(Some(&tls), None).unwrap().protocol(), "ssl");
        assert_eq!(Security::from_raw(None, Some(&sasl)).unwrap().protocol(), "sasl_plaintext");
        let s = Security::from_raw(Some(&tls), Some(&sasl)).unwrap();
        let p = props(&s);
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(
            p["ssl.endpoint.identification.algorithm"], "https",
            "hostname verification is on by default"
        );
        let off = RawTls { enabled: Some(false), ..Default::default() };
        assert_eq!(Security::from_raw(Some(&off), None).unwrap().protocol(), "plaintext");
    }

    /// librdkafka accepts every combination spate sets: it was built with SSL, SCRAM and OIDC.
    #[test]
    fn librdkafka_takes_every_mechanism() {
        for (m, oauth) in [
            ("PLAIN", None),
            ("SCRAM-SHA-256", None),
            ("SCRAM-SHA-512", None),
            ("OAUTHBEARER", Some(())),
        ] {
            let sasl = RawSasl {
                mechanism: Some(m.into()),
                username: Some("u".into()),
                password: Some("pw12".into()),
                oauth: oauth.map(|()| RawOauth {
                    token_endpoint: Some("https://127.0.0.1:1/token".into()),
                    client_id: Some("c".into()),
                    client_secret: Some("s".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let s = Security::from_raw(Some(&RawTls::default()), Some(&sasl)).unwrap();
            let mut c = ClientConfig::new();
            s.apply(&mut c);
            c.create_native_config().unwrap_or_else(|e| panic!("{m}: {e}"));
        }
    }

    #[test]
    fn bad_sections_name_their_key() {
        let cases: Vec<(RawSasl, &str)> = vec![
            (
                RawSasl { mechanism: Some("GSSAPI".into()), ..Default::default() },
                "sink.kafka.sasl.mechanism",
            ),
            (RawSasl { mechanism: None, ..Default::default() }, "sink.kafka.sasl.mechanism"),
            (
                RawSasl {
                    mechanism: Some("PLAIN".into()),
                    password: Some("x".into()),
                    ..Default::default()
                },
                "sink.kafka.sasl.username",
            ),
            (
                RawSasl {
                    mechanism: Some("PLAIN".into()),
                    username: Some("u".into()),
                    ..Default::default()
                },
                "sink.kafka.sasl.password",
            ),
            (
                RawSasl { mechanism: Some("OAUTHBEARER".into()), ..Default::default() },
                "sink.kafka.sasl.oauth.token_endpoint",
            ),
        ];
        for (raw, key) in cases {
            assert_eq!(Security::from_raw(None, Some(&raw)).unwrap_err().key, key);
        }
        let tls = RawTls { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        assert_eq!(Security::from_raw(Some(&tls), None).unwrap_err().key, "sink.kafka.tls.ca_file");
        let tls = RawTls { cert_file: Some("/etc/hostname".into()), ..Default::default() };
        assert_eq!(
            Security::from_raw(Some(&tls), None).unwrap_err().key,
            "sink.kafka.tls.key_file"
        );
    }

    #[test]
    fn secrets_do_not_serialize() {
        let sasl = RawSasl {
            mechanism: Some("PLAIN".into()),
            username: Some("u".into()),
            password: Some("hunter22".into()),
            ..Default::default()
        };
        let s = Security::from_raw(None, Some(&sasl)).unwrap();
        let text = format!("{} {s:?}", serde_json::to_string(&s).unwrap());
        assert!(!text.contains("hunter22"), "{text}");
    }

    #[test]
    fn connection_errors_name_the_setting() {
        let tls = Security::from_raw(Some(&RawTls::default()), None).unwrap();
        let b = "localhost:9093";
        let key = |s: &Security, reason: &str| s.explain(reason, b).map(|e| e.key);
        assert_eq!(
            key(&tls, "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured"),
            Some("sink.kafka.tls.ca_file".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: Hostname mismatch"),
            Some("sink.kafka.tls.verify_hostname".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: ssl/record/ssl3_record.c:354: error:0A00010B:SSL routines::wrong version number"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: error:0A00045C:SSL routines::tlsv13 alert certificate required"),
            Some("sink.kafka.tls.cert_file".into())
        );
        let plain = Security::default();
        assert_eq!(
            key(&plain, "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&plain, "localhost:19093/bootstrap: Disconnected: connection reset by peer (after 0ms in state APIVERSION_QUERY)"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&plain, "Connect to ipv4#127.0.0.1:9 failed: Connection refused"),
            None,
            "a broker that is down is not a config error"
        );
        let sasl = RawSasl {
            mechanism: Some("SCRAM-SHA-256".into()),
            username: Some("u".into()),
            password: Some("pw12".into()),
            ..Default::default()
        };
        let s = Security::from_raw(None, Some(&sasl)).unwrap();
        assert_eq!(key(&s, "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"), Some("sink.kafka.sasl.password".into()));
        assert_eq!(
            key(&s, "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN"),
            Some("sink.kafka.sasl.mechanism".into())
        );
    }
}
