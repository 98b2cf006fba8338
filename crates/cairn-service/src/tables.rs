//! Reading the columns of a Parquet or CSV table, one column at a time, into drift
//! [`Values`](cairn_domain::drift::Values), from a local file or from the artifact store.
//!
//! - Parquet is read with a projection on the one column and streamed row group by row group
//!   (ranged reads from the artifact store: the footer, then that column's chunks), so memory
//!   is the column plus one compressed column chunk, whatever the file's size.
//! - CSV is streamed twice: once to infer the column's type (pandas' rules: integers, floats,
//!   booleans, else strings; pandas' missing-value markers), once to parse it.
//! - Floats map to `Floats` (null → NaN), integers to `Integers`, strings, booleans
//!   ("true"/"false") and dictionary-encoded strings to `Labels`. Other types (dates,
//!   decimals, nested) are reported as unsupported.

use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use bytes::Bytes;
use cairn_artifacts::{ArtifactError, ArtifactErrorKind, ArtifactPath, ArtifactStore};
use cairn_domain::drift::{PreparedColumn, Values};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::arrow::async_reader::{AsyncFileReader, ParquetRecordBatchStreamBuilder};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use sink::{Prepared, RawValues, Sink, Target, append_batch};

/// Rows per decoded Arrow batch.
const BATCH_ROWS: usize = 64 * 1024;
/// Bytes fetched from the end of a Parquet file in the first request (footer and metadata).
const FOOTER_PREFETCH: usize = 64 * 1024;

/// A table file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
}

impl TableFormat {
    /// The format a file name's extension names: `.parquet`/`.pq`/`.parq` or `.csv`.
    pub fn from_name(name: &str) -> Option<TableFormat> {
        let lower = name.to_ascii_lowercase();
        if [".parquet", ".pq", ".parq"].iter().any(|ext| lower.ends_with(ext)) {
            Some(TableFormat::Parquet)
        } else if lower.ends_with(".csv") {
            Some(TableFormat::Csv)
        } else {
            None
        }
    }
}

/// What a column holds, as drift statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueType {
    /// Floating-point numbers (read as `Values::Floats`).
    Float,
    /// Integers (read as `Values::Integers`).
    Integer,
    /// Strings or booleans (read as `Values::Labels`).
    Label,
    /// A type drift cannot test, with its name (dates, decimals, nested types).
    Unsupported(String),
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// The column's name.
    pub name: String,
    /// Its value type.
    pub value_type: ValueType,
}

/// Why a table or a column could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// The file name does not say whether it is Parquet or CSV.
    #[error("cannot tell the format of {location}: expected a .parquet or .csv file")]
    UnknownFormat {
        /// The file.
        location: String,
    },
    /// There is no such file.
    #[error("no table at {location}")]
    NotFound {
        /// The file.
        location: String,
    },
    /// The table has no column of that name.
    #[error("{location} has no column {column:?}; its columns are {available}")]
    MissingColumn {
        /// The file.
        location: String,
        /// The column asked for.
        column: String,
        /// The columns it has, comma-separated.
        available: String,
    },
    /// The column's type cannot be read as drift values.
    #[error("column {column:?} of {location} has type {data_type}, which drift cannot test")]
    UnsupportedType {
        /// The file.
        location: String,
        /// The column.
        column: String,
        /// Its type.
        data_type: String,
    },
    /// The file is not a readable table of its format.
    #[error("cannot read {location}: {reason}")]
    Unreadable {
        /// The file.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The artifact store failed.
    #[error("reading {location} from the artifact store: {source}")]
    Storage {
        /// The file.
        location: String,
        /// The store's error.
        #[source]
        source: ArtifactError,
    },
}

/// Where a table is.
#[derive(Debug, Clone)]
enum Location {
    Local(PathBuf),
    Artifact { store: ArtifactStore, path: ArtifactPath },
}

/// A Parquet or CSV table to read columns from, local or in the artifact store.
#[derive(Debug, Clone)]
pub struct TableSource {
    location: Location,
    format: TableFormat,
}

impl TableSource {
    /// A local file, its format named by its extension.
    pub fn local(path: impl Into<PathBuf>) -> Result<TableSource, TableError> {
        let path = path.into();
        let format = TableFormat::from_name(&path.to_string_lossy())
            .ok_or_else(|| TableError::UnknownFormat { location: path.display().to_string() })?;
        Ok(TableSource { location: Location::Local(path), format })
    }

    /// A file in the artifact store, its format named by its extension.
    pub fn artifact(store: ArtifactStore, path: ArtifactPath) -> Result<TableSource, TableError> {
        let format = TableFormat::from_name(path.as_str())
            .ok_or_else(|| TableError::UnknownFormat { location: path.to_string() })?;
        Ok(TableSource { location: Location::Artifact { store, path }, format })
    }

    /// A file in the artifact store read as `format` whatever its name (a content-addressed
    /// blob has none).
    pub fn artifact_as(
        store: ArtifactStore,
        path: ArtifactPath,
        format: TableFormat,
    ) -> TableSource {
        TableSource { location: Location::Artifact { store, path }, format }
    }

    /// The same table read as `format`, whatever its name says.
    pub fn with_format(mut self, format: TableFormat) -> TableSource {
        self.format = format;
        self
    }

    /// The table's format.
    pub fn format(&self) -> TableFormat {
        self.format
    }

    /// The file, for messages: a local path or `artifacts:<path>`.
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Local(path) => path.display().to_string(),
            Location::Artifact { path, .. } => format!("artifacts:{path}"),
        }
    }

    /// The table's columns in file order. For CSV this reads the whole file once to infer
    /// the types.
    pub async fn list_columns(&self) -> Result<Vec<ColumnInfo>, TableError> {
        let location = self.describe();
        match (&self.location, self.format) {
            (Location::Local(path), _) => {
                let path = path.clone();
                let format = self.format;
                blocking(move || list_local(&path, format)).await
            }
            (Location::Artifact { store, path }, TableFormat::Parquet) => {
                let file = StoreFile::open(store, path, &location).await?;
                let builder = ParquetRecordBatchStreamBuilder::new(file)
                    .await
                    .map_err(|error| unreadable(&location, error))?;
                Ok(columns_of_schema(builder.schema()))
            }
            (Location::Artifact { store, path }, TableFormat::Csv) => {
                let reader = store_reader(store, path, &location).await?;
                blocking(move || delimited::list_columns(reader, &location)).await
            }
        }
    }

    /// The number of data rows: from the footer for Parquet, by reading the records for CSV
    /// (the header row excluded).
    pub async fn row_count(&self) -> Result<u64, TableError> {
        let location = self.describe();
        match (&self.location, self.format) {
            (Location::Artifact { store, path }, TableFormat::Parquet) => {
                let file = StoreFile::open(store, path, &location).await?;
                let builder = ParquetRecordBatchStreamBuilder::new(file)
                    .await
                    .map_err(|error| unreadable(&location, error))?;
                Ok(u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0))
            }
            (Location::Artifact { store, path }, TableFormat::Csv) => {
                let reader = store_reader(store, path, &location).await?;
                blocking(move || delimited::count_records(reader, &location)).await
            }
            (Location::Local(path), format) => {
                let path = path.clone();
                blocking(move || {
                    let file = std::fs::File::open(&path)
                        .map_err(|error| unreadable(&path.display().to_string(), error))?;
                    let location = path.display().to_string();
                    match format {
                        TableFormat::Csv => delimited::count_records(file, &location),
                        TableFormat::Parquet => {
                            let reader = parquet::file::reader::SerializedFileReader::new(file)
                                .map_err(|error| unreadable(&location, error))?;
                            use parquet::file::reader::FileReader;
                            Ok(u64::try_from(reader.metadata().file_metadata().num_rows())
                                .unwrap_or(0))
                        }
                    }
                })
                .await
            }
        }
    }

    /// Reads one column. Only that column is decoded; Parquet row groups are streamed.
    pub async fn read_column(&self, column: &str) -> Result<Values, TableError> {
        self.read::<RawValues>(column).await
    }

    /// Reads one column straight into a [`PreparedColumn`] (cleaned, sorted or counted)
    /// without materialising the raw values: about 8 bytes per number and nothing per label
    /// beyond the distinct ones.
    pub async fn read_prepared(&self, column: &str) -> Result<PreparedColumn, TableError> {
        self.read::<Prepared>(column).await
    }

    async fn read<T: Target>(&self, column: &str) -> Result<T::Output, TableError> {
        let location = self.describe();
        match (&self.location, self.format) {
            (Location::Local(path), format) => {
                let path = path.clone();
                let column = column.to_owned();
                blocking(move || read_local::<T>(&path, format, &column)).await
            }
            (Location::Artifact { store, path }, TableFormat::Parquet) => {
                read_store_parquet::<T>(store, path, &location, column).await
            }
            (Location::Artifact { store, path }, TableFormat::Csv) => {
                let reader = store_reader(store, path, &location).await?;
                let column_owned = column.to_owned();
                let location_owned = location.clone();
                let inferred = blocking(move || {
                    delimited::infer_column(reader, &location_owned, &column_owned)
                })
                .await?;
                let reader = store_reader(store, path, &location).await?;
                let column = column.to_owned();
                blocking(move || {
                    let mut sink = T::sink(&inferred.value_type());
                    delimited::parse_column(reader, &location, &column, inferred, &mut sink)?;
                    Ok(T::finish(sink))
                })
                .await
            }
        }
    }
}

/// Lists the columns of a local table (blocking).
pub fn list_local(path: &Path, format: TableFormat) -> Result<Vec<ColumnInfo>, TableError> {
    let location = path.display().to_string();
    match format {
        TableFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(open_file(path)?)
                .map_err(|error| unreadable(&location, error))?;
            Ok(columns_of_schema(builder.schema()))
        }
        TableFormat::Csv => delimited::list_columns(open_local(path)?, &location),
    }
}

/// Reads one column of a local table (blocking): for Parquet only that column's chunks are
/// read, one row group at a time; CSV is read twice (type inference, then parsing).
pub fn read_local_column(
    path: &Path,
    format: TableFormat,
    column: &str,
) -> Result<Values, TableError> {
    read_local::<RawValues>(path, format, column)
}

/// [`read_local_column`] straight into a [`PreparedColumn`] (see [`TableSource::read_prepared`]).
pub fn read_local_prepared(
    path: &Path,
    format: TableFormat,
    column: &str,
) -> Result<PreparedColumn, TableError> {
    read_local::<Prepared>(path, format, column)
}

fn read_local<T: Target>(
    path: &Path,
    format: TableFormat,
    column: &str,
) -> Result<T::Output, TableError> {
    let location = path.display().to_string();
    match format {
        TableFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(open_file(path)?)
                .map_err(|error| unreadable(&location, error))?;
            let (index, value_type) = find_column(builder.schema(), &location, column)?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
            let rows = builder.metadata().file_metadata().num_rows();
            let reader = builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|error| unreadable(&location, error))?;
            let mut sink = T::sink(&value_type);
            // One allocation of the final size, rather than doubling (and copying) as it grows.
            sink.reserve(usize::try_from(rows).unwrap_or(0));
            for batch in reader {
                let batch = batch.map_err(|error| unreadable(&location, error))?;
                append_batch(&mut sink, &location, column, &batch)?;
            }
            Ok(T::finish(sink))
        }
        TableFormat::Csv => {
            let inferred = delimited::infer_column(open_local(path)?, &location, column)?;
            let mut sink = T::sink(&inferred.value_type());
            delimited::parse_column(open_local(path)?, &location, column, inferred, &mut sink)?;
            Ok(T::finish(sink))
        }
    }
}

/// A buffered reader over a local file, for CSV.
fn open_local(path: &Path) -> Result<BufReader<File>, TableError> {
    Ok(BufReader::with_capacity(1 << 20, open_file(path)?))
}

/// A local file (Parquet reads its own ranges).
fn open_file(path: &Path) -> Result<File, TableError> {
    let location = path.display().to_string();
    match File::open(path) {
        Ok(file) => Ok(file),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(TableError::NotFound { location })
        }
        Err(error) => Err(TableError::Unreadable { location, reason: error.to_string() }),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TableError> + Send + 'static,
) -> Result<T, TableError> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|error| {
        Err(TableError::Unreadable {
            location: "table".to_owned(),
            reason: format!("reader task failed: {error}"),
        })
    })
}

fn unreadable(location: &str, error: impl std::fmt::Display) -> TableError {
    TableError::Unreadable { location: location.to_owned(), reason: error.to_string() }
}

fn storage(location: &str, error: ArtifactError) -> TableError {
    if error.kind() == ArtifactErrorKind::NotFound {
        return TableError::NotFound { location: location.to_owned() };
    }
    TableError::Storage { location: location.to_owned(), source: error }
}

/// The drift value type of an Arrow type.
fn value_type_of(data_type: &DataType) -> ValueType {
    match data_type {
        DataType::Float16 | DataType::Float32 | DataType::Float64 => ValueType::Float,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => ValueType::Integer,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean => {
            ValueType::Label
        }
        DataType::Dictionary(_, values)
            if matches!(**values, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
        {
            ValueType::Label
        }
        other => ValueType::Unsupported(other.to_string()),
    }
}

fn columns_of_schema(schema: &Arc<Schema>) -> Vec<ColumnInfo> {
    schema
        .fields()
        .iter()
        .map(|field| ColumnInfo {
            name: field.name().clone(),
            value_type: value_type_of(field.data_type()),
        })
        .collect()
}

/// The root index and value type of `column`, or why it cannot be read.
fn find_column(
    schema: &Arc<Schema>,
    location: &str,
    column: &str,
) -> Result<(usize, ValueType), TableError> {
    let Some(index) = schema.fields().iter().position(|field| field.name() == column) else {
        let available =
            schema.fields().iter().map(|field| field.name().as_str()).collect::<Vec<_>>();
        return Err(TableError::MissingColumn {
            location: location.to_owned(),
            column: column.to_owned(),
            available: available.join(", "),
        });
    };
    match value_type_of(schema.field(index).data_type()) {
        ValueType::Unsupported(data_type) => Err(TableError::UnsupportedType {
            location: location.to_owned(),
            column: column.to_owned(),
            data_type,
        }),
        value_type => Ok((index, value_type)),
    }
}

/// Reads one Parquet column from the artifact store, row group by row group.
async fn read_store_parquet<T: Target>(
    store: &ArtifactStore,
    path: &ArtifactPath,
    location: &str,
    column: &str,
) -> Result<T::Output, TableError> {
    let file = StoreFile::open(store, path, location).await?;
    let builder = ParquetRecordBatchStreamBuilder::new(file)
        .await
        .map_err(|error| unreadable(location, error))?;
    let (index, value_type) = find_column(builder.schema(), location, column)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
    let rows = builder.metadata().file_metadata().num_rows();
    let mut stream = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|error| unreadable(location, error))?;
    let mut sink = T::sink(&value_type);
    sink.reserve(usize::try_from(rows).unwrap_or(0));
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|error| unreadable(location, error))?;
        append_batch(&mut sink, location, column, &batch)?;
    }
    Ok(T::finish(sink))
}

/// A Parquet file in the artifact store, read with ranged requests.
struct StoreFile {
    store: ArtifactStore,
    path: ArtifactPath,
    size: u64,
}

impl StoreFile {
    async fn open(
        store: &ArtifactStore,
        path: &ArtifactPath,
        location: &str,
    ) -> Result<StoreFile, TableError> {
        let size = store.size(path).await.map_err(|error| storage(location, error))?;
        Ok(StoreFile { store: store.clone(), path: path.clone(), size })
    }
}

impl AsyncFileReader for StoreFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|error| ParquetError::External(Box::new(error)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A blocking reader over an artifact's byte stream, fed by an async task, so the CSV
/// parser can run on a blocking thread while the download streams.
async fn store_reader(
    store: &ArtifactStore,
    path: &ArtifactPath,
    location: &str,
) -> Result<ChannelReader, TableError> {
    let outcome = store.get(path).await.map_err(|error| storage(location, error))?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    let mut stream = outcome.stream;
    tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(std::io::Error::other);
            let failed = chunk.is_err();
            if sender.send(chunk).await.is_err() || failed {
                break;
            }
        }
    });
    Ok(ChannelReader { receiver, current: Bytes::new() })
}

/// `Read` over chunks received from a channel (EOF when the sender is dropped).
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let count = buffer.len().min(self.current.len());
        buffer[..count].copy_from_slice(&self.current[..count]);
        let _ = self.current.split_to(count);
        Ok(count)
    }
}

mod delimited;
mod sink;

#[cfg(test)]
mod tests;
