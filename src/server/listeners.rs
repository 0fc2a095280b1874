//! The sockets the server accepts on, and which endpoints each one serves.
//!
//! By default one listener (`server.listen`) serves everything. With
//! `server.internal_listen` set, a second listener is for operators: `/metrics`, `/stats`,
//! the API (`/api/…`) and the admin page (`/admin`) are served there only (the public port
//! answers them 404), and the internal port serves no WebSocket and no chat page.
//! `/healthz` and `/readyz` are on both, for load balancers and supervisors alike.

use std::io;
use std::net::SocketAddr;

use mio::net::TcpListener;
use mio::{Interest, Registry, Token};

use super::apps::Exposure;
use super::config::ServerConfig;
use super::routes::Route;

/// The public listener's token (connection tokens carry slot and generation: `tokens`).
pub(super) const PUBLIC: Token = Token(usize::MAX - 1);
/// The internal listener's token.
pub(super) const INTERNAL: Token = Token(usize::MAX - 4);

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Port {
    /// `server.listen`: clients.
    Public,
    /// `server.internal_listen`: operators and backends.
    Internal,
}

impl Port {
    /// The listener a readiness token names, if it is one.
    pub(super) fn of(token: Token) -> Option<Self> {
        match token {
            PUBLIC => Some(Self::Public),
            INTERNAL => Some(Self::Internal),
            _ => None,
        }
    }
}

/// The bound listeners.
#[derive(Debug)]
pub(super) struct Listeners {
    public: TcpListener,
    internal: Option<TcpListener>,
}

impl Listeners {
    /// Binds `server.listen` (and `internal_listen`, when set) and registers them.
    pub(super) fn bind(config: &ServerConfig, registry: &Registry) -> io::Result<Self> {
        let mut public = TcpListener::bind(config.listen)?;
        registry.register(&mut public, PUBLIC, Interest::READABLE)?;
        let internal = match config.internal_listen {
            Some(addr) => {
                let mut listener = TcpListener::bind(addr).map_err(|e| {
                    io::Error::new(e.kind(), format!("server.internal_listen {addr}: {e}"))
                })?;
                registry.register(&mut listener, INTERNAL, Interest::READABLE)?;
                Some(listener)
            }
            None => None,
        };
        Ok(Self { public, internal })
    }

    /// The listener for `port`, if it is bound.
    pub(super) fn get(&self, port: Port) -> Option<&TcpListener> {
        match port {
            Port::Public => Some(&self.public),
            Port::Internal => self.internal.as_ref(),
        }
    }

    /// The address `port` is bound to, if it is.
    pub(super) fn addr(&self, port: Port) -> io::Result<Option<SocketAddr>> {
        self.get(port).map(TcpListener::local_addr).transpose()
    }

    /// Whether a request for `route` that came in on `port` is served there.
    pub(super) fn serves(&self, port: Port, route: Route) -> bool {
        serves(port, route, self.internal.is_some())
    }

    /// Whether an app's route for `exposure` is served on `port`: a public one on the
    /// public listener, an operators' one where `/metrics` is.
    pub(super) fn serves_app(&self, port: Port, exposure: Exposure) -> bool {
        let audience = match exposure {
            Exposure::Public => Audience::Clients,
            Exposure::Operator => Audience::Operators,
        };
        served(port, audience, self.internal.is_some())
    }
}

/// Who an endpoint is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// WebSockets, the page: the public listener.
    Clients,
    /// Metrics, stats, the APIs: the internal listener when there is one.
    Operators,
    /// Health probes (and 404s): both.
    Probes,
}

/// Whether `route` is served on `port`, when an internal port exists (`split`) or not.
fn serves(port: Port, route: Route, split: bool) -> bool {
    let audience = match route {
        Route::Metrics | Route::Stats | Route::Admin => Audience::Operators,
        Route::Health | Route::Ready | Route::NotFound => Audience::Probes,
        Route::App(_) | Route::Page | Route::Sdk => Audience::Clients,
    };
    served(port, audience, split)
}

/// Whether an endpoint for `audience` is served on `port`.
fn served(port: Port, audience: Audience, split: bool) -> bool {
    match (port, split) {
        (Port::Public, false) => true,
        (Port::Public, true) => audience != Audience::Operators,
        (Port::Internal, _) => audience != Audience::Clients,
    }
}

#[cfg(test)]
mod tests {
    use super::super::apps::AppId;
    use super::super::routes::route;
    use super::*;

    #[test]
    fn what_each_port_serves() {
        let ws = Route::App(AppId(0));
        for r in [
            ws,
            Route::Page,
            Route::Sdk,
            Route::Metrics,
            Route::Stats,
            Route::Admin,
        ] {
            assert!(serves(Port::Public, r, false), "{r:?}: one port serves all");
        }
        assert_eq!(route("/admin"), Route::Admin);
        let internal = [Route::Metrics, Route::Stats, Route::Admin];
        for r in internal {
            assert!(
                !serves(Port::Public, r, true),
                "{r:?} leaves the public port"
            );
            assert!(serves(Port::Internal, r, true), "{r:?} is internal");
        }
        for r in [ws, Route::Page, Route::Sdk, route("/wsloop.js")] {
            assert!(serves(Port::Public, r, true), "{r:?} stays public");
            assert!(!serves(Port::Internal, r, true), "{r:?} is not internal");
        }
        for r in [route("/healthz"), route("/readyz")] {
            assert!(serves(Port::Public, r, true) && serves(Port::Internal, r, true));
        }
    }
}
