//! The cluster certificate authority.
//!
//! Made once at bootstrap (`shoal-mon --mkfs`); every daemon and client
//! identity holds a certificate signed by it, and every endpoint trusts
//! only it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::error::{NetError, Result};
use crate::files;
use crate::identity::{
    IDENTITY_DNS_SUFFIX, NodeIdentity, pem, validate_cluster_name, validate_identity_name,
};

/// DNS suffix of the subject alternative name that names the cluster in the
/// CA certificate (`<cluster>.shoal-ca`).
const CA_DNS_SUFFIX: &str = ".shoal-ca";
/// Validity of a CA certificate.
const CA_VALIDITY: Duration = Duration::from_secs(100 * 365 * 86_400);
/// Default validity of an identity certificate.
pub const IDENTITY_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Backdating of new certificates, for clocks slightly behind.
const BACKDATE: Duration = Duration::from_secs(3600);

/// Sets a certificate's validity period (rcgen takes `time` values).
fn set_validity(params: &mut CertificateParams, not_before: SystemTime, not_after: SystemTime) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let since = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_before = epoch + since(not_before);
    params.not_after = epoch + since(not_after);
}

fn ca_params(cluster: &str, not_before: SystemTime) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("Shoal cluster CA {cluster}"));
    dn.push(DnType::OrganizationName, cluster);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![SanType::DnsName(
        format!("{cluster}{CA_DNS_SUFFIX}").try_into()?,
    )];
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, not_before - BACKDATE, not_before + CA_VALIDITY);
    Ok(params)
}

/// A cluster's certificate authority: its key and self-signed certificate.
pub struct ClusterCa {
    cluster: String,
    issuer: Issuer<'static, KeyPair>,
    cert: CertificateDer<'static>,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCa")
            .field("cluster", &self.cluster)
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Creates a new CA (ECDSA P-256) for the cluster named `cluster`.
    pub fn generate(cluster: &str) -> Result<Self> {
        validate_cluster_name(cluster)?;
        let params = ca_params(cluster, SystemTime::now())?;
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?.der().clone();
        Ok(ClusterCa {
            cluster: cluster.to_owned(),
            issuer: Issuer::new(params, key),
            cert,
        })
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The CA certificate (what every endpoint trusts).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> String {
        String::from_utf8_lossy(&pem("CERTIFICATE", &self.cert)).into_owned()
    }

    /// Issues a certificate for identity `name` (e.g. `osd.3`), valid for
    /// [`IDENTITY_VALIDITY`], with a fresh key.
    pub fn issue(&self, name: &str) -> Result<NodeIdentity> {
        let now = SystemTime::now();
        self.issue_with_validity(name, now - BACKDATE, now + IDENTITY_VALIDITY)
    }

    /// Issues a certificate for `name` valid from `not_before` to `not_after`
    /// (tests use this to make expired certificates).
    pub fn issue_with_validity(
        &self,
        name: &str,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<NodeIdentity> {
        validate_identity_name(name)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, self.cluster.as_str());
        params.distinguished_name = dn;
        params.subject_alt_names = vec![SanType::DnsName(
            format!("{name}{IDENTITY_DNS_SUFFIX}").try_into()?,
        )];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every identity both dials and accepts (OSDs talk to each other).
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        set_validity(&mut params, not_before, not_after);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        NodeIdentity::from_der(cert, key, self.cert.clone())
    }

    /// Writes `ca.crt` and `ca.key` into `dir` (both mode 0600).
    pub fn save(&self, dir: &Path) -> Result<()> {
        files::write_private(
            &dir.join("ca.key"),
            self.issuer.key().serialize_pem().as_bytes(),
        )?;
        files::write_private(&dir.join("ca.crt"), &pem("CERTIFICATE", &self.cert))
    }

    /// Loads a CA saved by [`ClusterCa::save`]. Refuses a key file readable
    /// by group or others, and checks that key and certificate belong
    /// together.
    pub fn load(dir: &Path) -> Result<Self> {
        let key_pem = files::read_private(&dir.join("ca.key"))?;
        let cert_pem = files::read_public(&dir.join("ca.crt"))?;
        let key_text = std::str::from_utf8(&key_pem)
            .map_err(|_| NetError::BadPem("ca.key is not text".into()))?;
        let key = KeyPair::from_pem(key_text)?;
        let cert = CertificateDer::from_pem_slice(&cert_pem)
            .map_err(|e| NetError::BadPem(format!("ca.crt: {e}")))?;
        let ee = webpki::EndEntityCert::try_from(&cert)
            .map_err(|e| NetError::BadPem(format!("ca.crt: {e}")))?;
        let cluster = ee
            .valid_dns_names()
            .find_map(|n| n.strip_suffix(CA_DNS_SUFFIX))
            .map(str::to_owned)
            .ok_or_else(|| NetError::BadPem("ca.crt is not a Shoal cluster CA".into()))?;
        validate_cluster_name(&cluster)?;
        // Only the subject name, key and key-id method of these parameters
        // matter for signing; they are derived from the cluster name alone.
        let params = ca_params(&cluster, SystemTime::now())?;
        let ca = ClusterCa {
            cluster,
            issuer: Issuer::new(params, key),
            cert,
        };
        ca.self_check()?;
        Ok(ca)
    }

    /// Issues a throwaway certificate and verifies it against the CA
    /// certificate: catches a key that does not match the certificate.
    fn self_check(&self) -> Result<()> {
        let probe = self.issue("check.ca")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            crate::tls::provider(),
        )
        .build()
        .map_err(|e| NetError::Tls(rustls::Error::General(e.to_string())))?;
        let name = ServerName::try_from(format!("check.ca{IDENTITY_DNS_SUFFIX}"))
            .map_err(|e| NetError::BadPem(e.to_string()))?;
        use rustls::client::danger::ServerCertVerifier;
        verifier
            .verify_server_cert(probe.cert_der(), &[], &name, &[], UnixTime::now())
            .map_err(|e| NetError::BadPem(format!("ca.key does not match ca.crt: {e}")))?;
        Ok(())
    }
}
