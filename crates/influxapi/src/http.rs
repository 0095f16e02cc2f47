//! A client of influx's v1 HTTP API (`/ping`, `/query`, `/write`), usable against influxd 1.x
//! and any server speaking that API. Credentials and TLS settings come from the caller.

use std::time::Duration;

use serde::Deserialize;

use crate::error::{InfluxApiError, Result};

/// A user name and password sent as HTTP basic auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <hidden>)", self.username)
    }
}

/// How to reach the target.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Base URL, e.g. `http://127.0.0.1:8086` or `https://influx:8086`.
    pub url: String,
    /// Basic-auth credentials, if the target has auth enabled.
    pub credentials: Option<Credentials>,
    /// Extra trusted CA certificates (PEM) for an `https` URL.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept any server certificate (testing only).
    pub insecure: bool,
    /// Give up on one request after this long.
    pub timeout: Duration,
}

impl HttpOptions {
    /// Options for `url` with no credentials, system CAs and a 5-minute request timeout.
    pub fn new(url: impl Into<String>) -> Self {
        HttpOptions {
            url: url.into(),
            credentials: None,
            ca_pem: None,
            insecure: false,
            timeout: Duration::from_secs(300),
        }
    }
}

/// One series of a query result.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Series {
    /// Measurement (or statement-specific) name.
    #[serde(default)]
    pub name: String,
    /// Tags of a `GROUP BY` series.
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Column names.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows.
    #[serde(default)]
    pub values: Vec<Vec<serde_json::Value>>,
}

impl Series {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

#[derive(Debug, Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<Series>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct QueryResponse {
    #[serde(default)]
    results: Vec<StatementResult>,
    #[serde(default)]
    error: Option<String>,
}

/// A connected v1 HTTP API client (cheap to clone).
#[derive(Debug, Clone)]
pub struct InfluxHttp {
    client: reqwest::Client,
    base: String,
    creds: Option<Credentials>,
}

impl InfluxHttp {
    /// Builds a client for `opts` (no request is sent).
    pub fn new(opts: &HttpOptions) -> Result<Self> {
        let base = opts.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(InfluxApiError::BadUrl { url: base });
        }
        let mut b = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(Duration::from_secs(10))
            .tls_danger_accept_invalid_certs(opts.insecure);
        if let Some(pem) = &opts.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|source| InfluxApiError::CaCertificates { source })?;
            b = b.tls_certs_merge(certs);
        }
        let client = b.build().map_err(|source| InfluxApiError::HttpClient {
            url: base.clone(),
            source,
        })?;
        Ok(InfluxHttp {
            client,
            base,
            creds: opts.credentials.clone(),
        })
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.creds {
            Some(c) => rb.basic_auth(&c.username, Some(&c.password)),
            None => rb,
        }
    }

    fn http_err(&self, what: &str) -> impl FnOnce(reqwest::Error) -> InfluxApiError {
        let (what, url) = (what.to_string(), self.base.clone());
        move |source| InfluxApiError::Http { what, url, source }
    }

    /// `GET /ping`: the server's version (`X-Influxdb-Version`), empty when not sent.
    pub async fn ping(&self) -> Result<String> {
        let what = "ping the target";
        let resp = self
            .auth(self.client.get(format!("{}/ping", self.base)))
            .send()
            .await
            .map_err(self.http_err(what))?;
        let status = resp.status();
        if !status.is_success() {
            let message = resp.text().await.unwrap_or_default();
            return Err(server(what, status.as_u16(), message));
        }
        Ok(resp
            .headers()
            .get("X-Influxdb-Version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string())
    }

    /// Runs one InfluxQL statement (times as epoch ns) and returns its series; a statement
    /// error becomes [`InfluxApiError::Server`] with `what` as context.
    pub async fn query(&self, db: Option<&str>, q: &str, what: &str) -> Result<Vec<Series>> {
        let form = {
            let mut f = form_urlencoded::Serializer::new(String::new());
            f.append_pair("q", q).append_pair("epoch", "ns");
            if let Some(db) = db {
                f.append_pair("db", db);
            }
            f.finish()
        };
        let resp = self
            .auth(self.client.post(format!("{}/query", self.base)))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(self.http_err(what))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(self.http_err(what))?;
        let parsed: Option<QueryResponse> = serde_json::from_slice(&body).ok();
        let Some(parsed) = parsed else {
            return Err(server(what, status, String::from_utf8_lossy(&body).into()));
        };
        if let Some(e) = parsed.error {
            return Err(server(what, status, e));
        }
        let mut out = Vec::new();
        for r in parsed.results {
            if let Some(e) = r.error {
                return Err(server(what, status, e));
            }
            out.extend(r.series);
        }
        if !(200..300).contains(&status) {
            return Err(server(what, status, String::from_utf8_lossy(&body).into()));
        }
        Ok(out)
    }

    /// Posts one gzip-compressed line-protocol body to `/write` (precision ns).
    pub async fn write_gz(&self, db: &str, rp: &str, gz: bytes::Bytes, what: &str) -> Result<()> {
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("db", db)
            .append_pair("rp", rp)
            .append_pair("precision", "ns")
            .finish();
        let resp = self
            .auth(self.client.post(format!("{}/write?{params}", self.base)))
            .header("Content-Encoding", "gzip")
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(gz)
            .send()
            .await
            .map_err(self.http_err(what))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let message = resp.text().await.unwrap_or_default();
        Err(server(what, status.as_u16(), message.trim().to_string()))
    }
}

fn server(what: &str, status: u16, message: String) -> InfluxApiError {
    InfluxApiError::Server {
        what: what.to_string(),
        status,
        message,
    }
}

/// Quotes an identifier for InfluxQL (`"name"`, with `"` and `\` escaped).
pub fn quote_ident(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 2);
    s.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

/// Quotes a string literal for InfluxQL (`'text'`, with `'` and `\` escaped).
pub fn quote_str(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('\'');
    for c in text.chars() {
        if c == '\'' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('\'');
    s
}
