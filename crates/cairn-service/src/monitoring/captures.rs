//! Reading a deployment's captured predictions for a window: the Parquet files under
//! `captures/<deployment>/date=YYYY-MM-DD/`, primary answers only, rows whose request time is
//! in [start, end).

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type, UInt32Type};
use arrow_array::{Array, RecordBatch};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::{ArtifactService, ServiceError, ServiceResult};

const DAY_MS: i64 = 86_400_000;

/// The captured rows of a window, column by column.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Rows read.
    pub rows: usize,
    /// For each requested feature position, its values (NaN when the row had fewer features).
    pub features: Vec<Vec<f64>>,
    /// Each row's outputs (JSON text), when asked for.
    pub outputs: Vec<String>,
    /// Each row's prediction id and row index, when outputs are asked for.
    pub ids: Vec<(String, u32)>,
}

fn unreadable(path: &str, error: impl std::fmt::Display) -> ServiceError {
    ServiceError::internal(format!("capture file '{path}' is unreadable: {error}"))
}

/// Reads the window's rows: `positions` are the feature positions wanted (in the model's input
/// order); `outputs` also keeps outputs and ids (for prediction drift and quality).
pub(crate) async fn read_window(
    artifacts: &ArtifactService,
    deployment: &str,
    start: i64,
    end: i64,
    positions: &[usize],
    outputs: bool,
) -> ServiceResult<Window> {
    let mut window = Window { features: vec![Vec::new(); positions.len()], ..Window::default() };
    let first_day = start.div_euclid(DAY_MS);
    let last_day = (end - 1).div_euclid(DAY_MS);
    for day in first_day..=last_day {
        let name: String = cairn_domain::time::format_utc(day * DAY_MS).chars().take(10).collect();
        let directory = format!("captures/{deployment}/date={name}");
        let files = match artifacts.list_internal(&directory).await {
            Ok(files) => files,
            Err(error) if error.kind == cairn_domain::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        for file in files.iter().filter(|f| !f.is_dir && f.path.ends_with(".parquet")) {
            // Files are named `<first timestamp>-<replica>-<sequence>.parquet`: one that
            // starts after the window holds nothing in it.
            let first = file
                .path
                .rsplit('/')
                .next()
                .and_then(|name| name.split('-').next())
                .and_then(|ms| ms.parse::<i64>().ok());
            if first.is_some_and(|first| first >= end) {
                continue;
            }
            let bytes = artifacts.read_internal(&file.path).await?;
            let path = file.path.clone();
            let positions = positions.to_vec();
            let part = tokio::task::spawn_blocking(move || {
                read_file(&path, bytes::Bytes::from(bytes), start, end, &positions, outputs)
            })
            .await
            .map_err(|error| ServiceError::internal(error.to_string()))??;
            window.rows += part.rows;
            for (all, more) in window.features.iter_mut().zip(part.features) {
                all.extend(more);
            }
            window.outputs.extend(part.outputs);
            window.ids.extend(part.ids);
        }
    }
    Ok(window)
}

fn read_file(
    path: &str,
    bytes: bytes::Bytes,
    start: i64,
    end: i64,
    positions: &[usize],
    outputs: bool,
) -> ServiceResult<Window> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| unreadable(path, e))?;
    let wanted: &[&str] = if outputs {
        &["prediction_id", "row", "timestamp_ms", "variant", "features", "outputs"]
    } else {
        &["timestamp_ms", "variant", "features"]
    };
    let schema = builder.parquet_schema();
    let roots: Vec<usize> = wanted
        .iter()
        .map(|name| {
            builder
                .schema()
                .index_of(name)
                .map_err(|_| unreadable(path, format!("no column '{name}'")))
        })
        .collect::<ServiceResult<_>>()?;
    let mask = ProjectionMask::roots(schema, roots);
    let reader = builder.with_projection(mask).build().map_err(|e| unreadable(path, e))?;
    let mut window = Window { features: vec![Vec::new(); positions.len()], ..Window::default() };
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(path, e))?;
        append_batch(&mut window, &batch, start, end, positions, outputs)
            .map_err(|e| unreadable(path, e))?;
    }
    Ok(window)
}

fn append_batch(
    window: &mut Window,
    batch: &RecordBatch,
    start: i64,
    end: i64,
    positions: &[usize],
    outputs: bool,
) -> Result<(), String> {
    let column = |name: &str| batch.column_by_name(name).ok_or(format!("no column '{name}'"));
    let times = column("timestamp_ms")?
        .as_primitive_opt::<Int64Type>()
        .ok_or("timestamp_ms is not int64")?;
    let variants = column("variant")?.as_string_opt::<i32>().ok_or("variant is not text")?;
    let features = column("features")?.as_list_opt::<i32>().ok_or("features is not a list")?;
    let values =
        features.values().as_primitive_opt::<Float32Type>().ok_or("features are not float32")?;
    let offsets = features.value_offsets();
    let (ids, rows, answers) = if outputs {
        (
            Some(column("prediction_id")?.as_string_opt::<i32>().ok_or("prediction_id")?),
            Some(column("row")?.as_primitive_opt::<UInt32Type>().ok_or("row")?),
            Some(column("outputs")?.as_string_opt::<i32>().ok_or("outputs")?),
        )
    } else {
        (None, None, None)
    };
    for index in 0..batch.num_rows() {
        let time = times.value(index);
        if time < start || time >= end || variants.value(index) != "primary" {
            continue;
        }
        window.rows += 1;
        let from = offsets[index] as usize;
        let width = offsets[index + 1] as usize - from;
        for (out, &position) in window.features.iter_mut().zip(positions) {
            out.push(if position < width && !values.is_null(from + position) {
                f64::from(values.value(from + position))
            } else {
                f64::NAN
            });
        }
        if let (Some(ids), Some(rows), Some(answers)) = (ids, rows, answers) {
            window.ids.push((ids.value(index).to_string(), rows.value(index)));
            window.outputs.push(answers.value(index).to_string());
        }
    }
    Ok(())
}
