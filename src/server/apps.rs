//! The engine's side of applications: the routing table, each app's topics, and the calls
//! into apps (with the app taken out of its slot for the call, so it can be lent the whole
//! engine through a [`Ctx`]).
//!
//! Calls never nest: a close an app causes from inside a callback (its own, or a slow
//! subscriber's) is queued and its `on_close` runs once the callback has returned.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use super::app::{App, Closed, Health, Request};
use super::app_ctx::{Ctx, Topic};
use super::app_metrics::AppMetrics;
use super::app_run::Run;
use super::app_waker::{AppWaker, take_wake};
use super::conn::{ConnId, Phase, conn_mut};
use super::event_loop::Server;
use super::handle::ServerHandle;
use crate::protocol::Limits;

/// An application's index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppId(pub(super) u16);

/// Who a route is for, when the server has an internal listener (`internal_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exposure {
    /// Clients: the public listener.
    Public,
    /// Operators: the internal listener, beside `/metrics` and `/stats`.
    Operator,
}

/// One app and its topics.
struct Slot {
    /// `None` while the app is being called.
    app: Option<Box<dyn App>>,
    /// Subscribers by topic.
    topics: HashMap<Topic, Vec<ConnId>>,
    /// Topics by subscriber, for the cleanup when a connection closes.
    subscribed: HashMap<ConnId, Vec<Topic>>,
    /// Set by the app's [`AppWaker`]s, cleared when `on_wake` is called.
    woken: Arc<AtomicBool>,
    /// The app's own frame and message limits ([`App::limits`]), if it has them.
    limits: Option<Limits>,
}

/// Every app, the paths routed to them, and closes waiting to be told.
#[derive(Default)]
pub(super) struct Apps {
    slots: Vec<Slot>,
    /// Exact paths, and prefixes (a route ending in `/*`) longest first.
    exact: HashMap<String, AppId>,
    prefixes: Vec<(String, AppId)>,
    /// The engine's own apps (the hub at `/ws`), by path (exact, or a prefix ending in
    /// `/*`), and whom each path is for: found only when no route of the embedder's (a
    /// `/*`, say) takes the path first.
    builtins: Vec<(&'static str, AppId, Exposure)>,
    /// Exact paths, and prefixes (without their `*`), for operators: served on the
    /// internal listener when there is one ([`Apps::mark_operator`]).
    operator_paths: HashSet<String>,
    operator_prefixes: HashSet<String>,
    /// Connections that closed and whose app has yet to hear it: (app, conn, code, reason).
    closing: VecDeque<(AppId, ConnId, u16, String)>,
    /// How many closes have ever been queued: a run of messages stops when it moves
    /// ([`Run::next`]), so each close is told before the next message.
    closes_queued: u64,
    /// Closes are being told (or held to be told together): a close queued meanwhile
    /// waits for that loop, so telling never recurses.
    telling: bool,
}

impl Apps {
    /// Whether closes are queued that their apps have yet to hear.
    #[inline]
    pub(super) fn closes_pending(&self) -> bool {
        !self.closing.is_empty()
    }

    /// How many closes have ever been queued.
    #[inline]
    pub(super) fn closes_queued(&self) -> u64 {
        self.closes_queued
    }
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apps")
            .field("apps", &self.slots.len())
            .field("exact", &self.exact)
            .field("prefixes", &self.prefixes)
            .finish_non_exhaustive()
    }
}

impl Apps {
    /// Adds `app` at `path` (`/x/*` routes every path under `/x/`; `/*` every path).
    pub(super) fn route(&mut self, path: &str, app: Box<dyn App>) {
        self.route_paths(&[path], app);
    }

    /// Adds one `app` at every path of `paths` (each as in [`Apps::route`]).
    pub(super) fn route_paths(&mut self, paths: &[&str], app: Box<dyn App>) {
        let id = self.add(app);
        for path in paths {
            self.map(path, id);
        }
    }

    fn map(&mut self, path: &str, id: AppId) {
        match path.strip_suffix('*') {
            Some(prefix) => {
                self.prefixes.push((prefix.to_owned(), id));
                self.prefixes
                    .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
            }
            None => {
                self.exact.insert(path.to_owned(), id);
            }
        }
    }

    /// Adds a built-in app at `paths` (each exact, or a prefix ending in `/*`; each for
    /// clients or operators), below every
    /// route of the embedder's, with the flag its [`AppWaker`]s set (made before the app,
    /// for threads started before it).
    pub(super) fn route_builtin(
        &mut self,
        paths: &[(&'static str, Exposure)],
        app: Box<dyn App>,
        woken: Arc<AtomicBool>,
    ) {
        let id = self.add(app);
        if let Some(slot) = self.slot(id) {
            slot.woken = woken;
        }
        for (path, exposure) in paths {
            self.builtins.push((path, id, *exposure));
        }
    }

    fn add(&mut self, app: Box<dyn App>) -> AppId {
        let id = AppId(u16::try_from(self.slots.len()).unwrap_or(u16::MAX));
        self.slots.push(Slot {
            limits: app.limits(),
            app: Some(app),
            topics: HashMap::new(),
            subscribed: HashMap::new(),
            woken: Arc::default(),
        });
        id
    }

    /// Serves the route `route` (exact, or a prefix ending in `/*`, as routed) on the
    /// internal listener, beside `/metrics`, when `internal_listen` is set.
    pub(super) fn mark_operator(&mut self, route: &str) {
        match route.strip_suffix('*') {
            Some(prefix) => self.operator_prefixes.insert(prefix.to_owned()),
            None => self.operator_paths.insert(route.to_owned()),
        };
    }

    /// The app routed `path`, if any.
    pub(super) fn find(&self, path: &str) -> Option<AppId> {
        self.find_route(path).map(|(id, _)| id)
    }

    /// The app routed `path`, if any, and whether the route is for operators.
    pub(super) fn find_route(&self, path: &str) -> Option<(AppId, Exposure)> {
        let exposure = |operator: bool| match operator {
            true => Exposure::Operator,
            false => Exposure::Public,
        };
        if let Some(id) = self.exact.get(path) {
            return Some((*id, exposure(self.operator_paths.contains(path))));
        }
        let prefix = self
            .prefixes
            .iter()
            .find(|(prefix, _)| path.starts_with(prefix.as_str()));
        if let Some((prefix, id)) = prefix {
            return Some((*id, exposure(self.operator_prefixes.contains(prefix))));
        }
        let (_, id, exposure) =
            self.builtins
                .iter()
                .find(|(route, ..)| match route.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => *route == path,
                })?;
        Some((*id, *exposure))
    }

    /// The frame and message limits of `app`'s connections, if it has its own.
    pub(super) fn limits(&self, app: AppId) -> Option<Limits> {
        self.slots
            .get(usize::from(app.0))
            .and_then(|slot| slot.limits)
    }

    /// A waker for `app`'s `on_wake`, if `app` is in the table.
    pub(super) fn waker(&self, app: AppId, handle: ServerHandle) -> Option<AppWaker> {
        let slot = self.slots.get(usize::from(app.0))?;
        Some(AppWaker::new(slot.woken.clone(), handle))
    }

    /// The worst of the apps' health ([`App::health`]): the first app not ready, else
    /// the first degraded one, else ready.
    pub(super) fn health(&self) -> Health {
        let mut worst = Health::Ready;
        for app in self.slots.iter().filter_map(|slot| slot.app.as_deref()) {
            match app.health() {
                Health::Ready => {}
                not_ready @ Health::NotReady(_) => return not_ready,
                degraded @ Health::Degraded(_) => {
                    if worst == Health::Ready {
                        worst = degraded;
                    }
                }
            }
        }
        worst
    }

    /// Whether any app has work in flight ([`App::has_work_in_flight`]).
    pub(super) fn work_in_flight(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|slot| slot.app.as_deref())
            .any(|app| app.has_work_in_flight())
    }

    /// Every app's figures for a scrape ([`super::App::metrics`]).
    pub(super) fn metrics(&self) -> AppMetrics {
        let mut out = AppMetrics::default();
        for app in self.slots.iter().filter_map(|slot| slot.app.as_deref()) {
            out.collect(app);
        }
        out
    }

    /// Takes every queued close of `app` out of the queue, in order; the others keep
    /// theirs.
    fn take_closes_of(&mut self, app: AppId) -> Vec<(ConnId, u16, String)> {
        let mut taken = Vec::new();
        self.closing.retain_mut(|(of, conn, code, reason)| {
            if *of != app {
                return true;
            }
            taken.push((*conn, *code, std::mem::take(reason)));
            false
        });
        taken
    }

    fn slot(&mut self, app: AppId) -> Option<&mut Slot> {
        self.slots.get_mut(usize::from(app.0))
    }

    /// Takes a topic's subscribers out for a publish (see [`Apps::restore_subscribers`]).
    pub(super) fn take_subscribers(&mut self, app: AppId, topic: &str) -> Option<Vec<ConnId>> {
        let subscribers = self.slot(app)?.topics.get_mut(topic)?;
        Some(std::mem::take(subscribers))
    }

    /// Puts a topic's subscribers back after a publish.
    pub(super) fn restore_subscribers(&mut self, app: AppId, topic: &str, list: Vec<ConnId>) {
        if let Some(slot) = self.slot(app)
            && let Some(subscribers) = slot.topics.get_mut(topic)
        {
            *subscribers = list;
        }
    }

    /// Subscribes `conn` to `topic`; `false` if it already was.
    pub(super) fn subscribe(&mut self, app: AppId, conn: ConnId, topic: &str) -> bool {
        let Some(slot) = self.slot(app) else {
            return false;
        };
        let topics = slot.subscribed.entry(conn).or_default();
        if topics.iter().any(|t| &**t == topic) {
            return false;
        }
        let name: Topic = match slot.topics.get_key_value(topic) {
            Some((name, _)) => name.clone(),
            None => topic.into(),
        };
        topics.push(name.clone());
        slot.topics.entry(name).or_default().push(conn);
        true
    }

    /// Unsubscribes `conn` from `topic`; `false` if it was not subscribed.
    pub(super) fn unsubscribe(&mut self, app: AppId, conn: ConnId, topic: &str) -> bool {
        let Some(slot) = self.slot(app) else {
            return false;
        };
        let Some(topics) = slot.subscribed.get_mut(&conn) else {
            return false;
        };
        let Some(at) = topics.iter().position(|t| &**t == topic) else {
            return false;
        };
        topics.swap_remove(at);
        if topics.is_empty() {
            slot.subscribed.remove(&conn);
        }
        drop_subscriber(&mut slot.topics, topic, conn);
        true
    }

    /// How many connections `topic` has.
    pub(super) fn subscriber_count(&self, app: AppId, topic: &str) -> usize {
        self.slots
            .get(usize::from(app.0))
            .and_then(|slot| slot.topics.get(topic))
            .map_or(0, Vec::len)
    }

    /// A topic's shared name and how many subscribers it has; `None` if it has none.
    pub(super) fn topic(&self, app: AppId, topic: &str) -> Option<(&Topic, usize)> {
        let (name, subscribers) = self
            .slots
            .get(usize::from(app.0))?
            .topics
            .get_key_value(topic)?;
        Some((name, subscribers.len()))
    }

    /// Whether `conn` is subscribed to `topic` of `app`.
    pub(super) fn is_subscribed(&self, app: AppId, conn: ConnId, topic: &str) -> bool {
        self.slots
            .get(usize::from(app.0))
            .and_then(|slot| slot.subscribed.get(&conn))
            .is_some_and(|topics| topics.iter().any(|t| &**t == topic))
    }

    /// Forgets every subscription of `conn`.
    pub(super) fn unsubscribe_all(&mut self, app: AppId, conn: ConnId) {
        let Some(slot) = self.slot(app) else {
            return;
        };
        for topic in slot.subscribed.remove(&conn).unwrap_or_default() {
            drop_subscriber(&mut slot.topics, &topic, conn);
        }
    }
}

/// Removes `conn` from `topic`'s subscribers (O(subscribers); order is not kept), and the
/// topic once empty.
fn drop_subscriber(topics: &mut HashMap<Topic, Vec<ConnId>>, topic: &str, conn: ConnId) {
    if let Some(subscribers) = topics.get_mut(topic) {
        if let Some(at) = subscribers.iter().position(|c| *c == conn) {
            subscribers.swap_remove(at);
        }
        if subscribers.is_empty() {
            topics.remove(topic);
        }
    }
}

impl Server {
    /// Runs `call` with `app` taken out of its slot and a [`Ctx`] over the engine; then
    /// tells apps about the closes it caused. Does nothing if the app is already in a call.
    pub(super) fn with_app(
        &mut self,
        app: AppId,
        current: Option<ConnId>,
        now: Instant,
        call: impl FnOnce(&mut dyn App, &mut Ctx<'_>),
    ) {
        let Some(mut taken) = self.apps.slot(app).and_then(|slot| slot.app.take()) else {
            return;
        };
        let mut ctx = Ctx {
            server: self,
            app,
            current,
            failing: false,
            now,
        };
        // A panic in the app still puts it back; the loop's safety net then closes the
        // connection being served (see `isolation`).
        let result = panic::catch_unwind(AssertUnwindSafe(|| call(taken.as_mut(), &mut ctx)));
        if let Some(slot) = self.apps.slot(app) {
            slot.app = Some(taken);
        }
        // The batch of shared frames compressed during the call (prepared messages).
        self.deflate_cache.clear();
        if let Err(panic) = result {
            self.tell_panicked(app);
            panic::resume_unwind(panic);
        }
        self.tell_closes(now);
    }

    /// Calls `on_close` for every close waiting to be told (they may cause more).
    #[inline]
    pub(super) fn tell_closes(&mut self, now: Instant) {
        if self.apps.closing.is_empty() {
            return; // the common case, after every message an app handles
        }
        self.tell_queued_closes(now);
    }

    /// [`Server::tell_closes`] once there is something to tell. A call made while closes
    /// are being told (from an `on_closes` that closed more) returns at once: the running
    /// loop tells those in its next batch.
    fn tell_queued_closes(&mut self, now: Instant) {
        if std::mem::replace(&mut self.apps.telling, true) {
            return;
        }
        let told = panic::catch_unwind(AssertUnwindSafe(|| self.tell_batches(now)));
        self.apps.telling = false;
        if let Err(panic) = told {
            panic::resume_unwind(panic);
        }
    }

    /// Tells the queued closes, each app every close of its own queued so far in one
    /// [`App::on_closes`], until none is left (a wave's closes queue the next wave).
    fn tell_batches(&mut self, now: Instant) {
        while let Some(&(app, ..)) = self.apps.closing.front() {
            let busy = self.apps.slot(app).is_some_and(|slot| slot.app.is_none());
            if busy {
                // Inside that app's own call: told when the call returns.
                return;
            }
            let batch = self.apps.take_closes_of(app);
            let closed: Vec<Closed<'_>> = batch
                .iter()
                .map(|(conn, code, reason)| Closed {
                    conn: *conn,
                    code: *code,
                    reason,
                })
                .collect();
            // A bug in `on_closes` concerns connections already closing: it is caught
            // here, not blamed on the connection whose work caused the closes.
            let told = panic::catch_unwind(AssertUnwindSafe(|| {
                self.with_app(app, None, now, |a, ctx| a.on_closes(ctx, &closed));
            }));
            if let Err(payload) = told {
                self.contain_close_panic(&*payload);
            }
        }
    }

    /// Runs `work`, which may close many connections (a shutdown), then tells each app
    /// its closes together, in one [`App::on_closes`].
    pub(super) fn closes_together(&mut self, now: Instant, work: impl FnOnce(&mut Self)) {
        let outer = std::mem::replace(&mut self.apps.telling, true);
        let done = panic::catch_unwind(AssertUnwindSafe(|| work(self)));
        self.apps.telling = outer;
        if let Err(panic) = done {
            panic::resume_unwind(panic);
        }
        self.tell_closes(now);
    }

    /// Asks the app whether it takes this upgrade.
    pub(super) fn app_upgrade(
        &mut self,
        app: AppId,
        request: &Request<'_>,
    ) -> Result<(), super::app::Refusal> {
        let Some(slot) = self.apps.slot(app) else {
            return Ok(());
        };
        match slot.app.as_mut() {
            Some(app) => app.on_upgrade(request),
            None => Ok(()),
        }
    }

    /// Tells the app a connection opened.
    pub(super) fn app_open(&mut self, app: AppId, id: ConnId, request: &Request<'_>, now: Instant) {
        if let Some(conn) = conn_mut(&mut self.conns, id) {
            conn.app = Some(app);
        }
        self.with_app(app, Some(id), now, |a, ctx| a.on_open(ctx, id, request));
    }

    /// Hands the messages of one input to the connection's app, in order
    /// ([`App::on_messages`]), then tells it the run ended ([`App::on_run_end`]);
    /// `failing` when the connection failed on input read after them (their replies still
    /// go out, before the close frame). Stops if the connection closes meanwhile.
    ///
    /// The app is taken out of its slot once for the whole run, not once per message; a
    /// close a message causes is still told before the next message is handled (the run
    /// stops there, and the rest is handed over once the close is told).
    pub(super) fn app_messages(
        &mut self,
        app: AppId,
        id: ConnId,
        run: &mut Run<'_>,
        failing: bool,
        now: Instant,
    ) {
        let mut held = self.apps.slot(app).and_then(|slot| slot.app.take());
        if held.is_none() {
            return;
        }
        // One context for the whole run: the engine is lent once, not once per message.
        let mut ctx = Ctx {
            server: self,
            app,
            current: Some(id),
            failing,
            now,
        };
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            loop {
                // A connection that closes (or goes) queues its app's `on_close`, and
                // while this app is held that entry stays queued: an empty queue means
                // the connection is still this app's, with nothing to tell first.
                let server = &mut *ctx.server;
                if server.apps.closes_pending() {
                    if server.get(id).is_none_or(|c| c.app.is_none()) {
                        break; // closed while handling an earlier message
                    }
                    // Told between two messages, as they would be with a call per message.
                    if let Some(slot) = server.apps.slot(app) {
                        slot.app = held.take();
                    }
                    server.tell_closes(now);
                    held = server.apps.slot(app).and_then(|slot| slot.app.take());
                }
                let Some(taken) = held.as_mut() else {
                    break;
                };
                // Each call hands out at least one message before a new close stops it.
                run.resume(ctx.server.apps.closes_queued());
                taken.on_messages(&mut ctx, id, run);
                if !run.take_interrupted() {
                    // Done, or an override left the rest untaken.
                    break;
                }
            }
            if let Some(taken) = held.as_mut() {
                taken.on_run_end(&mut ctx, id);
            }
        }));
        // A panic still puts the app back; the loop's safety net then closes the
        // connection being served (see `isolation`).
        if let Some(slot) = self.apps.slot(app)
            && held.is_some()
        {
            slot.app = held;
        }
        self.deflate_cache.clear();
        if let Err(panic) = result {
            self.tell_panicked(app);
            panic::resume_unwind(panic);
        }
        self.tell_closes(now);
    }

    /// Tells `app` (back in its slot) that one of its callbacks panicked
    /// ([`App::on_panicked`]); a panic in that is logged, and the first one goes on.
    fn tell_panicked(&mut self, app: AppId) {
        let Some(taken) = self.apps.slot(app).and_then(|slot| slot.app.as_mut()) else {
            return;
        };
        if panic::catch_unwind(AssertUnwindSafe(|| taken.on_panicked())).is_err() {
            log::error!("an app's on_panicked panicked too");
        }
    }

    /// A timer of the connection's app is due.
    pub(super) fn app_timer(&mut self, id: ConnId, token: u64, now: Instant) {
        if let Some(app) = self.app_of(id) {
            self.with_app(app, None, now, |a, ctx| a.on_timer(ctx, id, token));
        }
    }

    /// The connection's buffer drained after backpressure.
    pub(super) fn app_drain(&mut self, id: ConnId, now: Instant) {
        if let Some(app) = self.app_of(id) {
            self.with_app(app, None, now, |a, ctx| a.on_drain(ctx, id));
        }
    }

    /// Calls `on_wake` on every app an [`AppWaker`] woke since the last time.
    pub(super) fn wake_apps(&mut self, now: Instant) {
        for index in 0..self.apps.slots.len() {
            if take_wake(&self.apps.slots[index].woken) {
                let app = AppId(u16::try_from(index).unwrap_or(u16::MAX));
                self.isolated_shared("app wake", |s| {
                    s.with_app(app, None, now, |a, ctx| a.on_wake(ctx))
                });
            }
        }
    }

    /// Calls `on_start` on every app, before the loop's first poll.
    pub(super) fn start_apps(&mut self, now: Instant) {
        for index in 0..self.apps.slots.len() {
            let app = AppId(u16::try_from(index).unwrap_or(u16::MAX));
            self.isolated_shared("app start", |s| {
                s.with_app(app, None, now, |a, ctx| a.on_start(ctx))
            });
        }
    }

    /// Calls `on_tick` for every app tick due at `now`.
    pub(super) fn fire_ticks(&mut self, now: Instant) {
        while let Some((app, token)) = self.timers.pop_due_tick(now) {
            self.settle_publications(None, false, now);
            self.isolated_shared("app tick", |s| {
                s.with_app(app, None, now, |a, ctx| a.on_tick(ctx, token))
            });
        }
    }

    /// Calls `on_shutdown` on every app, before the engine closes their connections.
    pub(super) fn shut_apps(&mut self, now: Instant) {
        for index in 0..self.apps.slots.len() {
            let app = AppId(u16::try_from(index).unwrap_or(u16::MAX));
            self.isolated_shared("app shutdown", |s| {
                s.with_app(app, None, now, |a, ctx| a.on_shutdown(ctx))
            });
        }
    }

    /// The app of an open connection that has not been told of its close.
    fn app_of(&self, id: ConnId) -> Option<AppId> {
        let conn = self.get(id)?;
        match &conn.phase {
            Phase::Open(_) => conn.app,
            _ => None,
        }
    }

    /// The connection is closing or gone: forget its subscriptions and queue its app's
    /// `on_close`.
    pub(super) fn leave_app(&mut self, id: ConnId, app: AppId, code: u16, reason: &str) {
        self.apps.unsubscribe_all(app, id);
        self.apps
            .closing
            .push_back((app, id, code, reason.to_owned()));
        self.apps.closes_queued += 1;
    }

    /// Tells a connection's app (once) that it closed with `code` and `reason`.
    pub(super) fn app_closed(&mut self, id: ConnId, code: u16, reason: &str, now: Instant) {
        let Some(app) = conn_mut(&mut self.conns, id).and_then(|conn| conn.app.take()) else {
            return;
        };
        self.leave_app(id, app, code, reason);
        self.tell_closes(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::app::Message;

    struct Nop;
    impl App for Nop {
        fn on_message(&mut self, _: &mut Ctx<'_>, _: ConnId, _: Message<'_>) {}
    }

    #[test]
    fn exact_routes_first_then_the_longest_prefix() {
        let mut apps = Apps::default();
        apps.route("/echo", Box::new(Nop));
        apps.route("/*", Box::new(Nop));
        apps.route("/rooms/*", Box::new(Nop));
        assert_eq!(apps.find("/echo"), Some(AppId(0)));
        assert_eq!(apps.find("/rooms/7"), Some(AppId(2)));
        assert_eq!(apps.find("/"), Some(AppId(1)));
        assert_eq!(apps.find("/echo/x"), Some(AppId(1)));
        apps.route_builtin(
            &[("/built-in", Exposure::Public)],
            Box::new(Nop),
            Arc::default(),
        );
        assert_eq!(
            apps.find("/built-in"),
            Some(AppId(1)),
            "an embedder's /* first"
        );
        let mut builtin = Apps::default();
        builtin.route_builtin(
            &[("/ws", Exposure::Public), ("/api/*", Exposure::Operator)],
            Box::new(Nop),
            Arc::default(),
        );
        assert_eq!(builtin.find("/ws"), Some(AppId(0)));
        assert_eq!(
            builtin.find_route("/api/x"),
            Some((AppId(0), Exposure::Operator))
        );
        assert_eq!(builtin.find("/api"), None);
        assert_eq!(builtin.find("/ws/x"), None);
        let mut none = Apps::default();
        none.route("/a", Box::new(Nop));
        assert_eq!(none.find("/b"), None);
        let mut shared = Apps::default();
        shared.route_paths(&["/ws", "/api/*"], Box::new(Nop));
        shared.route("/other", Box::new(Nop));
        assert_eq!(shared.find("/ws"), Some(AppId(0)));
        assert_eq!(shared.find("/api/rooms"), Some(AppId(0)));
        assert_eq!(shared.find("/other"), Some(AppId(1)));
        shared.mark_operator("/api/*");
        shared.mark_operator("/other");
        assert_eq!(shared.find_route("/ws"), Some((AppId(0), Exposure::Public)));
        assert_eq!(
            shared.find_route("/api/rooms"),
            Some((AppId(0), Exposure::Operator))
        );
        assert_eq!(
            shared.find_route("/other"),
            Some((AppId(1), Exposure::Operator))
        );
    }

    #[test]
    fn subscriptions_are_kept_both_ways_and_cleaned_up() {
        let mut apps = Apps::default();
        apps.route("/*", Box::new(Nop));
        let app = AppId(0);
        let (a, b) = (ConnId::new(1, 1), ConnId::new(2, 1));
        assert!(apps.subscribe(app, a, "t"));
        assert!(!apps.subscribe(app, a, "t"), "once");
        assert!(apps.subscribe(app, b, "t"));
        assert!(apps.subscribe(app, a, "u"));
        assert_eq!(apps.subscriber_count(app, "t"), 2);
        let taken = apps.take_subscribers(app, "t").expect("subscribers");
        assert_eq!(taken.len(), 2);
        apps.restore_subscribers(app, "t", taken);
        apps.unsubscribe_all(app, a);
        assert_eq!(apps.subscriber_count(app, "t"), 1);
        assert_eq!(apps.subscriber_count(app, "u"), 0);
        assert!(!apps.unsubscribe(app, a, "t"));
        assert!(apps.unsubscribe(app, b, "t"));
        assert!(apps.slots[0].topics.is_empty() && apps.slots[0].subscribed.is_empty());
    }
}
