//! Reading a monitor's reference file (Parquet or CSV, already in memory because its digest was
//! checked) column by column, and ground truth posted as Parquet.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type,
    UInt32Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;
use bytes::Bytes;
use cairn_domain::drift::Values;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::GroundTruthRow;

fn is_parquet(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[..4] == b"PAR1"
}

/// The column names of a Parquet or CSV file.
pub(crate) fn list_columns(bytes: Bytes) -> Result<Vec<String>, String> {
    if is_parquet(&bytes) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
        return Ok(builder.schema().fields().iter().map(|f| f.name().clone()).collect());
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(&bytes[..]);
    let headers = reader.headers().map_err(|e| format!("not Parquet, and not CSV: {e}"))?;
    Ok(headers.iter().map(|h| h.trim().to_string()).collect())
}

/// One Arrow array as drift values: floats, integers or labels.
fn append(values: &mut Option<Values>, array: &ArrayRef) -> Result<(), String> {
    macro_rules! ints {
        ($t:ty) => {{
            let array = array.as_primitive::<$t>();
            let Values::Integers(out) = values.get_or_insert(Values::Integers(Vec::new())) else {
                return Err("the column changes type between row groups".into());
            };
            out.extend(
                (0..array.len()).map(|i| (!array.is_null(i)).then(|| i64::from(array.value(i)))),
            );
        }};
    }
    match array.data_type() {
        DataType::Float64 | DataType::Float32 => {
            let Values::Floats(out) = values.get_or_insert(Values::Floats(Vec::new())) else {
                return Err("the column changes type between row groups".into());
            };
            if let Some(array) = array.as_primitive_opt::<Float64Type>() {
                out.extend(
                    (0..array.len())
                        .map(|i| if array.is_null(i) { f64::NAN } else { array.value(i) }),
                );
            } else {
                let array = array.as_primitive::<Float32Type>();
                out.extend(
                    (0..array.len()).map(|i| {
                        if array.is_null(i) { f64::NAN } else { f64::from(array.value(i)) }
                    }),
                );
            }
        }
        DataType::Int64 => ints!(Int64Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int8 => ints!(Int8Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt8 => ints!(UInt8Type),
        _ => {
            let Values::Labels(out) = values.get_or_insert(Values::Labels(Vec::new())) else {
                return Err("the column changes type between row groups".into());
            };
            let text = arrow_cast_to_strings(array)?;
            out.extend(text);
        }
    }
    Ok(())
}

fn arrow_cast_to_strings(array: &ArrayRef) -> Result<Vec<Option<String>>, String> {
    if let Some(strings) = array.as_string_opt::<i32>() {
        return Ok((0..strings.len())
            .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string()))
            .collect());
    }
    if let Some(strings) = array.as_string_opt::<i64>() {
        return Ok((0..strings.len())
            .map(|i| (!strings.is_null(i)).then(|| strings.value(i).to_string()))
            .collect());
    }
    if let Some(flags) = array.as_boolean_opt() {
        return Ok((0..flags.len())
            .map(|i| (!flags.is_null(i)).then(|| flags.value(i).to_string()))
            .collect());
    }
    Err(format!(
        "columns of type {} are not supported (numbers, text or booleans)",
        array.data_type()
    ))
}

/// One column of a Parquet or CSV file as drift values.
pub(crate) fn read_column(bytes: Bytes, column: &str) -> Result<Values, String> {
    if is_parquet(&bytes) {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| e.to_string())?;
        let index =
            builder.schema().index_of(column).map_err(|_| format!("no column '{column}'"))?;
        let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
        let reader = builder.with_projection(mask).build().map_err(|e| e.to_string())?;
        let mut values = None;
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            append(&mut values, batch.column(0))?;
        }
        return Ok(values.unwrap_or(Values::Floats(Vec::new())));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(&bytes[..]);
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let index =
        headers.iter().position(|h| h.trim() == column).ok_or(format!("no column '{column}'"))?;
    let mut cells = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        cells.push(record.get(index).unwrap_or("").trim().to_string());
    }
    // pandas' inference: all integers → integers, all numbers → floats, else labels; empty
    // cells are missing.
    let present = || cells.iter().filter(|c| !c.is_empty());
    if present().all(|c| c.parse::<i64>().is_ok()) {
        return Ok(Values::Integers(cells.iter().map(|c| c.parse().ok()).collect()));
    }
    if present().all(|c| c.parse::<f64>().is_ok()) {
        return Ok(Values::Floats(cells.iter().map(|c| c.parse().unwrap_or(f64::NAN)).collect()));
    }
    Ok(Values::Labels(cells.into_iter().map(|c| (!c.is_empty()).then_some(c)).collect()))
}

/// Ground truth posted as Parquet: columns `prediction_id`, `value` and optionally `row`.
pub(crate) fn ground_truth_parquet(bytes: Bytes) -> Result<Vec<GroundTruthRow>, String> {
    if !is_parquet(&bytes) {
        return Err("the body is not a Parquet file".into());
    }
    let ids = read_column(bytes.clone(), "prediction_id")?;
    let values = read_column(bytes.clone(), "value")?;
    let rows = match read_column(bytes, "row") {
        Ok(Values::Integers(rows)) => Some(rows),
        Ok(_) => return Err("the row column must hold integers".into()),
        Err(_) => None,
    };
    let Values::Labels(ids) = ids else {
        return Err("the prediction_id column must hold text".into());
    };
    let cell = |index: usize| -> Value {
        match &values {
            Values::Floats(v) => {
                serde_json::Number::from_f64(v[index]).map_or(Value::Null, Value::Number)
            }
            Values::Integers(v) => v[index].map_or(Value::Null, Value::from),
            Values::Labels(v) => v[index].clone().map_or(Value::Null, Value::String),
        }
    };
    ids.iter()
        .enumerate()
        .map(|(index, id)| {
            Ok(GroundTruthRow {
                prediction_id: id
                    .clone()
                    .ok_or(format!("row {}: prediction_id is missing", index + 1))?,
                row: rows.as_ref().and_then(|rows| rows[index]).unwrap_or(0),
                value: cell(index),
            })
        })
        .collect()
}
