//! Prediction capture: every served row (or a sample) as a Parquet record in the artifact store,
//! partitioned by deployment and day — `captures/<deployment>/date=YYYY-MM-DD/<file>.parquet` —
//! the input of monitoring, readable by any Parquet engine.
//!
//! Requests append their records to a bounded in-memory queue and never wait for storage (nor
//! wake anything: the writer is woken only when 10,000 rows are waiting). One background task
//! per replica drains it and writes a file per deployment and day every few seconds (or every
//! 10,000 rows), atomically (a file is visible whole or not at all). A failed write keeps the
//! records and retries at the next tick; `flush` (called on graceful shutdown) writes everything
//! queued before it returns. Records are dropped only if the queue is full (100,000 records
//! waiting), which is counted and logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow_array::builder::{
    Float32Builder, Int64Builder, ListBuilder, StringBuilder, UInt32Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use cairn_artifacts::{ArtifactPath, ArtifactStore};
use tokio::sync::{mpsc, oneshot};

/// One captured row.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRecord {
    /// The request's prediction id (shared by every row of a request).
    pub prediction_id: Arc<str>,
    /// The row's position in its request.
    pub row: u32,
    /// When the request arrived (epoch ms).
    pub timestamp_ms: i64,
    /// The deployment.
    pub deployment: Arc<str>,
    /// The deployment revision in force.
    pub revision: i64,
    /// The model that answered.
    pub model: Arc<str>,
    /// Its version.
    pub version: i64,
    /// `primary` (returned to the caller) or `shadow` (captured only).
    pub variant: &'static str,
    /// The row's features, in the model's input order.
    pub features: Vec<f32>,
    /// The row's outputs as a JSON object (`{"label": 1, "probabilities": [..]}`).
    pub outputs: String,
    /// The model's time for the whole request, in microseconds.
    pub latency_us: i64,
}

/// Rows of one deployment and day, appended straight into Arrow builders: a captured row
/// leaves no long-lived allocation of its own behind (the builders grow geometrically).
struct Group {
    first_ms: i64,
    rows: usize,
    prediction_id: StringBuilder,
    row: UInt32Builder,
    timestamp_ms: Int64Builder,
    deployment: StringBuilder,
    revision: Int64Builder,
    model: StringBuilder,
    version: Int64Builder,
    variant: StringBuilder,
    features: ListBuilder<Float32Builder>,
    outputs: StringBuilder,
    latency_us: Int64Builder,
}

impl Group {
    /// Builders sized for a few thousand rows up front (they regrow rarely on the way to
    /// `FILE_ROWS`, when the writer is woken), without reserving a whole file for a
    /// deployment that sees a trickle.
    fn new(first_ms: i64, width: usize) -> Self {
        let rows = INITIAL_GROUP_ROWS;
        Self {
            first_ms,
            rows: 0,
            prediction_id: StringBuilder::with_capacity(rows, rows * 36),
            row: UInt32Builder::with_capacity(rows),
            timestamp_ms: Int64Builder::with_capacity(rows),
            deployment: StringBuilder::with_capacity(rows, rows * 16),
            revision: Int64Builder::with_capacity(rows),
            model: StringBuilder::with_capacity(rows, rows * 16),
            version: Int64Builder::with_capacity(rows),
            variant: StringBuilder::with_capacity(rows, rows * 7),
            features: ListBuilder::with_capacity(Float32Builder::with_capacity(rows * width), rows)
                .with_field(Arc::new(Field::new("item", DataType::Float32, true))),
            outputs: StringBuilder::with_capacity(rows, rows * 64),
            latency_us: Int64Builder::with_capacity(rows),
        }
    }

    fn append(&mut self, record: &CaptureRecord) {
        self.rows += 1;
        self.prediction_id.append_value(&record.prediction_id);
        self.row.append_value(record.row);
        self.timestamp_ms.append_value(record.timestamp_ms);
        self.deployment.append_value(&record.deployment);
        self.revision.append_value(record.revision);
        self.model.append_value(&record.model);
        self.version.append_value(record.version);
        self.variant.append_value(record.variant);
        self.features.values().append_slice(&record.features);
        self.features.append(true);
        self.outputs.append_value(&record.outputs);
        self.latency_us.append_value(record.latency_us);
    }

    fn finish(mut self) -> Result<RecordBatch, String> {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.prediction_id.finish()),
            Arc::new(self.row.finish()),
            Arc::new(self.timestamp_ms.finish()),
            Arc::new(self.deployment.finish()),
            Arc::new(self.revision.finish()),
            Arc::new(self.model.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.variant.finish()),
            Arc::new(self.features.finish()),
            Arc::new(self.outputs.finish()),
            Arc::new(self.latency_us.finish()),
        ];
        RecordBatch::try_new(schema(), columns).map_err(|e| e.to_string())
    }
}

/// What waits for the writer: rows grouped by deployment and day.
#[derive(Default)]
struct Pending {
    groups: HashMap<(Arc<str>, i64), Group>,
    rows: usize,
}

/// The rows waiting for the writer, and how the writer is woken.
#[derive(Default)]
struct Queue {
    pending: std::sync::Mutex<Pending>,
    full: tokio::sync::Notify,
}

impl Queue {
    fn take(&self) -> Vec<((Arc<str>, i64), Group)> {
        self.pending
            .lock()
            .map(|mut pending| {
                pending.rows = 0;
                pending.groups.drain().collect()
            })
            .unwrap_or_default()
    }
}

/// The capture pipeline of one replica.
#[derive(Clone)]
pub struct CaptureSink {
    queue: Arc<Queue>,
    flushes: mpsc::Sender<oneshot::Sender<()>>,
    dropped: Arc<AtomicU64>,
}

const QUEUE_RECORDS: usize = 100_000;
const FILE_ROWS: usize = 10_000;
const INITIAL_GROUP_ROWS: usize = 2_048;

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("prediction_id", DataType::Utf8, false),
        Field::new("row", DataType::UInt32, false),
        Field::new("timestamp_ms", DataType::Int64, false),
        Field::new("deployment", DataType::Utf8, false),
        Field::new("revision", DataType::Int64, false),
        Field::new("model", DataType::Utf8, false),
        Field::new("version", DataType::Int64, false),
        Field::new("variant", DataType::Utf8, false),
        Field::new(
            "features",
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            false,
        ),
        Field::new("outputs", DataType::Utf8, false),
        Field::new("latency_us", DataType::Int64, false),
    ]))
}

/// Encodes records as one Parquet file.
pub fn encode_parquet(records: &[CaptureRecord]) -> Result<Vec<u8>, String> {
    let mut group = Group::new(
        records.first().map_or(0, |r| r.timestamp_ms),
        records.first().map_or(0, |r| r.features.len()),
    );
    for record in records {
        group.append(record);
    }
    encode_batch(&group.finish()?)
}

/// Encodes one batch as a Parquet file.
fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    // Prediction ids and outputs are (nearly) unique per row: dictionary encoding would only
    // be tried and abandoned. Snappy keeps the files small for little CPU.
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_column_dictionary_enabled("prediction_id".into(), false)
        .set_column_dictionary_enabled("outputs".into(), false)
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(properties))
            .map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes)
}

const DAY_MS: i64 = 86_400_000;

/// The UTC day (`YYYY-MM-DD`) of the day number `day` (days since the epoch).
fn day_name(day: i64) -> String {
    cairn_domain::time::format_utc(day * DAY_MS).chars().take(10).collect()
}

struct Writer {
    store: ArtifactStore,
    replica: String,
    sequence: u64,
    /// Batches whose write failed, kept for the next attempt.
    failed: Vec<((Arc<str>, i64), i64, RecordBatch)>,
}

impl Writer {
    /// Writes everything queued (and everything that failed before), one file per deployment
    /// and day; what fails is kept for the next attempt.
    async fn write_all(&mut self, queue: &Queue) {
        let mut batches = std::mem::take(&mut self.failed);
        for (key, group) in queue.take() {
            let first_ms = group.first_ms;
            match group.finish() {
                Ok(batch) => batches.push((key, first_ms, batch)),
                Err(error) => tracing::error!(%error, "captured rows could not form a batch"),
            }
        }
        for ((deployment, day), first_ms, batch) in batches {
            self.sequence += 1;
            let path = format!(
                "captures/{deployment}/date={}/{first_ms}-{}-{:06}.parquet",
                day_name(day),
                self.replica,
                self.sequence
            );
            // Encoding is CPU work: off the request-serving workers.
            let (encoded, batch) = tokio::task::spawn_blocking(move || {
                let encoded = encode_batch(&batch);
                (encoded, batch)
            })
            .await
            .unwrap_or_else(|_| {
                (Err("the Parquet encoder panicked".into()), RecordBatch::new_empty(schema()))
            });
            let written = match (encoded, ArtifactPath::parse(&path)) {
                (Ok(bytes), Ok(path)) => {
                    let body =
                        futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(bytes))]);
                    self.store.put_stream(&path, body).await.map(|_| ()).map_err(|e| e.to_string())
                }
                (Err(error), _) => Err(error),
                (_, Err(error)) => Err(error.to_string()),
            };
            if let Err(error) = written {
                tracing::warn!(%error, rows = batch.num_rows(), deployment = %deployment, "capture write failed; retrying at the next flush");
                self.failed.push(((deployment, day), first_ms, batch));
            }
        }
    }
}

impl CaptureSink {
    /// Starts the pipeline (on the current tokio runtime), flushing every `interval`.
    pub fn start(store: ArtifactStore, interval: Duration) -> Self {
        let queue = Arc::new(Queue::default());
        let (flushes, mut flush_requests) = mpsc::channel::<oneshot::Sender<()>>(16);
        let mut writer = Writer {
            store,
            replica: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            sequence: 0,
            failed: Vec::new(),
        };
        let shared = Arc::clone(&queue);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    request = flush_requests.recv() => {
                        writer.write_all(&shared).await;
                        match request {
                            Some(done) => { let _ = done.send(()); }
                            None => break,
                        }
                    }
                    () = shared.full.notified() => writer.write_all(&shared).await,
                    _ = tick.tick() => writer.write_all(&shared).await,
                }
            }
        });
        Self { queue, flushes, dropped: Arc::default() }
    }

    /// Queues records without waiting; counts them as dropped if the queue is full.
    pub fn submit(&self, records: Vec<CaptureRecord>) {
        if records.is_empty() {
            return;
        }
        let count = records.len();
        let Ok(mut pending) = self.queue.pending.lock() else { return };
        if pending.rows + count > QUEUE_RECORDS {
            drop(pending);
            let total = self.dropped.fetch_add(count as u64, Ordering::Relaxed) + count as u64;
            tracing::warn!(dropped = total, "prediction capture is backed up; records dropped");
            return;
        }
        let before = pending.rows;
        pending.rows += count;
        for record in &records {
            let key = (Arc::clone(&record.deployment), record.timestamp_ms.div_euclid(DAY_MS));
            pending
                .groups
                .entry(key)
                .or_insert_with(|| Group::new(record.timestamp_ms, record.features.len()))
                .append(record);
        }
        let crossed = before < FILE_ROWS && pending.rows >= FILE_ROWS;
        drop(pending);
        drop(records);
        if crossed {
            self.queue.full.notify_one();
        }
    }

    /// Writes everything submitted so far; returns when it is stored (or failed and is kept).
    pub async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if self.flushes.send(done).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Records dropped because the pipeline was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_encode_as_parquet_with_their_schema() {
        let record = CaptureRecord {
            prediction_id: "p1".into(),
            row: 0,
            timestamp_ms: 1_790_000_000_000,
            deployment: "d".into(),
            revision: 2,
            model: "m".into(),
            version: 3,
            variant: "primary",
            features: vec![1.0, 2.5],
            outputs: "{\"label\":1}".into(),
            latency_us: 40,
        };
        let bytes = encode_parquet(&[record.clone(), record]).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(RecordBatch::num_rows).sum::<usize>(), 2);
        assert_eq!(batches[0].schema().field(8).name(), "features");
        assert_eq!(day_name(1_790_000_000_000_i64.div_euclid(DAY_MS)), "2026-09-21");
    }
}
