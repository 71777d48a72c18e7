//! The application's side of an endpoint: the handlers that answer
//! requests and consume one-way streams, and their object-safe forms.

use std::future::Future;
use std::pin::Pin;

use crate::frame::Frame;
use crate::peer::PeerInfo;
use crate::stream::InboundStream;

/// Serves requests: gets each request frame and returns the response frame.
///
/// Application errors are responses too (encode them in the body).
/// Closures `Fn(PeerInfo, Frame) -> impl Future<Output = Frame>` implement it.
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one request from the authenticated `peer`.
    fn handle(&self, peer: PeerInfo, request: Frame) -> impl Future<Output = Frame> + Send;
}

impl<F, Fut> RequestHandler for F
where
    F: Fn(PeerInfo, Frame) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Frame> + Send,
{
    fn handle(&self, peer: PeerInfo, request: Frame) -> impl Future<Output = Frame> + Send {
        self(peer, request)
    }
}

/// Consumes incoming one-way streams (one call per stream, in its own task).
/// Closures `Fn(InboundStream) -> impl Future<Output = ()>` implement it.
pub trait StreamHandler: Send + Sync + 'static {
    /// Handles one stream until it ends.
    fn handle(&self, stream: InboundStream) -> impl Future<Output = ()> + Send;
}

impl<F, Fut> StreamHandler for F
where
    F: Fn(InboundStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    fn handle(&self, stream: InboundStream) -> impl Future<Output = ()> + Send {
        self(stream)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`RequestHandler`].
pub(crate) trait DynRequestHandler: Send + Sync {
    fn call(&self, peer: PeerInfo, request: Frame) -> BoxFuture<'_, Frame>;
}

impl<H: RequestHandler> DynRequestHandler for H {
    fn call(&self, peer: PeerInfo, request: Frame) -> BoxFuture<'_, Frame> {
        Box::pin(self.handle(peer, request))
    }
}

/// Object-safe form of [`StreamHandler`].
pub(crate) trait DynStreamHandler: Send + Sync {
    fn call(&self, stream: InboundStream) -> BoxFuture<'_, ()>;
}

impl<H: StreamHandler> DynStreamHandler for H {
    fn call(&self, stream: InboundStream) -> BoxFuture<'_, ()> {
        Box::pin(self.handle(stream))
    }
}
