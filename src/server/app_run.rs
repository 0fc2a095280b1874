//! [`Run`]: the messages one read brought for a connection, as [`super::App::on_messages`]
//! takes them.

use super::app::Message;
use super::app_ctx::Ctx;
use super::frames::{AppInput, AppMessage};

/// The data messages one read of a connection brought, in order, up to a control frame or
/// the end of the input ([`super::App::on_messages`] takes them with [`Run::next`]).
///
/// Handing a run over with one call, rather than each message with its own, lets the
/// default [`super::App::on_messages`] call the app's own `on_message` directly (it is
/// compiled for each app): a busy connection costs one dynamic call per read, not one per
/// message (`/echo`: 568 → 552 instructions per round trip at D=16 under
/// `benches/callgrind.sh`).
pub struct Run<'a> {
    /// The messages, as the frame loop found them.
    found: &'a AppInput,
    /// The input they were read from (binary messages not copied are slices of it).
    input: &'a [u8],
    /// The next message to hand out.
    next: usize,
    /// [`Run::next`] stopped to let closes be told, with messages left.
    interrupted: bool,
    /// The engine's count of closes queued when the app was (again) handed the run.
    closes_seen: u64,
}

impl<'a> Run<'a> {
    /// The run of `found`, whose uncopied binary messages are slices of `input`.
    pub(super) fn new(found: &'a AppInput, input: &'a [u8]) -> Self {
        Self {
            found,
            input,
            next: 0,
            interrupted: false,
            closes_seen: 0,
        }
    }

    /// The next message; `None` at the end of the run, or when a connection has closed
    /// meanwhile (a close an earlier message caused, say). The engine then tells the
    /// closes ([`super::App::on_closes`]) and, if this connection is still open, calls
    /// `on_messages` again with the rest, so a close is told before the next message is
    /// handled, as it would be with a call per message.
    #[inline(always)]
    pub fn next(&mut self, ctx: &Ctx<'_>) -> Option<Message<'a>> {
        let message = *self.found.batch.get(self.next)?;
        if ctx.closes_queued() != self.closes_seen {
            self.interrupted = true;
            return None;
        }
        self.next += 1;
        let (found, input) = (self.found, self.input);
        Some(match message {
            AppMessage::Text(from, to) => Message::Text(&found.text[from..to]),
            AppMessage::BinaryInInput(from, to) => Message::Binary(&input[from..to]),
            AppMessage::BinaryCopied(from, to) => Message::Binary(&found.binary[from..to]),
        })
    }

    /// Hands the rest of the run to the app (again), `closes` closes having been queued
    /// so far.
    pub(super) fn resume(&mut self, closes: u64) {
        self.closes_seen = closes;
    }

    /// Whether [`Run::next`] stopped to let closes be told (and the app should be handed
    /// the rest once they are); clears it.
    pub(super) fn take_interrupted(&mut self) -> bool {
        std::mem::take(&mut self.interrupted)
    }
}
