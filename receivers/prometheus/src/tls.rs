//! `tls_config` → the rustls client config of a job's HTTP client.
//!
//! Runs in `run` (it reads files and the system trust store), once per job. The crypto provider is chosen
//! explicitly (ring): the binary also links aws-lc-rs through the Delta stack, and rustls refuses to guess.
//! Trust: `ca_file` when given, else the system roots (read only for `https` jobs). `server_name` changes the
//! name the certificate is checked against; `insecure_skip_verify` accepts any certificate; a client
//! certificate (`cert_file` + `key_file`) turns on mutual TLS.

use std::sync::Arc;

use otlake_core::config::tls::{self as pem, PemError, PemSource};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsConfig;

/// The client config for `tls`; `https` says whether the job's targets use TLS (plain jobs read no roots).
pub fn client_config(tls: &TlsConfig, https: bool) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        Some("TLS13") => &[&rustls::version::TLS13],
        _ => &[&rustls::version::TLS12, &rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| e.to_string())?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAnyCertificate {
            provider: Arc::clone(&provider),
        })
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                for cert in
                    pem::certificates("ca_file", PemSource::File(path)).map_err(in_section)?
                {
                    roots.add(cert).map_err(|e| {
                        format!("tls_config.ca_file: not a usable CA certificate: {e}")
                    })?;
                }
            }
            None if https => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
            None => {}
        }
        if roots.is_empty() {
            // A plain-text job, or no system roots: any TLS connection (a redirect to https) fails.
            Arc::new(TrustNothing {
                provider: Arc::clone(&provider),
            })
        } else {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                    .build()
                    .map_err(|e| e.to_string())?;
            match &tls.server_name {
                Some(name) => Arc::new(OverrideServerName {
                    name: ServerName::try_from(name.clone())
                        .map_err(|e| format!("tls_config.server_name: {e}"))?,
                    inner: webpki,
                }),
                None => webpki,
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs =
                pem::certificates("cert_file", PemSource::File(cert)).map_err(in_section)?;
            let key = pem::private_key("key_file", PemSource::File(key)).map_err(in_section)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("tls_config client certificate: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A PEM problem, placed in the job's `tls_config` section (the message names the key and the file).
fn in_section(e: PemError) -> String {
    format!("tls_config: {e}")
}

/// `insecure_skip_verify`: encrypted, but the target is not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

/// No roots were loaded: no certificate is trusted.
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
            "no trust roots: set tls_config.ca_file".into(),
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

/// `server_name`: checks the certificate against the configured name instead of the target's host.
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
