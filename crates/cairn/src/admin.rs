//! `cairn admin audit verify|export`: offline checks and exports of the audit log, straight
//! from the metadata database.

use std::io::Write;

use anyhow::{Context, bail};
use cairn_domain::audit::AuditRecord;
use cairn_store::{ChainStatus, Store};

/// Records per page while exporting.
const EXPORT_PAGE: i64 = 5000;

/// Verifies the chain; prints the outcome and returns whether it is intact.
pub async fn verify(store: &Store) -> anyhow::Result<bool> {
    match store.verify_audit_chain().await.context("reading the audit log")? {
        ChainStatus::Intact(count) => {
            println!("audit chain intact: {count} records verified");
            Ok(true)
        }
        ChainStatus::Broken(failure) => {
            println!("audit chain BROKEN at record {}: {}", failure.seq, failure.reason);
            Ok(false)
        }
    }
}

/// Writes every record at or after `since` (epoch ms) to `out` as JSON lines or CSV.
pub async fn export(
    store: &Store,
    since: i64,
    format: &str,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    if format == "csv" {
        writeln!(out, "seq,time,actor,action,target,request_id,details,prev_hash,hash")?;
    }
    let mut after = 0;
    let mut written = 0;
    loop {
        let page = store
            .audit_records(after, since, EXPORT_PAGE)
            .await
            .context("reading the audit log")?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            match format {
                "csv" => writeln!(out, "{}", csv_line(record))?,
                _ => writeln!(out, "{}", json_line(record))?,
            }
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

fn json_line(record: &AuditRecord) -> serde_json::Value {
    let details: serde_json::Value = serde_json::from_str(&record.details)
        .unwrap_or_else(|_| serde_json::Value::String(record.details.clone()));
    serde_json::json!({
        "seq": record.seq,
        "time": record.time,
        "actor": record.actor,
        "action": record.action,
        "target": record.target,
        "request_id": record.request_id,
        "details": details,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    })
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn csv_line(record: &AuditRecord) -> String {
    [
        record.seq.to_string(),
        record.time.to_string(),
        csv_field(&record.actor),
        csv_field(&record.action),
        csv_field(&record.target),
        csv_field(record.request_id.as_deref().unwrap_or("")),
        csv_field(&record.details),
        record.prev_hash.clone(),
        record.hash.clone(),
    ]
    .join(",")
}

/// Parses `--since`: epoch milliseconds, `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn parse_since(raw: &str) -> anyhow::Result<i64> {
    let raw = raw.trim();
    if let Ok(millis) = raw.parse::<i64>() {
        return Ok(millis);
    }
    let (date, time) = match raw.split_once('T') {
        Some((date, time)) => (date, time.trim_end_matches('Z')),
        None => (raw, "00:00:00"),
    };
    let numbers = |text: &str, separator: char| -> Option<Vec<i64>> {
        text.split(separator).map(|part| part.parse::<i64>().ok()).collect()
    };
    let (Some(ymd), Some(hms)) = (numbers(date, '-'), numbers(time, ':')) else {
        bail!(
            "cannot read --since '{raw}': use epoch milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        );
    };
    let (&[year, month, day], &[hour, minute, second]) = (ymd.as_slice(), hms.as_slice()) else {
        bail!(
            "cannot read --since '{raw}': use epoch milliseconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ"
        );
    };
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        bail!("cannot read --since '{raw}': out-of-range date or time");
    }
    Ok((days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_dates_times_and_millis() {
        assert_eq!(parse_since("0").unwrap(), 0);
        assert_eq!(parse_since("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_since("2026-11-27T00:00:00Z").unwrap(), 1_795_737_600_000);
        assert!(parse_since("yesterday").is_err());
        assert!(parse_since("2026-13-01").is_err());
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("{\"a\":1,\"b\":2}"), "\"{\"\"a\"\":1,\"\"b\"\":2}\"");
    }
}
