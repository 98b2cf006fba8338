//! CSV columns with pandas' `read_csv` typing, so a CSV gives the columns Evidently would see
//! through pandas: pandas' missing-value markers ("", "NA", "NaN", "null", …) are missing;
//! a column whose other cells all parse as integers is an integer column, as numbers a float
//! column ("inf" included), as True/False a boolean column (read as labels "true"/"false");
//! anything else is a column of strings, kept verbatim. One difference: an integer column
//! with missing cells stays an integer column (pandas turns it into floats).

use std::io::Read;

use super::sink::Sink;
use super::{ColumnInfo, TableError, ValueType};

/// pandas' default `na_values`.
const MISSING_MARKERS: [&str; 19] = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
];

fn is_missing(field: &str) -> bool {
    MISSING_MARKERS.contains(&field)
}

fn parse_bool(field: &str) -> Option<bool> {
    match field {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    }
}

fn parse_integer(field: &str) -> Option<i64> {
    field.trim().parse().ok()
}

fn parse_float(field: &str) -> Option<f64> {
    field.trim().parse().ok()
}

/// The narrowest type that fits every non-missing cell seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inferred {
    /// Only missing cells so far.
    Empty,
    Boolean,
    Integer,
    Float,
    Text,
}

impl Inferred {
    fn widen(self, field: &str) -> Inferred {
        if self == Inferred::Text || is_missing(field) {
            return self;
        }
        if parse_bool(field).is_some() {
            return match self {
                Inferred::Empty | Inferred::Boolean => Inferred::Boolean,
                _ => Inferred::Text,
            };
        }
        if self == Inferred::Boolean {
            return Inferred::Text;
        }
        if matches!(self, Inferred::Empty | Inferred::Integer) && parse_integer(field).is_some() {
            return Inferred::Integer;
        }
        if parse_float(field).is_some() {
            return Inferred::Float;
        }
        Inferred::Text
    }

    pub(super) fn value_type(self) -> ValueType {
        match self {
            // An all-missing column is read as floats, all NaN, as pandas does.
            Inferred::Empty | Inferred::Float => ValueType::Float,
            Inferred::Integer => ValueType::Integer,
            Inferred::Boolean | Inferred::Text => ValueType::Label,
        }
    }
}

fn reader<R: Read>(input: R) -> ::csv::Reader<R> {
    ::csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(input)
}

fn headers<R: Read>(
    reader: &mut ::csv::Reader<R>,
    location: &str,
) -> Result<Vec<String>, TableError> {
    let headers = reader.headers().map_err(|error| super::unreadable(location, error))?;
    Ok(headers.iter().map(str::to_owned).collect())
}

fn column_index(headers: &[String], location: &str, column: &str) -> Result<usize, TableError> {
    headers.iter().position(|name| name == column).ok_or_else(|| TableError::MissingColumn {
        location: location.to_owned(),
        column: column.to_owned(),
        available: headers.join(", "),
    })
}

/// Every column with its inferred type (reads the whole file).
/// Counts the data records of a CSV (the header excluded).
pub(super) fn count_records<R: Read>(input: R, location: &str) -> Result<u64, TableError> {
    let mut reader = reader(input);
    let mut record = ::csv::ByteRecord::new();
    let mut count = 0_u64;
    let unreadable = |error: ::csv::Error| TableError::Unreadable {
        location: location.to_owned(),
        reason: error.to_string(),
    };
    while reader.read_byte_record(&mut record).map_err(unreadable)? {
        count += 1;
    }
    Ok(count)
}

pub(super) fn list_columns<R: Read>(
    input: R,
    location: &str,
) -> Result<Vec<ColumnInfo>, TableError> {
    let mut reader = reader(input);
    let headers = headers(&mut reader, location)?;
    let mut inferred = vec![Inferred::Empty; headers.len()];
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|error| super::unreadable(location, error))? {
        for (state, field) in inferred.iter_mut().zip(record.iter()) {
            *state = state.widen(field);
        }
    }
    Ok(headers
        .into_iter()
        .zip(inferred)
        .map(|(name, state)| ColumnInfo { name, value_type: state.value_type() })
        .collect())
}

/// The type of one column (reads the whole file, stops early once it is text).
pub(super) fn infer_column<R: Read>(
    input: R,
    location: &str,
    column: &str,
) -> Result<Inferred, TableError> {
    let mut state = Inferred::Empty;
    for_each_field(input, location, column, |field| {
        state = state.widen(field);
        Ok(state != Inferred::Text)
    })?;
    Ok(state)
}

/// Calls `visit` with the column's field in every data row until it returns `false`.
fn for_each_field<R: Read>(
    input: R,
    location: &str,
    column: &str,
    mut visit: impl FnMut(&str) -> Result<bool, TableError>,
) -> Result<(), TableError> {
    let mut reader = reader(input);
    let headers = headers(&mut reader, location)?;
    let index = column_index(&headers, location, column)?;
    let mut record = ::csv::StringRecord::new();
    while reader.read_record(&mut record).map_err(|error| super::unreadable(location, error))? {
        if !visit(record.get(index).unwrap_or(""))? {
            break;
        }
    }
    Ok(())
}

/// Parses one column as `inferred` (from [`infer_column`]) into `sink`.
pub(super) fn parse_column<R: Read>(
    input: R,
    location: &str,
    column: &str,
    inferred: Inferred,
    sink: &mut impl Sink,
) -> Result<(), TableError> {
    let mut row = 0usize;
    let changed = |row: usize| {
        super::unreadable(location, format!("column {column:?} changed type at data row {row}"))
    };
    for_each_field(input, location, column, |field| {
        row += 1;
        let missing = is_missing(field);
        match inferred {
            Inferred::Empty | Inferred::Float => {
                let value = if missing {
                    f64::NAN
                } else {
                    parse_float(field).ok_or_else(|| changed(row))?
                };
                sink.float(value);
            }
            Inferred::Integer => {
                let value = if missing {
                    None
                } else {
                    Some(parse_integer(field).ok_or_else(|| changed(row))?)
                };
                sink.integer(value);
            }
            Inferred::Boolean => {
                let value = if missing {
                    None
                } else {
                    let flag = parse_bool(field).ok_or_else(|| changed(row))?;
                    Some(if flag { "true" } else { "false" })
                };
                sink.label(value);
            }
            Inferred::Text => sink.label(if missing { None } else { Some(field) }),
        }
        Ok(true)
    })
}
