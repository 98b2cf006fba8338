//! Delivering alert notifications: webhooks (a JSON POST signed with HMAC-SHA256) and email
//! through an SMTP relay. Delivery is at least once: the outbox row is settled after the
//! attempt, and a failed attempt is retried with exponential backoff.

use std::time::Duration;

use cairn_domain::monitoring::AlertRoute;
use cairn_store::Notification;
use hmac::{Hmac, Mac};
use lettre::message::Mailbox;
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};
use sha2::Sha256;

/// An SMTP relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name or address.
    pub host: String,
    /// Port (25 or 587 typically; plain SMTP, no TLS).
    pub port: u16,
    /// The sender address.
    pub from: String,
}

/// Signing, relay and retry settings.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The key webhook bodies are signed with (`X-Cairn-Signature: sha256=<hex>`); unsigned
    /// when absent.
    pub signing_key: Option<String>,
    /// The SMTP relay for email routes; email routes fail (and are retried) without one.
    pub smtp: Option<SmtpConfig>,
    /// The first retry's delay; each later one doubles it, up to an hour.
    pub retry_base: Duration,
    /// Attempts before a notification is marked failed.
    pub max_attempts: u32,
    /// Time allowed per webhook call.
    pub timeout: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            signing_key: None,
            smtp: None,
            retry_base: Duration::from_secs(10),
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

impl NotifyConfig {
    /// The delay before retrying after `attempts` attempts, in milliseconds.
    pub fn backoff(&self, attempts: u32) -> i64 {
        let base = self.retry_base.as_millis() as i64;
        let factor = 1_i64 << attempts.saturating_sub(1).min(20);
        base.saturating_mul(factor).min(3_600_000)
    }
}

/// The signature header's value for `body` under `key`.
pub fn signature(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Clone)]
pub(crate) struct Notifier {
    config: NotifyConfig,
    http: reqwest::Client,
}

impl Notifier {
    pub(crate) fn new(config: NotifyConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { config, http }
    }

    /// One delivery attempt; the error says why it failed.
    pub(crate) async fn deliver(&self, notification: &Notification) -> Result<(), String> {
        let route: AlertRoute = serde_json::from_str(&notification.route)
            .map_err(|error| format!("the stored route is unreadable: {error}"))?;
        match route {
            AlertRoute::Webhook { url } => self.webhook(&url, notification).await,
            AlertRoute::Email { to } => self.email(&to, notification).await,
        }
    }

    async fn webhook(&self, url: &str, notification: &Notification) -> Result<(), String> {
        let body = notification.payload.clone().into_bytes();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-cairn-event", "monitor.alerts")
            .header("x-cairn-delivery", notification.id.to_string())
            .header("x-cairn-attempt", notification.attempts.to_string());
        if let Some(key) = &self.config.signing_key {
            request = request.header("x-cairn-signature", signature(key, &body));
        }
        let response = request.body(body).send().await.map_err(|error| {
            // Never echo the URL's query (it may carry a token).
            format!("POST to the webhook failed: {}", error.without_url())
        })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", response.status()))
        }
    }

    async fn email(&self, to: &[String], notification: &Notification) -> Result<(), String> {
        let smtp = self
            .config
            .smtp
            .as_ref()
            .ok_or("no SMTP relay is configured (cairn serve --smtp-host …)")?;
        let payload: serde_json::Value =
            serde_json::from_str(&notification.payload).map_err(|error| error.to_string())?;
        let deployment = payload["deployment"].as_str().unwrap_or("?");
        let opened = payload["opened"].as_array().map_or(0, Vec::len);
        let closed = payload["closed"].as_array().map_or(0, Vec::len);
        let subject = format!("[Cairn] {deployment}: {opened} alert(s) opened, {closed} closed");
        let mut text = format!(
            "Deployment {deployment} (project {}), check {}: {}\n\n",
            payload["project"].as_str().unwrap_or("?"),
            payload["check"]["id"],
            payload["check"]["message"].as_str().unwrap_or("")
        );
        for (title, key) in
            [("Opened", "opened"), ("Closed", "closed"), ("Still open", "still_open")]
        {
            let alerts = payload[key].as_array().cloned().unwrap_or_default();
            if alerts.is_empty() {
                continue;
            }
            text.push_str(&format!("{title}:\n"));
            for alert in alerts {
                text.push_str(&format!(
                    "- {}: {}\n",
                    alert["key"].as_str().unwrap_or(""),
                    alert["message"].as_str().unwrap_or("")
                ));
            }
            text.push('\n');
        }
        text.push_str(&format!("Report: {}\n", payload["check"]["report"].as_str().unwrap_or("")));
        let from: Mailbox =
            smtp.from.parse().map_err(|error| format!("the sender '{}': {error}", smtp.from))?;
        let mut message = Message::builder().from(from).subject(subject);
        for recipient in to {
            let mailbox: Mailbox =
                recipient.parse().map_err(|error| format!("recipient '{recipient}': {error}"))?;
            message = message.to(mailbox);
        }
        let message = message.body(text).map_err(|error| error.to_string())?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(self.config.timeout))
            .build();
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| format!("the SMTP relay {}:{} refused: {error}", smtp.host, smtp.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let config =
            NotifyConfig { retry_base: Duration::from_secs(10), ..NotifyConfig::default() };
        assert_eq!(config.backoff(1), 10_000);
        assert_eq!(config.backoff(2), 20_000);
        assert_eq!(config.backoff(4), 80_000);
        assert_eq!(config.backoff(30), 3_600_000);
    }
}

#[cfg(test)]
mod smtp_tests {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    use super::*;

    /// A FAKE SMTP relay (an external relay cannot run here): it speaks just enough SMTP to
    /// accept one message and returns the envelope recipients and the message text.
    async fn fake_relay() -> (u16, tokio::task::JoinHandle<(Vec<String>, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
            let (mut recipients, mut data, mut in_data) = (Vec::new(), String::new(), false);
            while let Some(line) = lines.next_line().await.unwrap() {
                if in_data {
                    if line == "." {
                        in_data = false;
                        write.write_all(b"250 queued\r\n").await.unwrap();
                    } else {
                        data.push_str(&line);
                        data.push('\n');
                    }
                    continue;
                }
                let upper = line.to_ascii_uppercase();
                let answer: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                    b"250 fake\r\n"
                } else if upper.starts_with("RCPT TO:") {
                    recipients.push(line[8..].trim().trim_matches(['<', '>']).to_string());
                    b"250 ok\r\n"
                } else if upper.starts_with("DATA") {
                    in_data = true;
                    b"354 go ahead\r\n"
                } else if upper.starts_with("QUIT") {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                } else {
                    b"250 ok\r\n"
                };
                write.write_all(answer).await.unwrap();
            }
            (recipients, data)
        });
        (port, task)
    }

    #[tokio::test]
    async fn email_routes_go_through_the_relay() {
        let (port, relay) = fake_relay().await;
        let notifier = Notifier::new(NotifyConfig {
            smtp: Some(SmtpConfig {
                host: "127.0.0.1".into(),
                port,
                from: "cairn@example.com".into(),
            }),
            ..NotifyConfig::default()
        });
        let payload = serde_json::json!({
            "deployment": "churn", "project": "ml",
            "check": {"id": 7, "message": "dataset drift", "report": "/api/v1/deployments/churn/checks/7/report"},
            "opened": [{"id": 1, "key": "dataset_drift", "message": "5 of 8 features drifted"}],
            "closed": [], "still_open": [],
        });
        let notification = Notification {
            id: 1,
            deployment_id: 1,
            check_id: 7,
            route: r#"{"type":"email","to":["ops@example.com","ml@example.com"]}"#.into(),
            payload: payload.to_string(),
            state: "pending".into(),
            attempts: 1,
            last_error: None,
        };
        notifier.deliver(&notification).await.unwrap();
        let (recipients, message) = relay.await.unwrap();
        assert_eq!(recipients, ["ops@example.com", "ml@example.com"]);
        assert!(
            message.contains("Subject: [Cairn] churn: 1 alert(s) opened, 0 closed"),
            "{message}"
        );
        assert!(message.contains("dataset_drift: 5 of 8 features drifted"), "{message}");
        // Without a relay, the route fails with a reason (and is retried by the outbox).
        let error =
            Notifier::new(NotifyConfig::default()).deliver(&notification).await.unwrap_err();
        assert!(error.contains("no SMTP relay"), "{error}");
    }
}
