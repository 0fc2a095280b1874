//! The event loop: one thread, one `mio::Poll`, a slab of connections.
//!
//! Each turn of the loop polls with the earliest timer deadline as its timeout, handles every
//! readiness event (accepting in a loop until `WouldBlock`, reading each ready connection
//! until it is drained or up to a budget), fires due timers, and then flushes every
//! connection that has output, many frames per `writev` (an echo is written as soon as its
//! input is read). Connections whose read budget ran out are kept on a ready list and
//! served on the next turn, so one busy peer cannot starve the others; the loop then polls
//! with a zero timeout.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant, SystemTime};

use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use super::admission::{PerIp, SWEEP_EVERY};
use super::app::App;
use super::app_waker::AppWaker;
use super::apps::{AppId, Apps, Exposure};
use super::client_addr::Pending;
use super::compress::FrameCache;
use super::config::ServerConfig;
use super::conn::{Conn, ConnId, Phase};
use super::echo::{ECHO_PATH, Echo};
use super::fd_limit::{AcceptError, Reserve, raise_nofile};
use super::frames::AppInput;
use super::handle::ServerHandle;
use super::listeners::{Listeners, Port};
use super::notify;
use super::signals::{SIGNALS, SignalSource};
use crate::hub_app::app::{API_PATHS, HUB_PATH, HubApp};
use crate::hub_app::state::HubParts;

use super::outbound::BufPool;
use super::publications::Publications;
use super::reading::{READ_CHUNK, ReadUntil};
use super::stats::Stats;
use super::timers::{TimerKind, Timers, after};
use super::tls::TlsAcceptor;
use super::tokens::{live, slot_index, token_of};
use crate::hub::Now;
use crate::protocol::deflate::DeflaterPool;
use crate::protocol::handshake::HeadParser;
use crate::transport::Stream;

/// The waker's token.
const WAKER: Token = Token(usize::MAX - 2);
/// Connections accepted only to be refused (503) may exceed `max_connections` by this many.
const REFUSAL_HEADROOM: usize = 1024;

/// What binding produces: everything the loop needs that may cross threads.
#[derive(Debug)]
struct Bound {
    poll: Poll,
    listeners: Listeners,
    local_addr: SocketAddr,
    internal_addr: Option<SocketAddr>,
    handle: ServerHandle,
    config: ServerConfig,
    /// The hub's history file and Redis threads, for its app.
    hub: HubParts,
    /// TLS on the public listener.
    tls: Option<TlsAcceptor>,
}

impl Bound {
    /// Binds, and starts the Redis threads (when clustered), which wake the hub's app
    /// through its flag `hub_woken`.
    fn bind(config: ServerConfig, hub_woken: Arc<AtomicBool>) -> io::Result<Self> {
        raise_nofile(config.max_connections);
        let tls = config.tls.as_ref().map(TlsAcceptor::load).transpose()?;
        let poll = Poll::new()?;
        let listeners = Listeners::bind(&config, poll.registry())?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let local_addr = listeners.addr(Port::Public)?.unwrap_or(config.listen);
        let internal_addr = listeners.addr(Port::Internal)?;
        let handle = ServerHandle::new(waker);
        let hub = HubParts::open(&config, AppWaker::new(hub_woken, handle.clone()))?;
        Ok(Self {
            poll,
            listeners,
            local_addr,
            internal_addr,
            handle,
            config,
            hub,
            tls,
        })
    }
}

/// A server running on its own thread, from [`Server::spawn`].
#[derive(Debug)]
pub struct Spawned {
    /// The address it listens on.
    pub local_addr: SocketAddr,
    /// The operators' address (`internal_listen`), when one is bound.
    pub internal_addr: Option<SocketAddr>,
    /// A handle to stop it.
    pub handle: ServerHandle,
    /// The loop's thread; joins with the loop's result.
    pub thread: std::thread::JoinHandle<io::Result<()>>,
}

/// A WebSocket server: owns the poll, the listeners and every connection.
#[derive(Debug)]
pub struct Server {
    pub(super) poll: Poll,
    /// `server.listen`, and `server.internal_listen` when set.
    pub(super) listeners: Listeners,
    /// A descriptor given up to answer one client when `accept` hits EMFILE.
    pub(super) reserve: Reserve,
    local_addr: SocketAddr,
    internal_addr: Option<SocketAddr>,
    pub(super) conns: Slab<Conn>,
    /// Connections counting towards `max_connections`.
    pub(super) admitted: usize,
    pub(super) timers: Timers,
    pub(super) pool: BufPool,
    /// The one read buffer, shared by every connection: a chunk of reads plus the longest
    /// leftover that can precede it.
    pub(super) scratch: Box<[u8]>,
    pub(super) config: ServerConfig,
    next_generation: u32,
    /// Connections with output to flush this turn.
    pub(super) dirty: Vec<ConnId>,
    /// Publications held until the turn's output is flushed (see `publications`).
    pub(super) publications: Publications,
    /// Connections with input left to read (budget exhausted or resumed after backpressure).
    pub(super) ready: VecDeque<ConnId>,
    pub(super) stats: Stats,
    handle: ServerHandle,
    /// Set once a graceful shutdown has begun: when it must end.
    pub(super) drain_deadline: Option<Instant>,
    /// Wall-clock time of the current turn (for message timestamps).
    pub(super) wall_now: Now,
    /// Scratch for the control frames a read produces.
    pub(super) ctrl: Vec<u8>,
    /// Compressors shared by every connection whose server side has no context takeover
    /// (permessage-deflate); created on first use, one per window size.
    pub(super) deflaters: DeflaterPool,
    /// Compressed variants of the shared frames of the current batch (one per window).
    pub(super) deflate_cache: FrameCache,
    /// The messages of the current input for its connection's app; `None` while lent to
    /// [`Server::read_open`] (boxed: lending it is a pointer's move).
    pub(super) app_input: Option<Box<AppInput>>,
    /// The applications and the paths routed to them.
    pub(super) apps: Apps,
    /// Connections and handshake buckets per IP address.
    pub(super) per_ip: PerIp,
    /// When idle per-IP state is next swept.
    next_sweep: Instant,
    /// SIGTERM/SIGINT source, once [`Server::handle_signals`] was called.
    pub(super) signals: Option<SignalSource>,
    /// TLS on the public listener, when configured (reloaded on SIGHUP).
    pub(super) tls: Option<TlsAcceptor>,
}

impl Server {
    /// Binds the listener and prepares the loop with the built-in endpoints (`/echo`, the
    /// hub at `/ws`, the page and the HTTP endpoints); call [`Server::run`] to serve.
    pub fn bind(config: ServerConfig) -> io::Result<Self> {
        Self::builder(config).bind()
    }

    /// A server with no application routes yet: add them with [`ServerBuilder::route`].
    /// The hub (`/ws`), the page and the HTTP endpoints are built in.
    pub fn builder(config: ServerConfig) -> ServerBuilder {
        ServerBuilder {
            config,
            apps: Apps::default(),
        }
    }

    /// Binds in the calling thread and serves on a new one; returns once listening.
    ///
    /// The loop's data is not `Send` (shared frames are reference-counted), so only the bound
    /// parts cross to the new thread and the loop is assembled there.
    pub fn spawn(config: ServerConfig) -> io::Result<Spawned> {
        let hub_woken = Arc::<AtomicBool>::default();
        let mut bound = Bound::bind(config, hub_woken.clone())?;
        let local_addr = bound.local_addr;
        let internal_addr = bound.internal_addr;
        let handle = bound.handle.clone();
        let thread = std::thread::Builder::new()
            .name("wsloop".into())
            .spawn(move || {
                let mut apps = Apps::default();
                let parts = std::mem::take(&mut bound.hub);
                route_builtins(&mut apps, &bound.config, parts, hub_woken);
                Self::from_parts(bound, apps).run()
            })?;
        Ok(Spawned {
            local_addr,
            internal_addr,
            handle,
            thread,
        })
    }

    fn from_parts(bound: Bound, apps: Apps) -> Self {
        let Bound {
            poll,
            listeners,
            local_addr,
            internal_addr,
            handle,
            config,
            hub: _,
            tls,
        } = bound;
        let scratch_len = READ_CHUNK + config.head.max_bytes + 256;
        let level = config.compression.map_or(6, |c| c.level);
        Self {
            local_addr,
            internal_addr,
            poll,
            listeners,
            reserve: Reserve::open(),
            conns: Slab::new(),
            admitted: 0,
            timers: Timers::default(),
            pool: BufPool::default(),
            scratch: vec![0; scratch_len].into_boxed_slice(),
            config,
            next_generation: 0,
            dirty: Vec::new(),
            publications: Publications::default(),
            ready: VecDeque::new(),
            stats: Stats::new(Instant::now()),
            wall_now: Now::current(),
            ctrl: Vec::with_capacity(256),
            deflaters: DeflaterPool::new(level),
            deflate_cache: FrameCache::default(),
            app_input: Some(Box::default()),
            apps,
            per_ip: PerIp::default(),
            next_sweep: Instant::now() + SWEEP_EVERY,
            signals: None,
            tls,
            handle,
            drain_deadline: None,
        }
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The operators' address (`internal_listen`), when one is bound.
    pub fn internal_addr(&self) -> Option<SocketAddr> {
        self.internal_addr
    }

    /// A handle to stop the loop from another thread.
    pub fn handle(&self) -> ServerHandle {
        self.handle.clone()
    }

    /// A waker for the app that `path` is routed to (an exact route's path, or any path
    /// under a prefix route): another thread calls [`AppWaker::wake`] and the loop calls
    /// that app's [`App::on_wake`]. `None` if no app takes `path`.
    pub fn app_waker(&self, path: &str) -> Option<AppWaker> {
        let app = self.apps.find(path)?;
        self.apps.waker(app, self.handle.clone())
    }

    /// The waker of an app in the table (a [`Ctx`](super::Ctx)'s own: the table never
    /// shrinks, so its id stays valid).
    pub(super) fn waker_of(&self, app: AppId) -> AppWaker {
        match self.apps.waker(app, self.handle.clone()) {
            Some(waker) => waker,
            // Unreachable: ids come from the table. A waker that wakes the loop and no
            // app is the harmless answer, not a panic in the loop.
            None => AppWaker::new(Arc::default(), self.handle.clone()),
        }
    }

    /// Serves until a shutdown completes. Returns after the drain, or at once on `exit_now`.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        log::info!("listening on {}", self.local_addr);
        self.start_apps(Instant::now());
        notify::notify(notify::READY);
        loop {
            let now = Instant::now();
            let idle =
                self.ready.is_empty() && self.dirty.is_empty() && self.publications.is_empty();
            let timeout = if idle {
                let drain = self
                    .drain_deadline
                    .map(|d| d.saturating_duration_since(now));
                match (self.timers.poll_timeout(now), drain) {
                    (Some(t), Some(d)) => Some(t.min(d)),
                    (t, d) => t.or(d),
                }
            } else {
                Some(Duration::ZERO)
            };

            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            self.wall_now = Now {
                wall: SystemTime::now(),
                mono: now,
            };
            for event in &events {
                // What an earlier event published reaches its subscribers before this.
                self.settle_publications(None, false, now);
                match event.token() {
                    token if Port::of(token).is_some() => {
                        if let Some(port) = Port::of(token) {
                            self.accept_all(port, now);
                        }
                    }
                    WAKER => self.wake_apps(now),
                    SIGNALS => self.on_signals(),
                    token => {
                        let hangup = event.is_read_closed() || event.is_error();
                        let read = match (event.is_readable(), hangup) {
                            (_, true) => Some(ReadUntil::WouldBlock),
                            (true, false) => Some(ReadUntil::ShortRead),
                            (false, false) => None,
                        };
                        self.on_conn_event(token, read, event.is_writable(), now);
                    }
                }
            }
            self.serve_ready(now);
            self.fire_timers(now);
            if now >= self.next_sweep {
                self.isolated_shared("sweep", |s| s.sweep_buckets(now));
                self.next_sweep = now + SWEEP_EVERY;
            }
            self.flush_dirty(now);
            self.stats.loop_time.observe(now.elapsed());
            if self.check_stop(now) {
                log::info!("shutdown complete");
                return Ok(());
            }
        }
    }

    /// Accepts until `WouldBlock` (mio: readiness is edge-triggered). Out of descriptors,
    /// clients are turned away on the reserve descriptor (see `fd_limit`).
    pub(super) fn accept_all(&mut self, port: Port, now: Instant) {
        loop {
            let Some(listener) = self.listeners.get(port) else {
                return;
            };
            let e = match listener.accept() {
                Ok((socket, peer)) => {
                    self.isolated_shared("accept", |s| s.admit(socket, peer, port, now));
                    continue;
                }
                Err(e) => e,
            };
            let outcome = match AcceptError::of(&e) {
                AcceptError::PerConnection => Ok(()),
                AcceptError::OutOfDescriptors => self.accept_on_reserve(port),
                other => Err(other),
            };
            match outcome {
                Ok(()) => {}
                Err(AcceptError::WouldBlock) => return,
                Err(_) => return self.retry_accept(now, &e),
            }
        }
    }

    /// Registers a new connection, or refuses it with 503 when the server is full.
    fn admit(
        &mut self,
        mut socket: mio::net::TcpStream,
        peer: SocketAddr,
        port: Port,
        now: Instant,
    ) {
        // A trusted proxy's clients are held to the per-IP limits once it names them.
        let trusted = self.config.trusted_proxies.contains(peer.ip());
        let admission = if trusted {
            self.capacity()
        } else {
            self.admission(peer.ip(), now)
        };
        let client_pending = match (trusted && admission.is_ok(), self.config.proxy_protocol) {
            (false, _) => Pending::Known,
            (true, true) => Pending::ProxyHeader,
            (true, false) => Pending::Forwarded,
        };
        if admission.is_err() && self.conns.len() >= self.config.max_connections + REFUSAL_HEADROOM
        {
            return; // Dropping the socket closes it; nothing else can be afforded.
        }
        let _ = socket.set_nodelay(true);
        super::stall::bound_send_buffer(&socket, self.config.socket_send_buffer);
        let entry = self.conns.vacant_entry();
        let Some(index) = slot_index(entry.key()) else {
            return;
        };
        self.next_generation = self.next_generation.wrapping_add(1);
        let id = ConnId::new(index, self.next_generation);
        let token = token_of(id);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut socket, token, Interest::READABLE)
        {
            log::warn!("register failed for {peer}: {e}");
            return;
        }
        let tls = match (&self.tls, port) {
            (Some(acceptor), Port::Public) => match acceptor.accept() {
                Ok(tls) => Some(tls.into()),
                Err(e) => return log::warn!("TLS state for {peer}: {e}"),
            },
            _ => None,
        };
        entry.insert(Conn {
            id,
            socket: Stream::new(socket, tls),
            peer,
            client: peer.ip(),
            counted_ip: (admission.is_ok() && !trusted).then_some(peer.ip()),
            client_pending,
            port,
            phase: Phase::Handshaking(HeadParser::new(self.config.head)),
            pending: Vec::new(),
            out: Default::default(),
            writable_armed: false,
            read_paused: false,
            opened: now,
            last_seen: now,
            admitted: admission.is_ok(),
            app: None,
            write_progress: now,
            stall_check: None,
            buffered: 0,
        });
        self.stats.connections_total += 1;
        match admission {
            Ok(()) => {
                self.admitted += 1;
                if !trusted {
                    self.count_ip(peer.ip());
                }
                self.timers.arm(
                    after(now, self.config.handshake_timeout),
                    id,
                    TimerKind::Handshake,
                );
                self.arm_rate_check(id, now);
            }
            Err(refusal) => self.refuse(id, &refusal),
        }
        // The peer may have sent its request already; edge-triggered readiness will tell us,
        // but reading now saves a turn.
        self.isolated(id, |s| s.read_conn(id, now, ReadUntil::WouldBlock));
    }

    /// Dispatches a readiness event to its connection (isolated: a panic closes only it).
    fn on_conn_event(
        &mut self,
        token: Token,
        read: Option<ReadUntil>,
        writable: bool,
        now: Instant,
    ) {
        let Some(id) = live(&self.conns, token, |c| c.id) else {
            return; // Spurious or stale: the connection is gone, its slot maybe reused.
        };
        self.isolated(id, |s| {
            if writable {
                s.flush_conn(id, now);
            }
            if let Some(until) = read {
                s.read_conn(id, now, until);
            }
        });
    }

    /// Serves connections that still had input when their budget ran out.
    fn serve_ready(&mut self, now: Instant) {
        for _ in 0..self.ready.len() {
            if let Some(id) = self.ready.pop_front() {
                self.settle_publications(None, false, now);
                self.isolated(id, |s| s.read_conn(id, now, ReadUntil::WouldBlock));
            }
        }
    }
}

/// A server being assembled: its configuration and the applications routed by path.
///
/// Routes are matched before the built-in endpoints: an exact path (`/echo`), or a prefix
/// ending in `/*` (`/rooms/*`; `/*` takes every path). The longest prefix wins.
pub struct ServerBuilder {
    config: ServerConfig,
    apps: Apps,
}

impl ServerBuilder {
    /// Routes requests for `path` to `app`: upgrades to its WebSocket callbacks, plain
    /// HTTP to [`App::on_http`]. A path ending in `/*` routes every path under it (`/*`:
    /// every path); an exact route wins over a prefix, a longer prefix over a shorter.
    pub fn route(mut self, path: &str, app: impl App + 'static) -> Self {
        self.apps.route(path, Box::new(app));
        self
    }

    /// Routes every path of `paths` to one `app` (its WebSocket at one path and an HTTP
    /// API under another, say), each path as in [`ServerBuilder::route`].
    pub fn route_paths(mut self, paths: &[&str], app: impl App + 'static) -> Self {
        self.apps.route_paths(paths, Box::new(app));
        self
    }

    /// Serves the route `route` (a path or prefix as given to [`ServerBuilder::route`])
    /// for operators: when `server.internal_listen` is set, on that listener only, beside
    /// `/metrics` and `/stats` (404 on the public one); otherwise on the one listener. An
    /// app's admin API, say, while its WebSocket stays public:
    ///
    /// ```no_run
    /// # use wsloop::server::{App, ConnId, Ctx, Message, Server, ServerConfig};
    /// # struct Game;
    /// # impl App for Game {
    /// #     fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}
    /// # }
    /// let server = Server::builder(ServerConfig::default())
    ///     .route_paths(&["/game", "/game-admin/*"], Game)
    ///     .for_operators("/game-admin/*")
    ///     .bind()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn for_operators(mut self, route: &str) -> Self {
        self.apps.mark_operator(route);
        self
    }

    /// Binds the listeners and prepares the loop; call [`Server::run`] to serve.
    pub fn bind(mut self) -> io::Result<Server> {
        let hub_woken = Arc::<AtomicBool>::default();
        let mut bound = Bound::bind(self.config, hub_woken.clone())?;
        let parts = std::mem::take(&mut bound.hub);
        route_builtins(&mut self.apps, &bound.config, parts, hub_woken);
        Ok(Server::from_parts(bound, self.apps))
    }
}

/// Routes the built-in apps below the embedder's routes, apps like theirs: the echo at
/// `/echo`, and the hub at `/ws` (and its publish API, for operators), whose wake flag is
/// `woken` (the cluster's threads set it).
fn route_builtins(apps: &mut Apps, config: &ServerConfig, parts: HubParts, woken: Arc<AtomicBool>) {
    apps.route_builtin(
        &[(ECHO_PATH, Exposure::Public)],
        Box::new(Echo),
        Arc::default(),
    );
    let paths = [
        (HUB_PATH, Exposure::Public),
        (API_PATHS, Exposure::Operator),
    ];
    apps.route_builtin(&paths, Box::new(HubApp::new(config, parts)), woken);
}

impl std::fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("apps", &self.apps)
            .finish_non_exhaustive()
    }
}
