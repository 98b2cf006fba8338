//! The UI scenario: an experiment's runs table at 100,000 runs, Cairn's server-rendered page
//! against MLflow's UI on the same data.
//!
//! 1. Cairn is seeded through the MLflow REST API (`runs/create` + one `runs/log-batch` of 5
//!    params, 5 metrics and a tag per run, as workload (c)); the runs are then exported with
//!    `runs/search` and copied into a stock MLflow server's SQLite database by
//!    `bench/seed_mlflow_runs.py` (same ids, names, start times, params, metrics and tags), since
//!    seeding MLflow through its API would take most of an hour.
//! 2. Server time, one request at a time: Cairn's `GET /projects/default/experiments/<id>` (the
//!    whole HTML page, 100 rows) against the request MLflow's UI makes for the same table,
//!    `POST /ajax-api/2.0/mlflow/runs/search` with `max_results` 100 (its page size) and
//!    `attributes.start_time DESC` unless another order is chosen. Both answer the same runs in
//!    the same order, which is checked. Latency is measured by the client on loopback, so it is
//!    the server's time plus a loopback round trip.
//! 3. In headless Chromium (when chromedriver is installed): the time from navigation to the
//!    first rows of the table being in the page, cold (a fresh browser profile) and warm. For
//!    Cairn that is when the HTML has been parsed; for MLflow when its JavaScript has fetched
//!    and drawn the runs (ag-grid rows present) on its runs tab, `#/experiments/<id>/runs` (the
//!    experiment's default tab in MLflow 3 is an overview).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use crate::client::Api;
use crate::report::percentile_ms;
use crate::server::{Server, ServerSpec};
use crate::workload::{self, Throughput};

/// Rows per page in both UIs' first request (MLflow's UI asks for 100).
const PAGE: usize = 100;
/// Runs per `runs/search` page of the export.
const EXPORT_PAGE: usize = 1000;
/// Untimed requests of each query on Cairn before the timed ones.
const WARM_UP: usize = 2;
/// Wall time after which no further MLflow call of a query is started.
const MLFLOW_QUERY_BUDGET: Duration = Duration::from_secs(60);

/// Sizes of the UI scenario.
#[derive(Debug, Clone)]
pub struct UiSizes {
    /// Runs in the experiment.
    pub runs: usize,
    /// Concurrent clients while seeding Cairn.
    pub clients: usize,
    /// Timed requests of each query on Cairn.
    pub repeats: usize,
    /// Timed requests of each query on MLflow (fewer when a query's calls pass one minute).
    pub mlflow_repeats: usize,
    /// How long one MLflow call may take before it is recorded as timed out.
    pub mlflow_timeout: Duration,
    /// Warm browser loads per UI (after one cold load).
    pub browser_loads: usize,
    /// The page of the deep-page query (1-based).
    pub deep_page: usize,
}

/// One query of the table, on both servers.
#[derive(Debug, Clone, Default)]
pub struct QueryTiming {
    /// What the query is.
    pub label: String,
    /// Cairn's latencies.
    pub cairn: Vec<Duration>,
    /// MLflow's latencies.
    pub mlflow: Vec<Duration>,
    /// Run ids of Cairn's page, in order.
    pub cairn_ids: Vec<String>,
    /// Run ids of MLflow's page, in order.
    pub mlflow_ids: Vec<String>,
    /// MLflow did not answer a call within the timeout (that call is not in `mlflow`).
    pub mlflow_timed_out: bool,
}

/// Browser timings of one UI, in milliseconds from navigation start.
#[derive(Debug, Clone, Default)]
pub struct BrowserTiming {
    /// Rows present, first load with a fresh profile.
    pub cold_ms: f64,
    /// Rows present, later loads.
    pub warm_ms: Vec<f64>,
    /// Rows in the page when they first appeared (MLflow's grid draws only what is visible).
    pub rows: u64,
    /// Duration of the page's `runs/search` requests as the browser saw them (MLflow only).
    pub search_ms: Vec<f64>,
}

/// Everything the UI scenario measured.
#[derive(Debug, Clone, Default)]
pub struct UiOutcome {
    /// Runs in the experiment.
    pub runs: usize,
    /// Seeding Cairn through its API.
    pub seed: Throughput,
    /// Seconds to export the runs from Cairn and copy them into MLflow's database.
    pub copy_s: f64,
    /// The MLflow call timeout, seconds.
    pub mlflow_timeout_s: f64,
    /// The server-time queries.
    pub queries: Vec<QueryTiming>,
    /// Cairn's other pages on the same data: (what, latencies).
    pub pages: Vec<(String, Vec<Duration>)>,
    /// Cairn in Chromium.
    pub cairn_browser: Option<BrowserTiming>,
    /// MLflow in Chromium.
    pub mlflow_browser: Option<BrowserTiming>,
    /// Why the browser part did not run, when it did not.
    pub browser_note: Option<String>,
}

/// One query of the runs table.
struct Query {
    label: String,
    filter: &'static str,
    order: &'static str,
    /// 1-based page.
    page: usize,
}

fn queries(deep_page: usize) -> Vec<Query> {
    let plain = |label: &str, filter, order| Query { label: label.into(), filter, order, page: 1 };
    // The sorted queries come last: MLflow may not answer them in time, and its workers go on
    // with an abandoned query for minutes, which would slow the queries after it.
    vec![
        plain("first page, newest first", "", ""),
        plain(
            "filtered (`metrics.m0 > 0.5 and params.p1 = 'b'`)",
            "metrics.m0 > 0.5 and params.p1 = 'b'",
            "",
        ),
        Query {
            label: format!(
                "page {deep_page} (runs {}–{}), newest first",
                (deep_page - 1) * PAGE + 1,
                deep_page * PAGE
            ),
            filter: "",
            order: "",
            page: deep_page,
        },
        plain("sorted by a metric (`metrics.m1 DESC`)", "", "metrics.m1 DESC"),
        plain("sorted by a param (`params.p2 ASC`)", "", "params.p2 ASC"),
        Query {
            label: format!("page {deep_page}, sorted by `metrics.m1 DESC`"),
            filter: "",
            order: "metrics.m1 DESC",
            page: deep_page,
        },
    ]
}

fn progress(message: &str) {
    eprintln!("[bench] {message}");
}

/// Runs the scenario; `mlflow_bin` is `None` with `--skip-mlflow`.
pub async fn run(
    cairn_bin: &Path,
    mlflow_bin: Option<&Path>,
    python: &Path,
    sizes: &UiSizes,
) -> Result<UiOutcome> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .context("building the HTTP client")?;
    let mut outcome = UiOutcome {
        runs: sizes.runs,
        mlflow_timeout_s: sizes.mlflow_timeout.as_secs_f64(),
        ..UiOutcome::default()
    };
    let work = tempfile::Builder::new().prefix("cairn-bench-ui-").tempdir()?;

    progress("ui: starting Cairn");
    let (cairn, _) = Server::start(
        &ServerSpec::Cairn { bin: cairn_bin.to_path_buf(), auth: false, extra_args: Vec::new() },
        &http,
    )
    .await?;
    let api = Api::new(&cairn.base_url, sizes.clients, None)?;
    let experiment = api.create_experiment("ui").await?;
    progress(&format!("ui: seeding Cairn with {} runs", sizes.runs));
    outcome.seed =
        workload::small_runs(&api, "ui seed", &experiment, sizes.runs, sizes.clients).await;
    if api.failure_count() > 0 {
        bail!("{} requests failed while seeding Cairn", api.failure_count());
    }
    let queries = queries(sizes.deep_page);
    outcome.queries = queries
        .iter()
        .map(|query| QueryTiming { label: query.label.clone(), ..QueryTiming::default() })
        .collect();
    progress("ui: timing Cairn's runs table");
    let table = format!("{}/projects/default/experiments/{experiment}", cairn.base_url);
    for (query, timing) in queries.iter().zip(&mut outcome.queries) {
        let url = cairn_page_url(&http, &table, query).await?;
        for call in 0..WARM_UP + sizes.repeats {
            let started = Instant::now();
            let answer = http.get(&url).header("accept", "text/html").send().await?;
            let status = answer.status();
            let body = answer.text().await?;
            let elapsed = started.elapsed();
            if !status.is_success() {
                bail!("Cairn answered {status} for {url}: {body}");
            }
            if call == 0 {
                timing.cairn_ids = run_ids_in_page(&body);
            } else if call >= WARM_UP {
                timing.cairn.push(elapsed);
            }
        }
        progress(&format!(
            "ui:   cairn {}: p50 {:.1} ms, p95 {:.1} ms",
            query.label,
            percentile_ms(&timing.cairn, 50.0),
            percentile_ms(&timing.cairn, 95.0)
        ));
    }
    progress("ui: timing Cairn's other pages");
    let first_ids =
        outcome.queries.first().map(|query| query.cairn_ids.clone()).unwrap_or_default();
    if first_ids.len() < 2 {
        bail!("Cairn's first page listed {} runs", first_ids.len());
    }
    let project = format!("{}/projects/default", cairn.base_url);
    let pages = [
        ("home (`/`: projects, recent runs, approvals, alerts)", format!("{}/", cairn.base_url)),
        ("project (`/projects/default`: experiments)", project.clone()),
        (
            "run page (params, metrics, charts, artifacts, lineage)",
            format!("{project}/runs/{}", first_ids[0]),
        ),
        (
            "compare two runs",
            format!("{project}/compare?runs={}&runs={}", first_ids[0], first_ids[1]),
        ),
        ("global search (`run-5000`)", format!("{}/search?q=run-5000", cairn.base_url)),
    ];
    for (label, url) in pages {
        let mut latencies = Vec::with_capacity(sizes.repeats);
        for call in 0..WARM_UP + sizes.repeats {
            let started = Instant::now();
            let answer = http.get(&url).header("accept", "text/html").send().await?;
            let status = answer.status();
            let body = answer.text().await?;
            if !status.is_success() {
                bail!("Cairn answered {status} for {url}: {body}");
            }
            if call >= WARM_UP {
                latencies.push(started.elapsed());
            }
        }
        outcome.pages.push((label.to_owned(), latencies));
    }
    let browser = if sizes.browser_loads == 0 {
        Err("asked for with --ui-browser-loads 0".to_owned())
    } else {
        Browser::find()
    };
    let table_url = format!("{table}?per={PAGE}");
    match &browser {
        Ok(browser) => {
            progress("ui: Cairn in Chromium");
            outcome.cairn_browser = Some(
                browser.measure(&table_url, Ui::Cairn, sizes.browser_loads, work.path()).await?,
            );
        }
        Err(why) => outcome.browser_note = Some(why.clone()),
    }

    let Some(mlflow_bin) = mlflow_bin else {
        cairn.stop().await?;
        return Ok(outcome);
    };
    progress("ui: exporting the runs");
    let copy_started = Instant::now();
    let export = work.path().join("runs.jsonl");
    export_runs(&api, &experiment, &export, sizes.runs).await?;
    cairn.stop().await?;

    progress("ui: starting MLflow");
    let (mlflow, _) =
        Server::start(&ServerSpec::Mlflow { bin: mlflow_bin.to_path_buf() }, &http).await?;
    let mlflow_api = Api::new(&mlflow.base_url, 1, None)?;
    let mlflow_experiment = mlflow_api.create_experiment("ui").await?;
    progress("ui: copying the runs into MLflow's database");
    let seeder = Path::new(env!("CARGO_MANIFEST_DIR")).join("seed_mlflow_runs.py");
    let output = Command::new(python)
        .arg(&seeder)
        .arg(mlflow.dir().join("mlflow.db"))
        .arg(&mlflow_experiment)
        .arg(&export)
        .output()
        .with_context(|| format!("running {}", seeder.display()))?;
    if !output.status.success() {
        bail!("{} failed: {}", seeder.display(), String::from_utf8_lossy(&output.stderr));
    }
    outcome.copy_s = copy_started.elapsed().as_secs_f64();

    // The browser first, while MLflow is idle (see `queries`).
    if let Ok(browser) = &browser {
        progress("ui: MLflow in Chromium");
        let url = format!("{}/#/experiments/{mlflow_experiment}/runs", mlflow.base_url);
        outcome.mlflow_browser =
            Some(browser.measure(&url, Ui::Mlflow, sizes.browser_loads, work.path()).await?);
    }
    progress("ui: timing MLflow's runs search");
    for (query, timing) in queries.iter().zip(&mut outcome.queries) {
        let order = if query.order.is_empty() { "attributes.start_time DESC" } else { query.order };
        let mut body = json!({
            "experiment_ids": [mlflow_experiment],
            "filter": query.filter,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": PAGE,
            "order_by": [order],
        });
        if query.page > 1 {
            body["page_token"] =
                json!(cairn_domain::page_token::encode_offset(((query.page - 1) * PAGE) as u64));
        }
        let url = format!("{}/ajax-api/2.0/mlflow/runs/search", mlflow.base_url);
        // MLflow takes minutes for some of these at 100,000 runs: every call is timed (its
        // first one too: MLflow caches no results), and calls stop at `mlflow_repeats` or once
        // the query has used its time budget, whichever comes first.
        let query_started = Instant::now();
        for call in 0..sizes.mlflow_repeats {
            if call > 0 && query_started.elapsed() > MLFLOW_QUERY_BUDGET {
                break;
            }
            let started = Instant::now();
            let sent = http.post(&url).json(&body).timeout(sizes.mlflow_timeout).send().await;
            let answered = match sent {
                Ok(answer) => {
                    let status = answer.status();
                    answer.text().await.map(|text| (status, text))
                }
                Err(error) => Err(error),
            };
            let (status, text) = match answered {
                Ok(answered) => answered,
                Err(error) if error.is_timeout() => {
                    progress(&format!(
                        "ui:   mlflow {}: no answer within {} s",
                        query.label,
                        sizes.mlflow_timeout.as_secs()
                    ));
                    timing.mlflow_timed_out = true;
                    // MLflow's worker goes on with the abandoned query; wait until the server
                    // is idle again so it does not slow the next queries down.
                    wait_until_idle(mlflow.pid(), sizes.mlflow_timeout).await;
                    break;
                }
                Err(error) => return Err(error).context("MLflow runs/search"),
            };
            let elapsed = started.elapsed();
            if !status.is_success() {
                bail!("MLflow answered {status}: {text}");
            }
            progress(&format!(
                "ui:   mlflow {}: {:.0} ms",
                query.label,
                elapsed.as_secs_f64() * 1000.0
            ));
            if call == 0 {
                let page: Value = serde_json::from_str(&text)?;
                timing.mlflow_ids = page["runs"]
                    .as_array()
                    .map(|runs| {
                        runs.iter()
                            .filter_map(|run| run["info"]["run_id"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
            }
            timing.mlflow.push(elapsed);
        }
    }
    mlflow.stop().await?;
    Ok(outcome)
}

/// Waits until the process tree of `pid` uses under 10 % of a core over a second, at most
/// `limit`.
async fn wait_until_idle(pid: u32, limit: Duration) {
    let started = Instant::now();
    let per_second = crate::procfs::clock_ticks_per_second().max(1);
    while started.elapsed() < limit {
        let before = crate::procfs::tree_cpu_ticks(pid);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let used = crate::procfs::tree_cpu_ticks(pid).saturating_sub(before);
        if used * 10 < per_second {
            progress(&format!(
                "ui:   MLflow idle again after {:.0} s",
                started.elapsed().as_secs_f64()
            ));
            return;
        }
    }
    progress("ui:   MLflow still busy; going on");
}

/// The URL of a query's page on Cairn; deeper pages are reached by following "Next" links (page
/// tokens are opaque), untimed.
async fn cairn_page_url(http: &reqwest::Client, table: &str, query: &Query) -> Result<String> {
    let mut url = reqwest::Url::parse(table)?;
    url.query_pairs_mut().append_pair("per", &PAGE.to_string());
    if !query.filter.is_empty() {
        url.query_pairs_mut().append_pair("filter", query.filter);
    }
    if !query.order.is_empty() {
        url.query_pairs_mut().append_pair("order", query.order);
    }
    let mut url = url.to_string();
    for _ in 1..query.page {
        let body = http.get(&url).header("accept", "text/html").send().await?.text().await?;
        let next = next_href(&body).with_context(|| format!("no next page after {url}"))?;
        url = reqwest::Url::parse(table)?.join(&next)?.to_string();
    }
    Ok(url)
}

/// The `rel="next"` link of a runs page, unescaped.
fn next_href(page: &str) -> Option<String> {
    let at = page.find("rel=\"next\"")?;
    let start = page[..at].rfind("href=\"")? + "href=\"".len();
    let end = start + page[start..].find('"')?;
    Some(unescape_html(&page[start..end]))
}

/// Decodes the character references askama writes in attributes (`&#38;`, `&amp;`, …).
fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(character) => {
                out.push(character);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links_are_unescaped() {
        let page = r#"<a href="/x?a=1&#38;b=&#x27;2&#x27;&amp;c=3" rel="next">Next</a>"#;
        assert_eq!(next_href(page).as_deref(), Some("/x?a=1&b='2'&c=3"));
        assert_eq!(unescape_html("a & b &#nope; &#38;"), "a & b &#nope; &");
    }
}

/// Run ids linked from a runs page, in order of first appearance.
fn run_ids_in_page(page: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("/runs/") {
        rest = &rest[at + "/runs/".len()..];
        let id: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        if id.len() == 32 && !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Writes every run of the experiment as one JSON line each.
async fn export_runs(api: &Api, experiment: &str, path: &Path, expected: usize) -> Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut token: Option<String> = None;
    let mut written = 0;
    loop {
        let mut body = json!({ "experiment_ids": [experiment], "max_results": EXPORT_PAGE });
        if let Some(token) = &token {
            body["page_token"] = json!(token);
        }
        let (page, _) = api.post("runs/search", &body).await?;
        for run in page["runs"].as_array().into_iter().flatten() {
            serde_json::to_writer(&mut file, run)?;
            file.write_all(b"\n")?;
            written += 1;
        }
        match page["next_page_token"].as_str() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => break,
        }
    }
    file.flush()?;
    if written != expected {
        bail!("exported {written} runs, expected {expected}");
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ui {
    Cairn,
    Mlflow,
}

/// Headless Chromium through chromedriver.
struct Browser {
    chromium: PathBuf,
    driver: PathBuf,
}

/// chromedriver on a port, killed on drop.
struct DriverProcess {
    child: Child,
    port: u16,
}

impl Drop for DriverProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resolves when the first rows of the runs table are in the page: `[ms since navigation
/// start, rows, [durations of runs/search requests]]`.
const WAIT_FOR_ROWS: &str = r#"
const done = arguments[arguments.length - 1];
const selector = arguments[0];
const check = () => {
  const rows = document.querySelectorAll(selector).length;
  if (rows > 0) {
    const searches = performance.getEntriesByType('resource')
      .filter((entry) => entry.name.includes('runs/search'))
      .map((entry) => entry.duration);
    done([performance.now(), rows, searches]);
  } else {
    setTimeout(check, 2);
  }
};
check();
"#;

/// Resolves with the navigation timing of a server-rendered page once it is recorded:
/// `[domContentLoadedEventEnd, rows]` (ms since navigation start).
const NAVIGATION: &str = r#"
const done = arguments[arguments.length - 1];
const selector = arguments[0];
const check = () => {
  const nav = performance.getEntriesByType('navigation')[0];
  if (nav && nav.domContentLoadedEventEnd > 0) {
    done([nav.domContentLoadedEventEnd, document.querySelectorAll(selector).length]);
  } else {
    setTimeout(check, 2);
  }
};
check();
"#;

impl Browser {
    fn find() -> std::result::Result<Self, String> {
        let chromium = PathBuf::from(
            std::env::var("CAIRN_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        );
        let driver = PathBuf::from(
            std::env::var("CAIRN_TEST_CHROMEDRIVER")
                .unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
        );
        if !chromium.is_file() || !driver.is_file() {
            return Err(format!(
                "no Chromium at {} or chromedriver at {}",
                chromium.display(),
                driver.display()
            ));
        }
        Ok(Self { chromium, driver })
    }

    async fn start_driver(&self) -> Result<DriverProcess> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&self.driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let driver = DriverProcess { child, port };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(driver);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("chromedriver did not listen within 10 s")
    }

    async fn session(&self, driver: &DriverProcess, profile: &Path) -> Result<Client> {
        let args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1366,900",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": self.chromium, "args": args},
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .context("opening a WebDriver session")?;
        client
            .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
                Some(Duration::from_secs(300)),
                Some(Duration::from_secs(300)),
                None,
            ))
            .await?;
        Ok(client)
    }

    /// One cold load in a fresh profile, then `warm` loads in the same browser.
    async fn measure(&self, url: &str, ui: Ui, warm: usize, work: &Path) -> Result<BrowserTiming> {
        let driver = self.start_driver().await?;
        let profile = tempfile::Builder::new().prefix("profile-").tempdir_in(work)?;
        let client = self.session(&driver, profile.path()).await?;
        let mut timing = BrowserTiming::default();
        for load in 0..=warm {
            client.goto("about:blank").await?;
            client.goto(url).await?;
            let (ms, rows, searches) = match ui {
                Ui::Cairn => {
                    let answer =
                        client.execute_async(NAVIGATION, vec![json!("table tbody tr")]).await?;
                    (
                        answer[0].as_f64().unwrap_or(f64::NAN),
                        answer[1].as_u64().unwrap_or(0),
                        vec![],
                    )
                }
                Ui::Mlflow => {
                    let answer = client
                        .execute_async(
                            WAIT_FOR_ROWS,
                            vec![json!(".ag-center-cols-container .ag-row")],
                        )
                        .await?;
                    let searches = answer[2]
                        .as_array()
                        .map(|all| all.iter().filter_map(Value::as_f64).collect())
                        .unwrap_or_default();
                    (
                        answer[0].as_f64().unwrap_or(f64::NAN),
                        answer[1].as_u64().unwrap_or(0),
                        searches,
                    )
                }
            };
            if rows == 0 {
                bail!("no rows in {url}");
            }
            progress(&format!("ui:   {ui:?} load {load}: rows after {ms:.0} ms ({rows} rows)"));
            timing.rows = rows;
            timing.search_ms.extend(searches);
            if load == 0 {
                timing.cold_ms = ms;
            } else {
                timing.warm_ms.push(ms);
            }
        }
        client.close().await?;
        Ok(timing)
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The scenario's report, in markdown.
pub fn render(outcome: &UiOutcome) -> String {
    let mut out = format!(
        "## UI: the runs table of an experiment with {} runs\n\nSeeding Cairn: {:.0} runs/s ({} runs, {:.1} s); export and copy into MLflow's database: {:.1} s.\n\n",
        outcome.runs,
        outcome.seed.jobs_per_second(),
        outcome.runs,
        outcome.seed.elapsed.as_secs_f64(),
        outcome.copy_s
    );
    out.push_str("Server time, one request at a time on loopback: Cairn's whole HTML page (100 rows) against the `runs/search` request MLflow's UI makes for the same page (`max_results` 100).\n\n");
    out.push_str("| query | Cairn p50 / p95 ms | MLflow p50 / p95 ms | ratio (p50) | Cairn < 100 ms | same runs, same order |\n|---|---:|---:|---:|---|---|\n");
    for query in &outcome.queries {
        let cairn = (percentile_ms(&query.cairn, 50.0), percentile_ms(&query.cairn, 95.0));
        let mlflow = (percentile_ms(&query.mlflow, 50.0), percentile_ms(&query.mlflow, 95.0));
        let same = if query.mlflow_ids.is_empty() && query.mlflow_timed_out {
            "— (MLflow did not answer)".to_owned()
        } else if query.mlflow_ids.is_empty() {
            "—".to_owned()
        } else if query.cairn_ids == query.mlflow_ids {
            format!("yes ({} runs)", query.cairn_ids.len())
        } else {
            format!("**NO** ({} vs {} runs)", query.cairn_ids.len(), query.mlflow_ids.len())
        };
        out.push_str(&format!(
            "| {} | {:.1} / {:.1} | {} | {} | {} | {same} |\n",
            query.label,
            cairn.0,
            cairn.1,
            match (query.mlflow.is_empty(), query.mlflow_timed_out) {
                (true, true) => format!("> {:.0} s (no answer)", outcome.mlflow_timeout_s),
                (true, false) => "—".to_owned(),
                (false, timed_out) => format!(
                    "{:.1} / {:.1} (n={}{})",
                    mlflow.0,
                    mlflow.1,
                    query.mlflow.len(),
                    if timed_out { ", then a call with no answer" } else { "" }
                ),
            },
            match (query.mlflow.is_empty(), query.mlflow_timed_out) {
                (true, true) => format!("> {:.0}×", outcome.mlflow_timeout_s * 1000.0 / cairn.0),
                (true, false) => "—".to_owned(),
                (false, _) => format!("{:.1}×", mlflow.0 / cairn.0),
            },
            if cairn.0 < 100.0 { "yes" } else { "**NO**" },
        ));
    }
    if !outcome.pages.is_empty() {
        out.push_str("\nCairn's other pages on the same data (the issue asks every page to answer in under 100 ms):\n\n| page | p50 / p95 ms | < 100 ms |\n|---|---:|---|\n");
        for (label, latencies) in &outcome.pages {
            let (p50, p95) = (percentile_ms(latencies, 50.0), percentile_ms(latencies, 95.0));
            out.push_str(&format!(
                "| {label} | {p50:.1} / {p95:.1} | {} |\n",
                if p95 < 100.0 { "yes" } else { "**NO**" }
            ));
        }
    }
    match (&outcome.cairn_browser, &outcome.mlflow_browser) {
        (Some(cairn), mlflow) => {
            out.push_str("\nIn headless Chromium (1366×900): milliseconds from navigation start until the table's first rows are in the page.\n\n| UI | cold (fresh profile) | warm (median) | rows drawn | its runs/search as the browser saw it (median) |\n|---|---:|---:|---:|---:|\n");
            out.push_str(&format!(
                "| Cairn | {:.0} | {:.0} (n={}) | {} | — (server-rendered) |\n",
                cairn.cold_ms,
                median(&cairn.warm_ms),
                cairn.warm_ms.len(),
                cairn.rows
            ));
            if let Some(mlflow) = mlflow {
                out.push_str(&format!(
                    "| MLflow | {:.0} | {:.0} (n={}) | {} | {:.0} ms |\n",
                    mlflow.cold_ms,
                    median(&mlflow.warm_ms),
                    mlflow.warm_ms.len(),
                    mlflow.rows,
                    median(&mlflow.search_ms)
                ));
            }
        }
        (None, _) => {
            if let Some(note) = &outcome.browser_note {
                out.push_str(&format!("\nBrowser timings skipped: {note}.\n"));
            }
        }
    }
    out
}
