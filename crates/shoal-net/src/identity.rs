//! Identities: names, their certificates and keys.
//!
//! An identity is a dotted name such as `mon.a`, `osd.3` or
//! `client.admin`. Its certificate (signed by the cluster CA) carries the
//! name twice: as the subject common name, and as the DNS subject
//! alternative name `<name>.shoal`, which is what TLS verifies and what
//! [`identity_of`] reads back after a handshake.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{NetError, Result};
use crate::files;

/// DNS suffix of the subject alternative name that carries an identity.
pub const IDENTITY_DNS_SUFFIX: &str = ".shoal";
/// Longest accepted identity name.
pub const MAX_NAME_LEN: usize = 200;

fn invalid(name: &str, reason: &'static str) -> NetError {
    NetError::InvalidName {
        name: name.to_owned(),
        reason,
    }
}

fn check_label(name: &str, label: &str) -> Result<()> {
    if label.is_empty() || label.len() > 63 {
        return Err(invalid(name, "each dot-separated part must be 1-63 bytes"));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(name, "only a-z, 0-9, '-' and '.' are allowed"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(invalid(name, "a part may not start or end with '-'"));
    }
    Ok(())
}

/// Checks an identity name: a type and an id, dotted, e.g. `osd.3`.
pub fn validate_identity_name(name: &str) -> Result<()> {
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(name, "longer than 200 bytes"));
    }
    let mut labels = name.split('.');
    let kind = labels.next().unwrap_or_default();
    check_label(name, kind)?;
    if !kind.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(invalid(name, "the type must start with a letter"));
    }
    let mut n = 0;
    for label in labels {
        check_label(name, label)?;
        n += 1;
    }
    if n == 0 {
        return Err(invalid(name, "expected <type>.<id>, e.g. osd.3"));
    }
    Ok(())
}

/// Checks a cluster name: one DNS label (a-z, 0-9, '-').
pub fn validate_cluster_name(name: &str) -> Result<()> {
    check_label(name, name)
}

/// Reads the identity name out of a peer certificate (its `<name>.shoal`
/// DNS subject alternative name). The caller must already have verified the
/// certificate (the TLS handshake does).
pub fn identity_of(cert: &CertificateDer<'_>) -> Result<String> {
    let ee = webpki::EndEntityCert::try_from(cert)
        .map_err(|e| NetError::PeerIdentity(format!("unparsable certificate: {e}")))?;
    let found = ee
        .valid_dns_names()
        .filter_map(|dns| dns.strip_suffix(IDENTITY_DNS_SUFFIX))
        .find(|name| validate_identity_name(name).is_ok());
    found
        .map(str::to_owned)
        .ok_or_else(|| NetError::PeerIdentity("certificate names no Shoal identity".into()))
}

/// A named identity: its certificate, private key, and the cluster CA
/// certificate it trusts.
#[derive(Debug)]
pub struct NodeIdentity {
    name: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    ca: CertificateDer<'static>,
}

impl Clone for NodeIdentity {
    fn clone(&self) -> Self {
        NodeIdentity {
            name: self.name.clone(),
            cert: self.cert.clone(),
            key: self.key.clone_key(),
            ca: self.ca.clone(),
        }
    }
}

fn one_cert(pem: &[u8], what: &str) -> Result<CertificateDer<'static>> {
    CertificateDer::from_pem_slice(pem).map_err(|e| NetError::BadPem(format!("{what}: {e}")))
}

impl NodeIdentity {
    /// Assembles an identity from DER parts; the name is read from `cert`.
    pub fn from_der(
        cert: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
        ca: CertificateDer<'static>,
    ) -> Result<Self> {
        let name = identity_of(&cert)?;
        Ok(NodeIdentity {
            name,
            cert,
            key,
            ca,
        })
    }

    /// Assembles an identity from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8]) -> Result<Self> {
        let cert = one_cert(cert_pem, "identity certificate")?;
        let ca = one_cert(ca_pem, "CA certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| NetError::BadPem(format!("private key: {e}")))?;
        Self::from_der(cert, key, ca)
    }

    /// The identity name, e.g. `osd.3`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This identity's certificate.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The private key.
    pub fn key_der(&self) -> &PrivateKeyDer<'static> {
        &self.key
    }

    /// The cluster CA certificate this identity trusts.
    pub fn ca_cert_der(&self) -> &CertificateDer<'static> {
        &self.ca
    }

    /// Paths of the certificate and key files of identity `name` in `dir`.
    pub fn file_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        )
    }

    /// The certificate, private key and CA certificate as PEM texts (what
    /// [`NodeIdentity::save`] writes; [`NodeIdentity::from_pem`] reads them).
    pub fn to_pem(&self) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        (
            pem("CERTIFICATE", &self.cert),
            pem(label, self.key.secret_der()),
            pem("CERTIFICATE", &self.ca),
        )
    }

    /// Writes `<name>.crt`, `<name>.key` and `ca.crt` into `dir`, all 0600.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (crt, key) = Self::file_paths(dir, &self.name);
        let (cert_pem, key_pem, ca_pem) = self.to_pem();
        files::write_private(&key, &key_pem)?;
        files::write_private(&crt, &cert_pem)?;
        files::write_private(&dir.join("ca.crt"), &ca_pem)
    }

    /// Loads identity `name` saved by [`NodeIdentity::save`]; refuses a key
    /// file readable by group or others.
    pub fn load(dir: &Path, name: &str) -> Result<Self> {
        validate_identity_name(name)?;
        let (crt, key) = Self::file_paths(dir, name);
        let key_pem = files::read_private(&key)?;
        let cert_pem = files::read_public(&crt)?;
        let ca_pem = files::read_public(&dir.join("ca.crt"))?;
        let id = Self::from_pem(&cert_pem, &key_pem, &ca_pem)?;
        if id.name != name {
            return Err(NetError::BadPem(format!(
                "{} holds identity {}, not {name}",
                crt.display(),
                id.name
            )));
        }
        Ok(id)
    }
}

/// PEM-encodes one DER object.
pub(crate) fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der), config).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["mon.a", "osd.3", "client.admin", "client.rgw.gw-1"] {
            validate_identity_name(ok).unwrap();
        }
        for bad in [
            "osd", "", "OSD.1", "osd.", ".x", "3sd.1", "a..b", "osd_1.x", "a.-b",
        ] {
            assert!(validate_identity_name(bad).is_err(), "{bad}");
        }
        validate_cluster_name("ceph-test").unwrap();
        assert!(validate_cluster_name("a.b").is_err());
    }

    #[test]
    fn pem_matches_known_base64() {
        let p = pem("X", b"hello");
        assert_eq!(
            p,
            b"-----BEGIN X-----\naGVsbG8=\n-----END X-----\n".to_vec()
        );
    }
}
