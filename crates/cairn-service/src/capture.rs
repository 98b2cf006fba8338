//! Prediction capture: every served row (or a sample) as a Parquet record in the artifact store,
//! partitioned by deployment and day — `captures/<deployment>/date=YYYY-MM-DD/<file>.parquet` —
//! the input of monitoring, readable by any Parquet engine.
//!
//! Requests hand their records to a bounded channel and never wait for storage. One background
//! task per replica batches them and writes a file per deployment and day every few seconds (or
//! every 10,000 rows), atomically (a file is visible whole or not at all). A failed write keeps
//! the records and retries at the next tick; `flush` (called on graceful shutdown) writes
//! everything buffered before it returns. Records are dropped only if the channel is full
//! (100,000 records waiting), which is counted and logged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow_array::builder::{Float32Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
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

enum Message {
    Records(Vec<CaptureRecord>),
    Flush(oneshot::Sender<()>),
}

/// The capture pipeline of one replica.
#[derive(Clone)]
pub struct CaptureSink {
    sender: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

const CHANNEL_RECORDS: usize = 100_000;
const FILE_ROWS: usize = 10_000;

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
    let strings = |f: &dyn Fn(&CaptureRecord) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(records.iter().map(f)))
    };
    let mut features = ListBuilder::new(Float32Builder::new());
    for record in records {
        features.values().append_slice(&record.features);
        features.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(&|r| &r.prediction_id),
        Arc::new(UInt32Array::from_iter_values(records.iter().map(|r| r.row))),
        Arc::new(Int64Array::from_iter_values(records.iter().map(|r| r.timestamp_ms))),
        strings(&|r| &r.deployment),
        Arc::new(Int64Array::from_iter_values(records.iter().map(|r| r.revision))),
        strings(&|r| &r.model),
        Arc::new(Int64Array::from_iter_values(records.iter().map(|r| r.version))),
        strings(&|r| r.variant),
        Arc::new(features.finish()),
        strings(&|r| r.outputs.as_str()),
        Arc::new(Int64Array::from_iter_values(records.iter().map(|r| r.latency_us))),
    ];
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| e.to_string())?;
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
    writer.write(&batch).map_err(|e| e.to_string())?;
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
    buffer: Vec<CaptureRecord>,
}

impl Writer {
    /// Writes everything buffered, one file per deployment and day; what fails stays buffered.
    async fn write_all(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut groups: BTreeMap<(Arc<str>, i64), Vec<CaptureRecord>> = BTreeMap::new();
        for record in self.buffer.drain(..) {
            groups
                .entry((Arc::clone(&record.deployment), record.timestamp_ms.div_euclid(DAY_MS)))
                .or_default()
                .push(record);
        }
        for ((deployment, day), records) in groups {
            self.sequence += 1;
            let path = format!(
                "captures/{deployment}/date={}/{}-{}-{:06}.parquet",
                day_name(day),
                records[0].timestamp_ms,
                self.replica,
                self.sequence
            );
            // Encoding is CPU work: off the request-serving workers.
            let (encoded, records) = tokio::task::spawn_blocking(move || {
                let encoded = encode_parquet(&records);
                (encoded, records)
            })
            .await
            .unwrap_or_else(|_| (Err("the Parquet encoder panicked".into()), Vec::new()));
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
                tracing::warn!(%error, rows = records.len(), deployment = %deployment, "capture write failed; retrying at the next flush");
                self.buffer.extend(records);
            }
        }
    }
}

impl CaptureSink {
    /// Starts the pipeline (on the current tokio runtime), flushing every `interval`.
    pub fn start(store: ArtifactStore, interval: Duration) -> Self {
        let (sender, mut receiver) = mpsc::channel::<Message>(CHANNEL_RECORDS / 10);
        let mut writer = Writer {
            store,
            replica: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            sequence: 0,
            buffer: Vec::new(),
        };
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    message = receiver.recv() => match message {
                        Some(Message::Records(records)) => {
                            writer.buffer.extend(records);
                            if writer.buffer.len() >= FILE_ROWS {
                                writer.write_all().await;
                            }
                        }
                        Some(Message::Flush(done)) => {
                            writer.write_all().await;
                            let _ = done.send(());
                        }
                        None => {
                            writer.write_all().await;
                            break;
                        }
                    },
                    _ = tick.tick() => writer.write_all().await,
                }
            }
        });
        Self { sender, dropped: Arc::default() }
    }

    /// Hands records to the pipeline without waiting; counts them as dropped if it is full.
    pub fn submit(&self, records: Vec<CaptureRecord>) {
        if records.is_empty() {
            return;
        }
        let count = records.len() as u64;
        if self.sender.try_send(Message::Records(records)).is_err() {
            let total = self.dropped.fetch_add(count, Ordering::Relaxed) + count;
            tracing::warn!(dropped = total, "prediction capture is backed up; records dropped");
        }
    }

    /// Writes everything submitted so far; returns when it is stored (or failed and is kept).
    pub async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
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
