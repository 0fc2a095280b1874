//! Whether the node can serve, as `GET /readyz` and the server API's `/api/info` both say:
//! draining, then each app's [`Health`] (the hub's says whether Redis is reached).

use super::app::Health;
use super::event_loop::Server;
use crate::protocol::http::Response;

/// The node's readiness, worst first: what `GET /readyz` answers ([`super::Ctx::readiness`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// A graceful shutdown has begun.
    Draining,
    /// Not serving yet: clients sent here would not be served in full.
    NotReady(String),
    /// Serving its own clients with less than the whole service.
    Degraded(String),
    /// Serving.
    Ready,
}

impl Readiness {
    /// Its name: `draining`, `not_ready`, `degraded` or `ready` (the hub's `/api/info`
    /// status).
    pub fn status(&self) -> &'static str {
        match self {
            Self::Draining => "draining",
            Self::NotReady(_) => "not_ready",
            Self::Degraded(_) => "degraded",
            Self::Ready => "ready",
        }
    }

    /// The `/readyz` answer: 503 with `Retry-After` takes the node out of a load
    /// balancer's pool; a degraded node stays in (200), as it still serves its clients.
    pub(super) fn response(&self) -> Response {
        match self {
            Self::Draining => Response::text(503, "draining").header("Retry-After", "5"),
            Self::NotReady(why) => {
                Response::text(503, &format!("not ready: {why}")).header("Retry-After", "5")
            }
            Self::Degraded(why) => Response::text(200, &format!("degraded: {why}")),
            Self::Ready => Response::text(200, "ready"),
        }
    }
}

impl From<Health> for Readiness {
    fn from(health: Health) -> Self {
        match health {
            Health::Ready => Self::Ready,
            Health::Degraded(why) => Self::Degraded(why),
            Health::NotReady(why) => Self::NotReady(why),
        }
    }
}

impl Readiness {
    /// This readiness, or `health` where that is worse (an app's own, asked while the
    /// engine could not ask it: it was being called).
    pub(super) fn with(self, health: Health) -> Self {
        match (self, Self::from(health)) {
            (Self::Ready, other) | (other @ Self::Draining, _) => other,
            (Self::Degraded(_), not_ready @ Self::NotReady(_)) => not_ready,
            (this, _) => this,
        }
    }
}

impl Server {
    /// The node's readiness now: draining, else the worst of the apps' health.
    pub(super) fn readiness(&self) -> Readiness {
        if self.drain_deadline.is_some() {
            Readiness::Draining
        } else {
            self.apps.health().into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worse_of_the_engine_and_an_app_wins() {
        let not_ready = || Health::NotReady("redis".into());
        let degraded = || Health::Degraded("redis".into());
        assert_eq!(Readiness::Ready.with(Health::Ready), Readiness::Ready);
        assert_eq!(
            Readiness::Ready.with(degraded()),
            Readiness::Degraded("redis".into())
        );
        assert_eq!(
            Readiness::Degraded("a".into()).with(not_ready()),
            Readiness::NotReady("redis".into())
        );
        assert_eq!(
            Readiness::Degraded("a".into()).with(degraded()),
            Readiness::Degraded("a".into())
        );
        assert_eq!(
            Readiness::NotReady("a".into()).with(degraded()),
            Readiness::NotReady("a".into())
        );
        assert_eq!(Readiness::Draining.with(not_ready()), Readiness::Draining);
    }
}
