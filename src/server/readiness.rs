//! Whether the node can serve, as `GET /readyz` and the server API's `/api/info` both say:
//! draining, the cluster's state, then each app's [`Health`].

use super::app::Health;
use super::event_loop::Server;
use crate::cluster::WhenDown;
use crate::protocol::http::Response;

/// The node's readiness, worst first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Readiness {
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
    /// The name `/api/info` gives it.
    pub(super) fn status(&self) -> &'static str {
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

impl Server {
    /// The node's readiness now.
    pub(super) fn readiness(&self) -> Readiness {
        if self.drain_deadline.is_some() {
            Readiness::Draining
        } else if self.cluster_never_up() {
            // Clients sent here could not reach the rest of the cluster.
            Readiness::NotReady("redis not reached yet".to_owned())
        } else if self.degraded() {
            let local = self
                .cluster
                .as_ref()
                .is_some_and(|c| c.when_down() == WhenDown::Local);
            Readiness::Degraded(
                if local {
                    "redis unavailable, serving local clients only"
                } else {
                    "redis unavailable, refusing new messages"
                }
                .to_owned(),
            )
        } else {
            self.apps.health().into()
        }
    }
}
