//! A gorilla-style chat hub, the pattern wsloop's hub replaces, as the fan-out baseline:
//! one task per socket reading, one writer task per client fed by a bounded channel (256
//! messages, as in gorilla/websocket's chat example), and one hub task that owns the rooms
//! and hands each message to every member's channel. Like gorilla's `writePump`, a writer
//! sends one message and then whatever else is already queued before flushing once, so the
//! baseline batches as much as that design allows; like gorilla's hub, a client whose
//! channel is full is dropped. All of it runs on a tokio current-thread runtime (one core,
//! like wsloop's one loop).
//!
//! It speaks just enough of wsloop's `/ws` protocol for `wsloop bench fanout`: `join` gets
//! a `joined` ack, and a room `chat` is delivered to the room's members as
//! `{"type":"chat","room":…,"sender_id":…,"timestamp":…,"payload":…}` (the payload last,
//! where the bench reads it). Anything else is ignored.
//!
//! Usage: `gorilla-hub [ADDR]` (default `127.0.0.1:9001`); any path is accepted.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Messages queued per client before the hub drops it (gorilla's chat example: 256).
const SEND_BUFFER: usize = 256;

/// What a client task asks of the hub.
enum Command {
    Join {
        room: String,
        client: u64,
        send: mpsc::Sender<Utf8Bytes>,
    },
    Publish {
        room: String,
        client: u64,
        payload: Box<RawValue>,
    },
    Leave {
        client: u64,
    },
}

/// A client request; only the fields the bench sends.
#[derive(Deserialize)]
struct Request {
    #[serde(rename = "type")]
    kind: String,
    room: Option<String>,
    payload: Option<Box<RawValue>>,
}

fn main() -> std::io::Result<()> {
    wsloop_peers::serve("gorilla-hub", || {
        let (hub_tx, hub_rx) = mpsc::unbounded_channel();
        tokio::spawn(hub(hub_rx));
        let mut next_client = 0;
        move |stream| {
            next_client += 1;
            client(stream, next_client, hub_tx.clone())
        }
    })
}

/// The hub task: owns the rooms, serializes each message once, queues it to every member.
async fn hub(mut commands: mpsc::UnboundedReceiver<Command>) {
    let mut rooms: HashMap<String, Vec<(u64, mpsc::Sender<Utf8Bytes>)>> = HashMap::new();
    while let Some(command) = commands.recv().await {
        match command {
            Command::Join { room, client, send } => {
                let members = rooms.entry(room.clone()).or_default();
                members.push((client, send.clone()));
                let ack = format!(
                    r#"{{"type":"joined","room":{},"members":{}}}"#,
                    json_string(&room),
                    members.len()
                );
                let _ = send.try_send(ack.into());
            }
            Command::Publish {
                room,
                client,
                payload,
            } => {
                let Some(members) = rooms.get_mut(&room) else {
                    continue;
                };
                let millis = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis());
                let text: Utf8Bytes = format!(
                    r#"{{"type":"chat","room":{},"sender_id":"{client}","timestamp":"{millis}","payload":{}}}"#,
                    json_string(&room),
                    payload.get()
                )
                .into();
                members.retain(|(_, send)| send.try_send(text.clone()).is_ok());
            }
            Command::Leave { client } => {
                for members in rooms.values_mut() {
                    members.retain(|(id, _)| *id != client);
                }
                rooms.retain(|_, members| !members.is_empty());
            }
        }
    }
}

/// One connection: this task reads (gorilla's `readPump`), a spawned one writes.
async fn client(stream: TcpStream, id: u64, hub: mpsc::UnboundedSender<Command>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let (mut write, mut read) = ws.split();
    let (send, mut queue) = mpsc::channel::<Utf8Bytes>(SEND_BUFFER);
    let writer = tokio::spawn(async move {
        // gorilla's `writePump`: one message, then everything already queued, one flush.
        while let Some(text) = queue.recv().await {
            if write.feed(Message::Text(text)).await.is_err() {
                return;
            }
            while let Ok(text) = queue.try_recv() {
                if write.feed(Message::Text(text)).await.is_err() {
                    return;
                }
            }
            if write.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(message)) = read.next().await {
        let Message::Text(text) = message else {
            if message.is_close() {
                break;
            }
            continue;
        };
        let Ok(request) = serde_json::from_str::<Request>(&text) else {
            continue;
        };
        let command = match (request.kind.as_str(), request.room, request.payload) {
            ("join", Some(room), _) => Command::Join {
                room,
                client: id,
                send: send.clone(),
            },
            ("chat", Some(room), Some(payload)) => Command::Publish {
                room,
                client: id,
                payload,
            },
            _ => continue,
        };
        if hub.send(command).is_err() {
            break;
        }
    }
    let _ = hub.send(Command::Leave { client: id });
    writer.abort();
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
