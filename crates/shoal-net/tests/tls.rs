//! Mutual TLS: who is accepted, who is refused at the handshake, and the
//! identity both sides learn. Also the CA and key files.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use shoal_net::{
    ClusterCa, Endpoint, EndpointConfig, Frame, NetError, NodeIdentity, PeerAddr, PeerInfo,
};

const T: Duration = Duration::from_secs(5);

/// A server that answers with the caller's identity name.
fn whoami_server(id: NodeIdentity, host: u8) -> Endpoint {
    Endpoint::builder(id, EndpointConfig::new(lo(host)))
        .request_handler(|peer: PeerInfo, _req: Frame| async move {
            Frame::new(ECHO_REPLY, Bytes::from(peer.name.into_bytes()))
        })
        .bind()
        .unwrap()
}

async fn assert_refused_by_server(server: &Endpoint, client_id: NodeIdentity, host: u8) {
    let before = server.stats();
    let client = client(client_id, lo(host));
    let peer = PeerAddr::named("osd.1", server.local_addr());
    let err = client
        .request(&peer, &Frame::new(ECHO, Bytes::new()), T)
        .await
        .expect_err("the server must refuse this client");
    assert!(
        matches!(err, NetError::HandshakeRefused(_)),
        "expected a handshake refusal, got {err:?}"
    );
    wait_until(T, "server counts the refusal", || async {
        server.stats().handshake_failures > before.handshake_failures
    })
    .await;
    let after = server.stats();
    assert_eq!(after.connections_accepted, before.connections_accepted);
    assert_eq!(after.requests_served, before.requests_served);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_identities_are_visible_both_ways() {
    init_tracing();
    let ca = cluster("alpha");
    let server = whoami_server(ca.issue("osd.1").unwrap(), 11);
    let client = client(ca.issue("client.admin").unwrap(), lo(12));

    let conn = client
        .connection(&PeerAddr::named("osd.1", server.local_addr()), T)
        .await
        .unwrap();
    assert_eq!(conn.peer_name(), "osd.1");
    let resp = conn
        .request(&Frame::new(ECHO, Bytes::new()), T)
        .await
        .unwrap();
    assert_eq!(&resp.body[..], b"client.admin");

    // Knowing only the address, the client learns who answered.
    let any = client
        .connect(&PeerAddr::any(server.local_addr()))
        .await
        .unwrap();
    assert_eq!(any.peer_name(), "osd.1");
    wait_until(T, "server accepted 2 connections", || async {
        server.stats().connections_accepted == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_without_certificate_is_refused() {
    init_tracing();
    let ca = cluster("alpha");
    let server = whoami_server(ca.issue("osd.1").unwrap(), 13);

    // A raw QUIC client that trusts the CA but presents no certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(shoal_net::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![shoal_net::tls::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut raw = quinn::Endpoint::client(lo(14)).unwrap();
    raw.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));

    let outcome = async {
        let conn = raw.connect(server.local_addr(), "osd.1.shoal")?.await?;
        let (mut send, mut recv) = conn.open_bi().await?;
        send.write_all(&Frame::new(ECHO, Bytes::new()).to_vec()?)
            .await?;
        send.finish()?;
        let got = recv.read_to_end(1 << 20).await?;
        Ok::<_, Box<dyn std::error::Error>>(got)
    }
    .await;
    // Seen from the client, the refusal is a closed connection (during or
    // right after the handshake); the server side tells what happened.
    let err = outcome.expect_err("a client without a certificate must be refused");
    tracing::info!(error = %err, "refused as expected");
    wait_until(T, "server counts the refusal", || async {
        server.stats().handshake_failures == 1
    })
    .await;
    assert_eq!(server.stats().connections_accepted, 0);
    assert_eq!(server.stats().requests_served, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_other_cluster_and_expired_clients_are_refused() {
    init_tracing();
    let ca = cluster("alpha");
    let server = whoami_server(ca.issue("osd.1").unwrap(), 15);

    // Self-signed certificate naming a valid identity.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["client.evil.shoal".to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.self_signed(&key).unwrap();
    let self_signed = NodeIdentity::from_der(
        cert.der().clone(),
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        ca.cert_der().clone(),
    )
    .unwrap();
    assert_refused_by_server(&server, self_signed, 16).await;

    // Signed by another cluster's CA (and trusting it).
    let other = cluster("beta");
    assert_refused_by_server(&server, other.issue("client.admin").unwrap(), 17).await;

    // Signed by the right CA, but expired yesterday.
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();
    let expired = ca
        .issue_with_validity("client.old", now - 2 * day, now - day)
        .unwrap();
    assert_refused_by_server(&server, expired, 18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refuses_bad_servers() {
    init_tracing();
    let ca = cluster("alpha");
    let other = cluster("beta");
    let client = client(ca.issue("client.admin").unwrap(), lo(19));
    let day = Duration::from_secs(86_400);
    let now = SystemTime::now();

    let foreign = whoami_server(other.issue("osd.1").unwrap(), 20);
    let expired = whoami_server(
        ca.issue_with_validity("osd.1", now - 2 * day, now - day)
            .unwrap(),
        21,
    );
    let genuine = whoami_server(ca.issue("osd.1").unwrap(), 22);
    for (what, peer) in [
        (
            "other cluster",
            PeerAddr::named("osd.1", foreign.local_addr()),
        ),
        (
            "other cluster, any member",
            PeerAddr::any(foreign.local_addr()),
        ),
        ("expired", PeerAddr::named("osd.1", expired.local_addr())),
        // A genuine member, but not the one the client asked for.
        (
            "wrong identity",
            PeerAddr::named("osd.2", genuine.local_addr()),
        ),
    ] {
        let err = client.connect(&peer).await.expect_err(what);
        assert!(
            matches!(err, NetError::HandshakeRefused(_)),
            "{what}: expected a handshake refusal, got {err:?}"
        );
    }
    assert_eq!(genuine.stats().requests_served, 0);
    // The right name at the same address is fine.
    let ok = client
        .connect(&PeerAddr::named("osd.1", genuine.local_addr()))
        .await
        .unwrap();
    assert_eq!(ok.peer_name(), "osd.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_and_identity_files_round_trip_with_0600() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let ca = cluster("alpha");
    ca.save(dir.path()).unwrap();
    let osd = ca.issue("osd.7").unwrap();
    osd.save(dir.path()).unwrap();
    for f in ["ca.key", "ca.crt", "osd.7.key", "osd.7.crt"] {
        let mode = std::fs::metadata(dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    // The loaded CA signs identities the original's members accept.
    let loaded = ClusterCa::load(dir.path()).unwrap();
    assert_eq!(loaded.cluster(), "alpha");
    assert_eq!(loaded.cert_der(), ca.cert_der());
    let osd_loaded = NodeIdentity::load(dir.path(), "osd.7").unwrap();
    assert_eq!(osd_loaded.name(), "osd.7");
    let server = whoami_server(osd_loaded, 23);
    let client = client(loaded.issue("client.new").unwrap(), lo(24));
    let resp = client
        .request(
            &PeerAddr::named("osd.7", server.local_addr()),
            &Frame::new(ECHO, Bytes::new()),
            T,
        )
        .await
        .unwrap();
    assert_eq!(&resp.body[..], b"client.new");

    // A key readable by others is refused with a clear error.
    for f in ["ca.key", "osd.7.key"] {
        let path = dir.path().join(f);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let err = ClusterCa::load(dir.path()).unwrap_err();
    assert!(
        matches!(err, NetError::InsecureKeyFile { mode: 0o644, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
    let err = NodeIdentity::load(dir.path(), "osd.7").unwrap_err();
    assert!(matches!(err, NetError::InsecureKeyFile { .. }), "{err:?}");

    // A CA key that does not match the certificate is detected.
    std::fs::set_permissions(
        dir.path().join("ca.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let other = cluster("alpha");
    let other_dir = tempfile::tempdir().unwrap();
    other.save(other_dir.path()).unwrap();
    std::fs::copy(other_dir.path().join("ca.key"), dir.path().join("ca.key")).unwrap();
    assert!(ClusterCa::load(dir.path()).is_err());

    // Names are checked.
    assert!(matches!(
        ca.issue("OSD 1"),
        Err(NetError::InvalidName { .. })
    ));
    assert!(ClusterCa::generate("bad.name").is_err());
}
