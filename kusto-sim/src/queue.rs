//! Azure Queue Storage over plain REST, for queued ingestion: create a queue, put, receive
//! and delete messages. Every request is authorized by an account SAS made from the
//! configured key, as the data-management service holds its own queues.

use crate::blob::{account_sas_for, encode, send_with_retry, xml_field};
use crate::config::StorageAccount;
use crate::error::SimError;

const API_VERSION: &str = "2021-12-02";
/// The most messages one Get Messages call returns (the service's limit).
const MAX_BATCH: usize = 32;
/// Long enough that one consumer pass never sees its own messages again before deleting them.
const VISIBILITY_SECONDS: u32 = 300;
/// How long the SAS handed to clients in `.get ingestion resources` stays valid; SDKs
/// refresh resources every hour.
const CLIENT_SAS_SECONDS: i64 = 6 * 3600;

/// One received message: its text as stored (SDKs store base64) and what deletes it.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    pub id: String,
    pub pop_receipt: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct QueueClient {
    http: reqwest::Client,
    account: StorageAccount,
    endpoint: String,
}

impl QueueClient {
    /// A client for the queue service of `account`; `None` when it has no queue endpoint.
    pub fn new(account: &StorageAccount) -> Option<Self> {
        let endpoint = account.queue_endpoint.as_ref()?.trim_end_matches('/');
        Some(Self {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
            account: account.clone(),
        })
    }

    /// `queue`'s URL with a SAS a client can use to add, read and delete messages.
    pub fn client_url(&self, queue: &str) -> Result<String, SimError> {
        let sas = account_sas_for(&self.account, "q", CLIENT_SAS_SECONDS)?;
        Ok(format!("{}/{queue}?{sas}", self.endpoint))
    }

    fn url(&self, path: &str, query: &str) -> Result<String, SimError> {
        let sas = account_sas_for(&self.account, "q", 3600)?;
        let sep = if query.is_empty() { "" } else { "&" };
        Ok(format!("{}/{path}?{query}{sep}{sas}", self.endpoint))
    }

    /// Creates `queue`; an existing one is fine.
    pub async fn create(&self, queue: &str) -> Result<(), SimError> {
        let url = self.url(queue, "")?;
        let resp = send_with_retry(queue, || {
            self.http
                .put(url.as_str())
                .header("x-ms-version", API_VERSION)
                .header("Content-Length", "0")
        })
        .await;
        check(resp, queue).await.map(|_| ())
    }

    /// Appends a message whose stored text is `text` (the caller encodes it).
    pub async fn put(&self, queue: &str, text: &str) -> Result<(), SimError> {
        let url = self.url(&format!("{queue}/messages"), "")?;
        let body = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            xml_escape(text)
        );
        let resp = send_with_retry(queue, || {
            self.http
                .post(url.as_str())
                .header("x-ms-version", API_VERSION)
                .body(body.clone())
        })
        .await;
        check(resp, queue).await.map(|_| ())
    }

    /// Receives every message now visible in `queue`, hiding each from other readers until
    /// it is deleted (or the visibility timeout passes).
    pub async fn receive_all(&self, queue: &str) -> Result<Vec<ReceivedMessage>, SimError> {
        let mut out = Vec::new();
        loop {
            let query = format!("numofmessages={MAX_BATCH}&visibilitytimeout={VISIBILITY_SECONDS}");
            let url = self.url(&format!("{queue}/messages"), &query)?;
            let resp = send_with_retry(queue, || {
                self.http
                    .get(url.as_str())
                    .header("x-ms-version", API_VERSION)
            })
            .await;
            let body = check(resp, queue)
                .await?
                .text()
                .await
                .map_err(|e| SimError::Storage(format!("reading queue '{queue}': {e}")))?;
            let batch = parse_messages(&body);
            let done = batch.len() < MAX_BATCH;
            out.extend(batch);
            if done {
                return Ok(out);
            }
        }
    }

    pub async fn delete(&self, queue: &str, message: &ReceivedMessage) -> Result<(), SimError> {
        let query = format!("popreceipt={}", encode(&message.pop_receipt));
        let url = self.url(&format!("{queue}/messages/{}", message.id), &query)?;
        let resp = send_with_retry(queue, || {
            self.http
                .delete(url.as_str())
                .header("x-ms-version", API_VERSION)
        })
        .await;
        check(resp, queue).await.map(|_| ())
    }
}

fn parse_messages(body: &str) -> Vec<ReceivedMessage> {
    body.split("<QueueMessage>")
        .skip(1)
        .filter_map(|m| {
            Some(ReceivedMessage {
                id: xml_field(m, "MessageId")?,
                pop_receipt: xml_field(m, "PopReceipt")?,
                text: xml_field(m, "MessageText").unwrap_or_default(),
            })
        })
        .collect()
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn check(
    resp: Result<reqwest::Response, reqwest::Error>,
    queue: &str,
) -> Result<reqwest::Response, SimError> {
    let resp = resp.map_err(|e| SimError::Storage(format!("queue '{queue}': {e}")))?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let code = xml_field(&body, "Code").unwrap_or_default();
    Err(SimError::Storage(format!(
        "queue '{queue}' answered {status} {code}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_messages_answers_are_read_with_their_receipts() {
        let body = "<?xml version=\"1.0\"?><QueueMessagesList><QueueMessage><MessageId>m1</MessageId><InsertionTime>x</InsertionTime><PopReceipt>r/1+</PopReceipt><DequeueCount>1</DequeueCount><MessageText>YWJj</MessageText></QueueMessage><QueueMessage><MessageId>m2</MessageId><PopReceipt>r2</PopReceipt><MessageText>a&amp;b</MessageText></QueueMessage></QueueMessagesList>";
        let got = parse_messages(body);
        assert_eq!(got.len(), 2);
        assert_eq!(
            (got[0].id.as_str(), got[0].pop_receipt.as_str()),
            ("m1", "r/1+")
        );
        assert_eq!(
            (got[0].text.as_str(), got[1].text.as_str()),
            ("YWJj", "a&b")
        );
        assert!(parse_messages("<QueueMessagesList />").is_empty());
    }
}
