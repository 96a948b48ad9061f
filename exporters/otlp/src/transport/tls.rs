//! Builds the one rustls `ClientConfig` both transports use, from the `tls:` section.
//!
//! Runs in `run` (it reads files and the system trust store). The crypto provider is chosen explicitly (ring):
//! the binary also links aws-lc-rs through the Delta stack, and rustls refuses to guess between two providers.
//! - Trust: the CAs in `ca_file`/`ca_pem`, plus the system roots when none are given or when
//!   `include_system_ca_certs_pool` is set. `insecure_skip_verify` accepts any certificate (tests only).
//! - `server_name_override` changes the name the certificate is checked against.
//! - A client certificate (`cert_file` + `key_file`) turns on mutual TLS.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{Error, Result};
use otlake_core::config::tls::{self as pem, PemSource, TlsClientConfig};

/// A client config for `tls`. `needs_roots` is false when no destination uses TLS (plain `http://`), so the
/// system trust store is not read for nothing.
pub fn client_config(tls: &TlsClientConfig, needs_roots: bool) -> Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        ("1.2", &rustls::version::TLS12),
        ("1.3", &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(name, _)| {
        tls.min_version.as_deref().is_none_or(|min| *name >= min)
            && tls.max_version.as_deref().is_none_or(|max| *name <= max)
    })
    .map(|(_, version)| version)
    .collect();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| Error::Tls(e.to_string()))?;

    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate {
            provider: Arc::clone(&provider),
        })
    } else {
        let roots = trust_roots(tls, needs_roots)?;
        if roots.is_empty() {
            // Only when no destination uses TLS: nothing to trust, so any TLS connection (a redirect to
            // https://) fails rather than going unauthenticated.
            return Ok(builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(TrustNothing {
                    provider: Arc::clone(&provider),
                }))
                .with_no_client_auth());
        }
        let webpki =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| Error::Tls(e.to_string()))?;
        match &tls.server_name_override {
            Some(name) => Arc::new(OverrideServerName {
                name: ServerName::try_from(name.clone())
                    .map_err(|e| Error::Tls(format!("server_name_override: {e}")))?,
                inner: webpki,
            }),
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);

    match client_identity(tls)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| Error::Tls(format!("client certificate: {e}"))),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn trust_roots(tls: &TlsClientConfig, needs_roots: bool) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    let given = match (&tls.ca_file, &tls.ca_pem) {
        (Some(path), _) => Some(("ca_file", PemSource::File(path))),
        (None, Some(text)) => Some(("ca_pem", PemSource::Inline(text.as_bytes()))),
        (None, None) => None,
    };
    if let Some((key, source)) = given {
        for cert in pem::certificates(key, source)? {
            roots
                .add(cert)
                .map_err(|e| Error::Tls(format!("`{key}`: not a usable CA certificate: {e}")))?;
        }
    }
    if needs_roots && (given.is_none() || tls.include_system_ca_certs_pool) {
        let found = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(found.certs);
        if added == 0 && given.is_none() {
            return Err(Error::Tls(
                "no system CA certificates found (is the ca-certificates package installed?); set tls.ca_file"
                    .into(),
            ));
        }
    }
    Ok(roots)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(tls: &TlsClientConfig) -> Result<Option<Identity>> {
    let certs = match (&tls.cert_file, &tls.cert_pem) {
        (Some(path), _) => pem::certificates("cert_file", PemSource::File(path))?,
        (None, Some(text)) => pem::certificates("cert_pem", PemSource::Inline(text.as_bytes()))?,
        (None, None) => return Ok(None),
    };
    let key = match (&tls.key_file, &tls.key_pem) {
        (Some(path), _) => pem::private_key("key_file", PemSource::File(path))?,
        (None, Some(text)) => {
            pem::private_key("key_pem", PemSource::Inline(text.expose().as_bytes()))?
        }
        // Validation refuses a certificate without its key.
        (None, None) => return Err(Error::Tls("a client certificate needs its key".into())),
    };
    Ok(Some((certs, key)))
}

/// `insecure_skip_verify`: the connection is encrypted but the server is not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

/// A plain-text exporter's config: no roots were loaded, so no certificate is trusted.
#[derive(Debug)]
struct TrustNothing {
    provider: Arc<CryptoProvider>,
}

macro_rules! signature_checks_by_provider {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

impl ServerCertVerifier for TrustNothing {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Err(rustls::Error::General(
            "no trust roots: the exporter was configured for plain-text destinations".into(),
        ))
    }

    signature_checks_by_provider!();
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    signature_checks_by_provider!();
}

/// `server_name_override`: checks the certificate against the configured name instead of the URL's host.
#[derive(Debug)]
struct OverrideServerName {
    name: ServerName<'static>,
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for OverrideServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
