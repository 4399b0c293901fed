//! The HTTP client the CLI's verbs use to talk to the daemon.
//!
//! Where to connect, with which token and for which organization is resolved the way a user
//! expects from sentry-cli, with shiplog's own variables first:
//! URL: `--url`, `SHIPLOG_URL`, `SENTRY_URL`, the URL embedded in the token, the running
//! daemon's runtime file, the config. Token: `--auth-token`, `SHIPLOG_TOKEN`,
//! `SENTRY_AUTH_TOKEN`. Organization: `--org`, `SHIPLOG_ORG`, `SENTRY_ORG`, the token's, the
//! config's.

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use super::CliError;
use crate::config::Config;
use crate::model::token;

/// Connection options shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientOptions {
    /// The daemon's base URL [env: SHIPLOG_URL, SENTRY_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// API token [env: SHIPLOG_TOKEN, SENTRY_AUTH_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Organization slug [env: SHIPLOG_ORG, SENTRY_ORG]
    #[arg(long, short = 'o', global = true, value_name = "ORG")]
    pub org: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A client bound to one daemon, token and organization.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    pub base: String,
    token: String,
    pub org: String,
    pub json: bool,
}

impl Client {
    pub fn new(opts: &ClientOptions, config: &Config) -> Result<Client, CliError> {
        let token = opts
            .auth_token
            .clone()
            .or_else(|| env("SHIPLOG_TOKEN"))
            .or_else(|| env("SENTRY_AUTH_TOKEN"))
            .ok_or_else(|| {
                CliError::Usage(
                    "no API token: set SHIPLOG_TOKEN (create one with `shiplog token create`)"
                        .into(),
                )
            })?;
        let payload = token::payload(&token);
        let base = opts
            .url
            .clone()
            .or_else(|| env("SHIPLOG_URL"))
            .or_else(|| env("SENTRY_URL"))
            .or_else(|| payload.as_ref().and_then(|p| p.url.clone()))
            .or_else(|| crate::daemon::runtime_info(&config.data_dir()).map(|r| r.url))
            .unwrap_or_else(|| config.effective_public_url(None));
        let org = opts
            .org
            .clone()
            .or_else(|| env("SHIPLOG_ORG"))
            .or_else(|| env("SENTRY_ORG"))
            .or_else(|| payload.map(|p| p.org))
            .unwrap_or_else(|| config.organization.clone());
        let http = reqwest::Client::builder()
            .user_agent(concat!("shiplog/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot build HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            token,
            org,
            json: opts.json,
        })
    }

    /// `{base}/api/0/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/0/{}", self.base, path.trim_start_matches('/'))
    }

    /// Sends a request and returns the status and the JSON body (`Null` when empty).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), CliError> {
        let url = self.url(path);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| CliError::Connect {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| CliError::Connect {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let value: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        if status >= 400 {
            let detail = value
                .get("detail")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            return Err(CliError::Api { status, detail });
        }
        Ok((status, value))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        Ok(self.send(Method::GET, path, None).await?.1)
    }

    /// A request with the token, for bodies and answers [`Client::send`] does not handle
    /// (uploads, downloads). `path` is below `/api/0/`, or an absolute `http(s)://` URL.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            self.url(path.trim_start_matches("/api/0/"))
        };
        self.http.request(method, url).bearer_auth(&self.token)
    }

    /// Sends a [`Client::request`]: a connection failure or an error status becomes the same
    /// one-line [`CliError`] as for JSON calls; a success is returned unread.
    pub async fn execute(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CliError> {
        let resp = req.send().await.map_err(|e| CliError::Connect {
            url: self.base.clone(),
            reason: root_cause(&e),
        })?;
        let status = resp.status().as_u16();
        if status < 400 {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                v.get("detail")
                    .or_else(|| v.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(CliError::Api { status, detail })
    }
}

fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur: &dyn std::error::Error = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// Encodes a path segment the way sentry-cli does: `/` becomes U+FFFD (no release version may
/// contain one), reserved characters are percent-encoded, `@ : ; = & ,` stay literal.
pub fn segment(text: &str) -> String {
    if text == "." || text == ".." {
        return "%EF%BF%BD".into();
    }
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        let mut buf = [0u8; 4];
        let ch = if ch == '/' { '\u{FFFD}' } else { ch };
        for b in ch.encode_utf8(&mut buf).bytes() {
            if b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_'
                        | b'.'
                        | b'~'
                        | b'@'
                        | b':'
                        | b';'
                        | b'='
                        | b'&'
                        | b','
                        | b'!'
                        | b'$'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                )
            {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Encodes a query-string value.
pub fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_match_sentry_cli() {
        assert_eq!(segment("web@2.0.0+build.5"), "web@2.0.0%2Bbuild.5");
        assert_eq!(
            segment("a#b?c%d{e}`f\"g<h>i+j@k:l;m=n&o,p"),
            "a%23b%3Fc%25d%7Be%7D%60f%22g%3Ch%3Ei%2Bj@k:l;m=n&o,p"
        );
        assert_eq!(segment("a/b"), "a%EF%BF%BDb");
        assert_eq!(segment(".."), "%EF%BF%BD");
    }
}
