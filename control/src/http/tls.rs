//! TLS for the control plane (`spate serve --tls-cert --tls-key [--tls-client-ca]`): rustls with
//! the ring provider, the TLS already used by the Redis and registry clients. With a client CA,
//! every connection must present a certificate that CA signed; the handshake fails otherwise,
//! before a byte of HTTP is read.
//!
//! Errors name the flag and the file, never the file's content.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use spate_engine::ConfigError;
use tokio_rustls::TlsAcceptor;

/// The files a TLS listener is made from.
pub(crate) struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: Option<&'a Path>,
}

/// Reads the certificate chain, the key and the optional client CA, and checks that they make a
/// server configuration (the key matches the certificate).
pub(crate) fn acceptor(f: &TlsFiles<'_>) -> Result<TlsAcceptor, ConfigError> {
    let chain = certs("--tls-cert", f.cert)?;
    let key = PrivateKeyDer::from_pem_file(f.key).map_err(|e| {
        ConfigError::new(
            "--tls-key",
            format!("`{}` holds no usable private key ({e})", f.key.display()),
            "give the PEM file of the certificate's private key (PKCS#8, PKCS#1 or SEC1, not encrypted)",
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::new("--tls-cert", e.to_string(), "report this as a bug"))?;
    let builder = match f.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs("--tls-client-ca", ca)? {
                roots.add(c).map_err(|e| {
                    ConfigError::new(
                        "--tls-client-ca",
                        format!("`{}`: {e}", ca.display()),
                        "give the PEM file of the CA that signs the clients' certificates",
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| {
                ConfigError::new(
                    "--tls-client-ca",
                    format!("`{}`: {e}", ca.display()),
                    "give the PEM file of the CA that signs the clients' certificates",
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        ConfigError::new(
            "--tls-key",
            format!(
                "`{}` and `{}` do not make a server identity: {e}",
                f.cert.display(),
                f.key.display()
            ),
            "give the private key that belongs to the first certificate of --tls-cert",
        )
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn certs(flag: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let fix = "give a PEM file of certificates (-----BEGIN CERTIFICATE-----), the server's first";
    let all: Result<Vec<_>, _> = CertificateDer::pem_file_iter(p)
        .map_err(|e| ConfigError::new(flag, format!("cannot read `{}`: {e}", p.display()), fix))?
        .collect();
    let all = all.map_err(|e| {
        ConfigError::new(flag, format!("`{}` is not valid PEM: {e}", p.display()), fix)
    })?;
    if all.is_empty() {
        return Err(ConfigError::new(flag, format!("`{}` holds no certificate", p.display()), fix));
    }
    Ok(all)
}
