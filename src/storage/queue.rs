//! A storage queue carrying task messages, written so the Functions queue trigger can read them.
//!
//! Wire format: the Functions host (`messageEncoding: base64`, its default) base64-decodes
//! every message it triggers on, while the SDK sends text verbatim. So [`TaskQueue::send`]
//! base64-encodes (standard alphabet, padded) and [`TaskQueue::receive`] decodes. A message that
//! does not decode is handed back as [`UndecodableMessage`] instead of failing the batch, so the
//! caller can move it to the poison queue (`<queue>-poison`, the host's convention).
//!
//! Delivery is at least once: a retried send may enqueue twice, and every task is safe to run
//! twice. Messages never expire: a task that silently disappears after the default 7 days
//! would leave its job stuck forever.

use std::sync::Arc;
use std::time::Duration;

use azure_core::http::headers::HeaderName;
use azure_storage_queue::models::{
    QueueClientGetPropertiesResultHeaders, QueueClientPeekMessagesOptions,
    QueueClientReceiveMessagesOptions, QueueClientSendMessageOptions, QueueMessage,
    ReceivedMessage as SdkMessage, SentMessage,
};
use azure_storage_queue::{QueueClient, QueueClientOptions};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use time::OffsetDateTime;

use crate::retry::RetryPolicy;
use crate::settings::StorageSettings;

use super::auth::{Service, ServiceAccess};
use super::error::{ATTEMPT_TIMEOUT, StorageError, error_code};

/// The service's limit on a message as sent (after base64): 64 KiB.
const MAX_ENCODED_LEN: usize = 64 * 1024;
/// The longest visibility timeout the service accepts.
const MAX_VISIBILITY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most messages one receive may return.
pub const MAX_RECEIVE: u32 = 32;
/// `messagettl=-1`: the message never expires.
const NEVER_EXPIRE: i32 = -1;

/// A received message. Delete it with `id` + `pop_receipt` once handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub id: String,
    pub pop_receipt: String,
    /// How many times the message has been received, this time included.
    pub dequeue_count: u32,
    pub inserted_at: Option<OffsetDateTime>,
    /// The decoded text, or why it could not be decoded.
    pub text: Result<String, UndecodableMessage>,
}

/// A message whose text is not base64 of UTF-8, e.g. written by hand or by a misconfigured
/// sender. Nothing retrying it can fix; it belongs in the poison queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue message {id} is not base64-encoded UTF-8 ({reason}); move it to the poison queue")]
pub struct UndecodableMessage {
    pub id: String,
    /// The text exactly as stored in the queue.
    pub raw: String,
    pub reason: &'static str,
}

/// One queue of the backup account. Cheap to clone.
#[derive(Clone)]
pub struct TaskQueue {
    client: Arc<QueueClient>,
    access: ServiceAccess,
    name: String,
    retry: RetryPolicy,
}

impl TaskQueue {
    /// The internal task queue from the settings. Builds the client without network I/O.
    pub fn new(settings: &StorageSettings, retry: RetryPolicy) -> Result<Self, StorageError> {
        Self::named(settings, &settings.task_queue, retry)
    }

    /// Any queue of the backup account.
    pub fn named(
        settings: &StorageSettings,
        name: &str,
        retry: RetryPolicy,
    ) -> Result<Self, StorageError> {
        let access =
            ServiceAccess::new(&settings.queue_service_uri, &settings.auth, Service::Queue)?;
        Self::with_access(access, name, retry)
    }

    /// A queue given as a URL carrying its own SAS, e.g. a cluster's ingestion queue.
    pub fn from_sas_url(url: &url::Url, retry: RetryPolicy) -> Result<Self, StorageError> {
        let (access, name) = ServiceAccess::from_sas_url(url).ok_or_else(|| {
            let mut shown = url.clone();
            shown.set_query(None);
            StorageError::refused(
                "connect",
                shown.as_str(),
                "not a queue URL".to_owned(),
                "expected https://<account>.queue.core.windows.net/<queue>?<sas>",
            )
        })?;
        Self::with_access(access, &name, retry)
    }

    fn with_access(
        access: ServiceAccess,
        name: &str,
        retry: RetryPolicy,
    ) -> Result<Self, StorageError> {
        let mut options = QueueClientOptions {
            client_options: access.client_options()?,
            ..Default::default()
        };
        if let Some(version) = access.api_version() {
            options.version = version;
        }
        let client = QueueClient::new(
            access.resource_url(name),
            access.credential(),
            Some(options),
        )
        .map_err(|e| StorageError::from_sdk("connect", &access.display_url(name), &e))?;
        tracing::debug!(
            queue = %access.display_url(name),
            auth = access.mode(),
            "queue configured"
        );
        Ok(Self {
            client: Arc::new(client),
            access,
            name: name.to_owned(),
            retry,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<queue>-poison`, where the Functions host moves messages that failed too often.
    pub fn poison_queue_name(&self) -> String {
        format!("{}-poison", self.name)
    }

    /// This queue's poison queue, with the same credentials.
    pub fn poison_queue(&self) -> Result<Self, StorageError> {
        Self::with_access(self.access.clone(), &self.poison_queue_name(), self.retry)
    }

    /// Creates the queue if it does not exist yet; safe to call on every start.
    pub async fn ensure_exists(&self) -> Result<(), StorageError> {
        let target = self.target();
        self.retry
            .run_bounded(
                "queue.create",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.create", &target),
                || async {
                    match self.client.create(None).await {
                        Ok(_) => Ok(()),
                        Err(e) if error_code(&e) == Some("QueueAlreadyExists") => Ok(()),
                        Err(e) => Err(StorageError::from_sdk("queue.create", &target, &e)),
                    }
                },
            )
            .await
    }

    /// Deletes the queue and its messages; missing is fine.
    pub async fn delete_queue(&self) -> Result<(), StorageError> {
        let target = self.target();
        self.retry
            .run_bounded(
                "queue.delete",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.delete", &target),
                || async {
                    match self.client.delete(None).await {
                        Ok(_) => Ok(()),
                        Err(e) if error_code(&e) == Some("QueueNotFound") => Ok(()),
                        Err(e) => Err(StorageError::from_sdk("queue.delete", &target, &e)),
                    }
                },
            )
            .await
    }

    /// Enqueues `text` base64-encoded, invisible for `visible_after` (rounded up to whole
    /// seconds, at most 7 days). Returns the message id.
    pub async fn send(
        &self,
        text: &str,
        visible_after: Option<Duration>,
    ) -> Result<String, StorageError> {
        let target = self.target();
        let encoded = STANDARD.encode(text);
        if encoded.len() > MAX_ENCODED_LEN {
            let reason = format!(
                "message of {} bytes is {} bytes base64-encoded, over the 64 KiB limit",
                text.len(),
                encoded.len()
            );
            let hint = "keep task messages small: put bulky data in a blob and send its path";
            return Err(StorageError::refused("queue.send", &target, reason, hint));
        }
        let visibility = visible_after.map(|d| whole_seconds(d.min(MAX_VISIBILITY)));
        let sent = self
            .retry
            .run_bounded(
                "queue.send",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.send", &target),
                || self.send_once(&encoded, visibility, NEVER_EXPIRE, &target),
            )
            .await?;
        message_id(sent, &target)
    }

    /// Sends `text` hidden for `hidden_for` and expiring a second later, so a receiver
    /// (almost) never sees it even if it is never deleted; returns its id and pop receipt,
    /// which delete it. `check` measures the app's rights with it; a message a retry sent
    /// twice expires unseen like the first.
    pub async fn send_unseen(
        &self,
        text: &str,
        hidden_for: Duration,
    ) -> Result<(String, String), StorageError> {
        let target = self.target();
        let encoded = STANDARD.encode(text);
        let hidden = whole_seconds(hidden_for.min(MAX_VISIBILITY));
        // The service wants the visibility timeout below the time to live.
        let sent = self
            .retry
            .run_bounded(
                "queue.send",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.send", &target),
                || self.send_once(&encoded, Some(hidden), hidden + 1, &target),
            )
            .await?;
        let receipt = sent.pop_receipt.clone().ok_or_else(|| {
            StorageError::bad_answer("queue.send", &target, "no pop receipt in the answer")
        })?;
        Ok((message_id(sent, &target)?, receipt))
    }

    /// How many of up to `max` visible messages a peek returns, leaving them where they
    /// are (`check` only needs to know the app may read the queue).
    pub async fn peek(&self, max: u32) -> Result<usize, StorageError> {
        let target = self.target();
        let options = QueueClientPeekMessagesOptions {
            number_of_messages: Some(max.clamp(1, MAX_RECEIVE) as i32),
            ..Default::default()
        };
        self.retry
            .run_bounded(
                "queue.peek",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.peek", &target),
                || async {
                    let peeked = self
                        .client
                        .peek_messages(Some(options.clone()))
                        .await
                        .and_then(|r| r.into_model())
                        .map_err(|e| StorageError::from_sdk("queue.peek", &target, &e))?;
                    Ok(peeked.items.map_or(0, |items| items.len()))
                },
            )
            .await
    }

    /// Receives up to `max` (1..=32) messages, hiding them for `visibility_timeout`.
    pub async fn receive(
        &self,
        max: u32,
        visibility_timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, StorageError> {
        let target = self.target();
        let options = QueueClientReceiveMessagesOptions {
            number_of_messages: Some(max.clamp(1, MAX_RECEIVE) as i32),
            visibility_timeout: Some(whole_seconds(visibility_timeout.min(MAX_VISIBILITY)).max(1)),
            ..Default::default()
        };
        self.retry
            .run_bounded(
                "queue.receive",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.receive", &target),
                || async {
                    let received = self
                        .client
                        .receive_messages(Some(options.clone()))
                        .await
                        .and_then(|r| r.into_model())
                        .map_err(|e| StorageError::from_sdk("queue.receive", &target, &e))?;
                    let items = received.items.unwrap_or_default();
                    items.into_iter().map(|m| decode(m, &target)).collect()
                },
            )
            .await
    }

    /// Deletes a handled message. Already gone is fine; [`StorageError::Conflict`] means
    /// another receiver holds it now (our visibility timeout had expired).
    pub async fn delete(&self, id: &str, pop_receipt: &str) -> Result<(), StorageError> {
        let target = self.message_target(id);
        let deleted = self
            .retry
            .run_bounded(
                "queue.delete_message",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.delete_message", &target),
                || async {
                    self.client
                        .delete_message(id, pop_receipt, None)
                        .await
                        .map(|_| ())
                        .map_err(|e| StorageError::from_sdk("queue.delete_message", &target, &e))
                },
            )
            .await;
        match deleted {
            Err(StorageError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    /// Hides a received message for `visibility` from now (0 makes it visible at once) and
    /// returns the new pop receipt, which replaces the old one.
    pub async fn update_visibility(
        &self,
        id: &str,
        pop_receipt: &str,
        visibility: Duration,
    ) -> Result<String, StorageError> {
        let target = self.message_target(id);
        let seconds = whole_seconds(visibility.min(MAX_VISIBILITY));
        self.retry
            .run_bounded(
                "queue.update_message",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.update_message", &target),
                || async {
                    let updated = self
                        .client
                        .update_message(id, pop_receipt, seconds, None)
                        .await
                        .map_err(|e| StorageError::from_sdk("queue.update_message", &target, &e))?;
                    updated
                        .headers()
                        .get_optional_string(&HeaderName::from_static("x-ms-popreceipt"))
                        .ok_or_else(|| {
                            StorageError::bad_answer(
                                "queue.update_message",
                                &target,
                                "no x-ms-popreceipt header",
                            )
                        })
                },
            )
            .await
    }

    /// The service's estimate of the queue's length (never lower than the truth).
    pub async fn approximate_count(&self) -> Result<u64, StorageError> {
        let target = self.target();
        self.retry
            .run_bounded(
                "queue.properties",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("queue.properties", &target),
                || async {
                    let properties = self
                        .client
                        .get_properties(None)
                        .await
                        .map_err(|e| StorageError::from_sdk("queue.properties", &target, &e))?;
                    let count = properties
                        .approximate_messages_count()
                        .map_err(|e| StorageError::from_sdk("queue.properties", &target, &e))?;
                    count.and_then(|c| u64::try_from(c).ok()).ok_or_else(|| {
                        StorageError::bad_answer("queue.properties", &target, "no message count")
                    })
                },
            )
            .await
    }

    fn target(&self) -> String {
        format!("queue {}", self.name)
    }

    fn message_target(&self, id: &str) -> String {
        format!("message {id} in queue {}", self.name)
    }

    async fn send_once(
        &self,
        encoded: &str,
        visibility: Option<i32>,
        time_to_live: i32,
        target: &str,
    ) -> Result<SentMessage, StorageError> {
        let message = QueueMessage {
            message_text: Some(encoded.to_owned()),
        };
        let content = message
            .try_into()
            .map_err(|e| StorageError::from_sdk("queue.send", target, &e))?;
        let options = QueueClientSendMessageOptions {
            visibility_timeout: visibility,
            message_time_to_live: Some(time_to_live),
            ..Default::default()
        };
        self.client
            .send_message(content, Some(options))
            .await
            .and_then(|r| r.into_model())
            .and_then(|list| list.into_message())
            .map_err(|e| StorageError::from_sdk("queue.send", target, &e))
    }
}

fn message_id(sent: SentMessage, target: &str) -> Result<String, StorageError> {
    sent.message_id.ok_or_else(|| {
        StorageError::bad_answer("queue.send", target, "no message id in the answer")
    })
}

/// Whole seconds, rounded up so a delay is never shorter than asked.
fn whole_seconds(duration: Duration) -> i32 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn decode(message: SdkMessage, target: &str) -> Result<ReceivedMessage, StorageError> {
    let missing = |what: &str| {
        StorageError::bad_answer(
            "queue.receive",
            target,
            format!("a received message has no {what}"),
        )
    };
    let id = message.message_id.ok_or_else(|| missing("id"))?;
    let raw = message.message_text.unwrap_or_default();
    Ok(ReceivedMessage {
        pop_receipt: message.pop_receipt.ok_or_else(|| missing("pop receipt"))?,
        dequeue_count: message
            .dequeue_count
            .and_then(|c| u32::try_from(c).ok())
            .ok_or_else(|| missing("dequeue count"))?,
        inserted_at: message.insertion_time,
        text: decode_text(&id, raw),
        id,
    })
}

/// Decodes like the Functions host: standard base64, then UTF-8.
fn decode_text(id: &str, raw: String) -> Result<String, UndecodableMessage> {
    let undecodable = |raw: String, reason| UndecodableMessage {
        id: id.to_owned(),
        raw,
        reason,
    };
    let Ok(bytes) = STANDARD.decode(raw.trim()) else {
        return Err(undecodable(raw, "not base64"));
    };
    String::from_utf8(bytes).map_err(|_| undecodable(raw, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_through_base64() {
        let text = r#"{"type":"ExportBatchV1","table":"Événements ✓"}"#;
        let encoded = STANDARD.encode(text);
        assert_eq!(decode_text("m", encoded), Ok(text.to_owned()));
    }

    #[test]
    fn undecodable_text_is_flagged_not_fatal() {
        let not_b64 = decode_text("m1", "{\"raw\":true}".into()).expect_err("not base64");
        assert_eq!(not_b64.reason, "not base64");
        assert_eq!(not_b64.raw, "{\"raw\":true}");
        let not_utf8 = decode_text("m2", STANDARD.encode([0xff, 0xfe])).expect_err("not utf-8");
        assert_eq!(not_utf8.reason, "not UTF-8");
    }

    #[test]
    fn delays_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(30)), 30);
        assert_eq!(whole_seconds(Duration::from_millis(30_001)), 31);
    }
}
