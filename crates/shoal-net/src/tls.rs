//! rustls configurations for mutual TLS with the cluster CA.
//!
//! Both sides present a certificate signed by the cluster CA and trust only
//! that CA: a peer with no certificate, a self-signed one, an expired one or
//! one from another cluster's CA fails the handshake. A client normally
//! checks that the server is the identity it meant to reach
//! ([`ServerCheck::Named`]); when it knows only an address (first contact
//! with a monitor) it accepts any member of the cluster
//! ([`ServerCheck::AnyMember`]) and learns the name from the certificate.

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::{NetError, Result};
use crate::identity::{IDENTITY_DNS_SUFFIX, NodeIdentity, identity_of};

/// ALPN protocol name of Shoal over QUIC.
pub const ALPN: &[u8] = b"shoal/1";

/// The crypto provider (ring) of the `secure` wire mode, shared by every
/// configuration.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// How QUIC packets are protected once the mutual-TLS handshake is done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WireMode {
    /// Encrypted and authenticated (AES-GCM or ChaCha20-Poly1305).
    #[default]
    Secure,
    /// Checked by crc32c only, like Ceph's `crc` messenger mode; used on a
    /// connection only when both ends are in this mode (see
    /// [`crate::integrity`]).
    Integrity,
}

impl std::str::FromStr for WireMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "secure" => Ok(WireMode::Secure),
            "integrity" => Ok(WireMode::Integrity),
            other => Err(format!(
                "unknown wire mode {other:?} (expected \"secure\" or \"integrity\")"
            )),
        }
    }
}

/// The crypto provider for `mode`: in `integrity` mode the integrity-only
/// suite is offered first, the usual ones after it.
pub fn provider_for(mode: WireMode) -> Arc<CryptoProvider> {
    static INTEGRITY: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    match mode {
        WireMode::Secure => provider(),
        WireMode::Integrity => INTEGRITY
            .get_or_init(|| {
                let mut p = rustls::crypto::ring::default_provider();
                p.cipher_suites
                    .insert(0, crate::integrity::integrity_suite());
                Arc::new(p)
            })
            .clone(),
    }
}

/// The TLS server name under which identity `name` is verified.
pub fn server_name_for(name: &str) -> String {
    format!("{name}{IDENTITY_DNS_SUFFIX}")
}

/// How a client checks the server's certificate (beyond the CA signature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCheck {
    /// The certificate must name the identity given at connect time.
    Named,
    /// Any identity signed by the cluster CA is accepted.
    AnyMember,
}

fn roots(id: &NodeIdentity) -> Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.add(id.ca_cert_der().clone())?;
    Ok(Arc::new(roots))
}

fn builder_error(e: impl std::fmt::Display) -> NetError {
    NetError::Tls(rustls::Error::General(e.to_string()))
}

/// A server configuration that requires and verifies client certificates
/// (in the `secure` wire mode; see [`server_config_for`]).
pub fn server_config(id: &NodeIdentity, alpn: &[u8]) -> Result<rustls::ServerConfig> {
    server_config_for(id, alpn, WireMode::Secure)
}

/// [`server_config`] in wire mode `mode`.
pub fn server_config_for(
    id: &NodeIdentity,
    alpn: &[u8],
    mode: WireMode,
) -> Result<rustls::ServerConfig> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(id)?, provider())
        .build()
        .map_err(builder_error)?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider_for(mode))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![id.cert_der().clone()], id.key_der().clone_key())?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// A client configuration presenting `id` and verifying the server per
/// `check` (in the `secure` wire mode; see [`client_config_for`]).
pub fn client_config(
    id: &NodeIdentity,
    check: ServerCheck,
    alpn: &[u8],
) -> Result<rustls::ClientConfig> {
    client_config_for(id, check, alpn, WireMode::Secure)
}

/// [`client_config`] in wire mode `mode`.
pub fn client_config_for(
    id: &NodeIdentity,
    check: ServerCheck,
    alpn: &[u8],
    mode: WireMode,
) -> Result<rustls::ClientConfig> {
    let webpki = WebPkiServerVerifier::builder_with_provider(roots(id)?, provider())
        .build()
        .map_err(builder_error)?;
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        ServerCheck::Named => webpki,
        ServerCheck::AnyMember => Arc::new(AnyMemberVerifier { inner: webpki }),
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider_for(mode))
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![id.cert_der().clone()], id.key_der().clone_key())?;
    cfg.alpn_protocols = vec![alpn.to_vec()];
    Ok(cfg)
}

/// The identity name of an authenticated peer, from the certificate chain
/// the handshake verified.
pub fn peer_name(chain: &[CertificateDer<'_>]) -> Result<String> {
    let ee = chain
        .first()
        .ok_or_else(|| NetError::PeerIdentity("the peer presented no certificate".into()))?;
    identity_of(ee)
}

/// Verifies the chain to the cluster CA like the WebPKI verifier, but
/// against the identity the certificate itself names, whatever it is.
#[derive(Debug)]
struct AnyMemberVerifier {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyMemberVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = identity_of(end_entity).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
        })?;
        let own = ServerName::try_from(server_name_for(&name)).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)
        })?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &own, ocsp_response, now)
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
