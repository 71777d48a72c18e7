//! Accepting S3 clients: HTTP/1.1 (optionally over TLS) with limits that
//! keep hostile or slow clients from pinning the gateway: a bounded number
//! of connections, a deadline for each request header, a bounded header
//! size; bodies have an idle timeout where they are read. Every response
//! carries an `x-amz-request-id`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use s3s::service::S3Service;
use shoal_conf::S3Section;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Largest request header block accepted.
const MAX_HEADER_BYTES: usize = 64 << 10;
/// How long in-flight requests may finish after shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Request ids: the process start time and a counter, as hex.
struct RequestIds {
    base: u64,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            base: crate::model::now_ms(),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:X}{n:08X}", self.base)
    }
}

/// A bound listener and what it serves.
pub struct Server {
    listener: TcpListener,
    gateway: crate::Gateway,
    service: S3Service,
    tls: Option<tokio_rustls::TlsAcceptor>,
    conf: S3Section,
}

impl Server {
    /// Binds `conf.listen` (TLS when `conf` names a certificate).
    pub async fn bind(
        conf: &S3Section,
        gateway: crate::Gateway,
        service: S3Service,
        resolve: impl Fn(&Path) -> std::path::PathBuf,
    ) -> Result<Server, ServerError> {
        let listener =
            TcpListener::bind(&conf.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: conf.listen.clone(),
                    source,
                })?;
        let tls = match (&conf.tls_cert, &conf.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(&resolve(cert), &resolve(key))?),
            _ => None,
        };
        Ok(Server {
            listener,
            gateway,
            service,
            tls,
            conf: conf.clone(),
        })
    }

    /// The address bound (the port, when `listen` named port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets requests in flight
    /// finish for a short while and cuts the rest.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(self.conf.max_connections as usize));
        let ids = Arc::new(RequestIds::new());
        let header_timeout = Duration::from_millis(self.conf.header_timeout_ms);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            // Past the limit, new clients wait in the kernel's listen queue.
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let accepted = tokio::select! {
                _ = &mut shutdown => break,
                a = self.listener.accept() => a,
            };
            while conns.try_join_next().is_some() {}
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = self.service.clone();
            let gateway = self.gateway.clone();
            let ids = ids.clone();
            let tls = self.tls.clone();
            conns.spawn(async move {
                let _permit = permit;
                match tls {
                    None => serve(stream, gateway, service, ids, header_timeout).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => serve(s, gateway, service, ids, header_timeout).await,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    }
                }
            });
        }
        tracing::info!(connections = conns.len(), "shutting down");
        let drained =
            tokio::time::timeout(DRAIN, async { while conns.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            conns.shutdown().await;
        }
    }
}

/// Serves one connection's requests.
async fn serve<S>(
    stream: S,
    gateway: crate::Gateway,
    service: S3Service,
    ids: Arc<RequestIds>,
    header_timeout: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let service = service.clone();
        let gateway = gateway.clone();
        let id = ids.next();
        async move {
            let method = req.method().clone();
            let path = req.uri().path().to_string();
            let attributes = req.uri().query().is_some_and(|q| {
                q.split('&')
                    .any(|p| p == "attributes" || p == "attributes=")
            });
            // Cross-origin requests get CORS headers on their answers.
            let cross_origin = req
                .headers()
                .contains_key(http::header::ORIGIN)
                .then(|| req.headers().clone());
            let mut resp = if method == http::Method::OPTIONS {
                crate::cors::preflight(&gateway, &path, req.headers()).await
            } else {
                let early = crate::precheck::check(
                    req.method(),
                    req.uri(),
                    req.headers(),
                    std::time::SystemTime::now(),
                );
                let mut req = req;
                if let Some(uri) = crate::precheck::sigv2_uri(req.headers(), req.uri()) {
                    *req.uri_mut() = uri;
                }
                if let Some(date) = crate::precheck::sigv4_amz_date(req.headers()) {
                    req.headers_mut().insert("x-amz-date", date);
                }
                match early.map(|e| e.to_http_response()) {
                    Some(Ok(resp)) => resp,
                    _ if crate::unframed::needs_length(&req) => {
                        let conf = gateway.conf();
                        let idle = Duration::from_millis(conf.body_idle_timeout_ms);
                        let limit = conf.max_buffered_body_bytes;
                        match crate::unframed::with_length(req, limit, idle).await {
                            Ok(req) => service.call(req).await?,
                            Err(e) => error_response(e),
                        }
                    }
                    _ => service.call(req.map(s3s::Body::from)).await?,
                }
            };
            if let Some(h) = cross_origin
                && method != http::Method::OPTIONS
            {
                crate::cors::decorate(&gateway, &method, &path, &h, &mut resp).await;
            }
            if resp.status().as_u16() >= 400 {
                add_request_id_to_error(&mut resp, &id);
            } else if attributes && method == http::Method::GET {
                unquote_attributes_etag(&mut resp);
            } else if resp.status() == http::StatusCode::SEE_OTHER {
                quote_redirect_etag(&mut resp);
            }
            raw_metadata_values(resp.headers_mut());
            if let Ok(v) = http::HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amz-request-id", v.clone());
                resp.headers_mut().insert("x-amz-id-2", v);
            }
            Ok::<_, s3s::HttpError>(resp)
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = conn.await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// The response for an error found before `s3s` saw the request.
fn error_response(e: s3s::S3Error) -> http::Response<s3s::Body> {
    let status = e.status_code();
    e.to_http_response().unwrap_or_else(|_| {
        let mut r = http::Response::new(s3s::Body::empty());
        *r.status_mut() = status.unwrap_or(http::StatusCode::BAD_REQUEST);
        r
    })
}

/// Sends user metadata values as the bytes clients sent. `s3s` writes a
/// value outside ASCII as an RFC 2047 word (`=?UTF-8?B?...?=`), which S3
/// clients do not decode; S3 and RGW return the raw value, which clients
/// read as Latin-1. Values that do not fit Latin-1 keep the encoded form.
fn raw_metadata_values(headers: &mut http::HeaderMap) {
    use base64::Engine as _;
    for (name, value) in headers.iter_mut() {
        if !name.as_str().starts_with("x-amz-meta-") {
            continue;
        }
        let Some(encoded) = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("=?UTF-8?B?"))
            .and_then(|v| v.strip_suffix("?="))
        else {
            continue;
        };
        let Some(text) = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            continue;
        };
        let latin1: Option<Vec<u8>> = text.chars().map(|c| u8::try_from(c).ok()).collect();
        if let Some(raw) = latin1.and_then(|b| http::HeaderValue::from_bytes(&b).ok()) {
            *value = raw;
        }
    }
}

/// Puts `<RequestId>` into an S3 error document that lacks one (errors
/// made inside `s3s` do not know the request's id), so the body and the
/// `x-amz-request-id` header agree.
fn add_request_id_to_error(resp: &mut http::Response<s3s::Body>, id: &str) {
    let Some(body) = resp.body().bytes() else {
        return;
    };
    let Some(xml) = with_request_id(&body, id) else {
        return;
    };
    if let Ok(len) = http::HeaderValue::from_str(&xml.len().to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, len);
    }
    *resp.body_mut() = s3s::Body::from(xml);
}

/// GetObjectAttributes answers the ETag without quotes (unlike every other
/// document; `s3s` always quotes it).
fn unquote_attributes_etag(resp: &mut http::Response<s3s::Body>) {
    let Some(body) = resp.body().bytes() else {
        return;
    };
    let Some(xml) = attributes_etag_unquoted(&body) else {
        return;
    };
    if let Ok(len) = http::HeaderValue::from_str(&xml.len().to_string()) {
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, len);
    }
    *resp.body_mut() = s3s::Body::from(xml);
}

/// A GetObjectAttributes document with its ETag unquoted; `None` for any
/// other body.
fn attributes_etag_unquoted(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.contains("<GetObjectAttributesResponse") {
        return None;
    }
    let start = text.find("<ETag>\"")? + "<ETag>".len();
    let end = start + text[start..].find("</ETag>")?;
    let etag = text[start..end].trim_matches('"');
    Some(format!("{}{etag}{}", &text[..start], &text[end..]))
}

/// A POST upload's `success_action_redirect` carries the ETag quoted, as
/// S3 sends it (`s3s` leaves the quotes out).
fn quote_redirect_etag(resp: &mut http::Response<s3s::Body>) {
    let location = resp
        .headers()
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(location_with_quoted_etag)
        .and_then(|l| http::HeaderValue::from_str(&l).ok());
    if let Some(l) = location {
        resp.headers_mut().insert(http::header::LOCATION, l);
    }
}

/// `location` with its `etag` query value quoted; none when it has none
/// or it is quoted already.
fn location_with_quoted_etag(location: &str) -> Option<String> {
    let (base, query) = location.split_once('?')?;
    let mut changed = false;
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.strip_prefix("etag=") {
            Some(v) if !v.starts_with("%22") => {
                changed = true;
                format!("etag=%22{v}%22")
            }
            _ => p.to_string(),
        })
        .collect();
    changed.then(|| format!("{base}?{}", params.join("&")))
}

/// The error document `body` with `<RequestId>id</RequestId>` before its
/// closing tag; `None` when it is no error document or has an id.
fn with_request_id(body: &[u8], id: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if text.contains("<RequestId>") {
        return None;
    }
    let at = text.rfind("</Error>")?;
    Some(format!(
        "{}<RequestId>{id}</RequestId>{}",
        &text[..at],
        &text[at..]
    ))
}

/// A TLS acceptor from PEM files (ring provider, as the rest of Shoal).
fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| ServerError::Tls(format!("reading {}: {e}", p.display())))
    };
    let parsed = |p: &Path| -> Result<Vec<pem::Pem>, ServerError> {
        pem::parse_many(read(p)?).map_err(|e| ServerError::Tls(format!("{}: {e}", p.display())))
    };
    let certs: Vec<CertificateDer<'static>> = parsed(cert)?
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| CertificateDer::from(p.into_contents()))
        .collect();
    if certs.is_empty() {
        return Err(ServerError::Tls(format!(
            "{} holds no certificate",
            cert.display()
        )));
    }
    let key = parsed(key)?
        .into_iter()
        .find(|p| p.tag() == "PRIVATE KEY")
        .map(|p| PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(p.into_contents())))
        .ok_or_else(|| ServerError::Tls(format!("{} holds no PKCS#8 key", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServerError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_metadata_goes_back_to_raw_latin1() {
        let mut h = http::HeaderMap::new();
        // "Hello Worldé"
        h.insert(
            "x-amz-meta-a",
            "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?=".parse().unwrap(),
        );
        // "€" is outside Latin-1: kept encoded.
        h.insert("x-amz-meta-b", "=?UTF-8?B?4oKs?=".parse().unwrap());
        h.insert("content-type", "=?UTF-8?B?4oKs?=".parse().unwrap());
        raw_metadata_values(&mut h);
        assert_eq!(h["x-amz-meta-a"].as_bytes(), b"Hello World\xe9");
        assert_eq!(h["x-amz-meta-b"], "=?UTF-8?B?4oKs?=");
        assert_eq!(h["content-type"], "=?UTF-8?B?4oKs?=");
    }

    #[test]
    fn redirect_etags_get_their_quotes() {
        assert_eq!(
            location_with_quoted_etag("http://h/b?bucket=b&key=k&etag=abc").as_deref(),
            Some("http://h/b?bucket=b&key=k&etag=%22abc%22")
        );
        assert_eq!(location_with_quoted_etag("http://h/b?etag=%22abc%22"), None);
        assert_eq!(location_with_quoted_etag("http://h/b"), None);
    }

    #[test]
    fn attributes_etags_lose_their_quotes() {
        let doc = br#"<GetObjectAttributesResponse><ETag>"abc-2"</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>"#;
        assert_eq!(
            attributes_etag_unquoted(doc).as_deref(),
            Some(
                "<GetObjectAttributesResponse><ETag>abc-2</ETag><ObjectSize>3</ObjectSize></GetObjectAttributesResponse>"
            )
        );
        assert_eq!(
            attributes_etag_unquoted(br#"<ListBucketResult><ETag>"a"</ETag>"#),
            None
        );
    }

    #[test]
    fn request_ids_go_into_error_documents_once() {
        let doc = br#"<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>"#;
        assert_eq!(
            with_request_id(doc, "R1").as_deref(),
            Some(
                r#"<?xml version="1.0"?><Error><Code>NoSuchKey</Code><RequestId>R1</RequestId></Error>"#
            )
        );
        let with = br#"<Error><RequestId>X</RequestId></Error>"#;
        assert_eq!(with_request_id(with, "R1"), None);
        assert_eq!(with_request_id(b"<ListBucketResult/>", "R1"), None);
        assert_eq!(with_request_id(&[0xff, 0xfe], "R1"), None);
        let ids = RequestIds::new();
        assert_ne!(ids.next(), ids.next());
    }

    proptest::proptest! {
        /// Any response body is spliced or left alone, never broken.
        #[test]
        fn request_id_splicing_keeps_the_document(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Some(out) = with_request_id(&body, "R") {
                proptest::prop_assert!(out.contains("<RequestId>R</RequestId></Error>"));
                proptest::prop_assert_eq!(out.len(), body.len() + "<RequestId>R</RequestId>".len());
            }
        }

        /// Rewrites of answers take any bytes without panicking, and only
        /// ever drop or add the two quotes.
        #[test]
        fn answer_rewrites_take_any_input(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            location in "[ -~]{0,80}",
        ) {
            let mut doc = b"<GetObjectAttributesResponse>".to_vec();
            doc.extend_from_slice(&body);
            if let Some(out) = attributes_etag_unquoted(&doc) {
                proptest::prop_assert!(out.len() <= doc.len());
            }
            if let Some(out) = location_with_quoted_etag(&location) {
                proptest::prop_assert!(out.len() > location.len());
            }
        }
    }
}
