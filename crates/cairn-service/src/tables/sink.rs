//! Where decoded column values go: raw [`Values`] or a [`PreparedColumnBuilder`] (cleaned and
//! sorted as it fills), and the conversion of Arrow arrays into either.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use cairn_domain::drift::{PreparedColumn, PreparedColumnBuilder, Values};

use super::{TableError, ValueType, unreadable, value_type_of};

/// What a read produces.
pub(super) trait Target {
    /// Where values are collected.
    type Sink: Sink + Send;
    /// The result.
    type Output: Send + 'static;
    /// An empty collector for a column of this type.
    fn sink(value_type: &ValueType) -> Self::Sink;
    /// The result from the filled collector.
    fn finish(sink: Self::Sink) -> Self::Output;
}

/// Reads raw [`Values`].
pub(super) struct RawValues;

impl Target for RawValues {
    type Sink = ValuesBuilder;
    type Output = Values;

    fn sink(value_type: &ValueType) -> ValuesBuilder {
        ValuesBuilder::new(value_type)
    }

    fn finish(sink: ValuesBuilder) -> Values {
        sink.finish()
    }
}

/// Reads a [`PreparedColumn`].
pub(super) struct Prepared;

impl Target for Prepared {
    type Sink = PreparedColumnBuilder;
    type Output = PreparedColumn;

    fn sink(value_type: &ValueType) -> PreparedColumnBuilder {
        match value_type {
            ValueType::Integer => PreparedColumnBuilder::integers(),
            ValueType::Label => PreparedColumnBuilder::labels(),
            ValueType::Float | ValueType::Unsupported(_) => PreparedColumnBuilder::floats(),
        }
    }

    fn finish(sink: PreparedColumnBuilder) -> PreparedColumn {
        sink.finish()
    }
}

/// Where decoded values go: raw [`Values`] or a [`PreparedColumnBuilder`].
pub(super) trait Sink {
    /// Makes room for `additional` more values.
    fn reserve(&mut self, additional: usize);
    /// A float; NaN for a missing one.
    fn float(&mut self, value: f64);
    /// An integer, `None` when missing.
    fn integer(&mut self, value: Option<i64>);
    /// A label, `None` when missing.
    fn label(&mut self, value: Option<&str>);
}

/// Collects raw [`Values`] of one type.
pub(super) enum ValuesBuilder {
    Floats(Vec<f64>),
    Integers(Vec<Option<i64>>),
    Labels(Vec<Option<String>>),
}

impl ValuesBuilder {
    fn new(value_type: &ValueType) -> ValuesBuilder {
        match value_type {
            ValueType::Integer => ValuesBuilder::Integers(Vec::new()),
            ValueType::Label => ValuesBuilder::Labels(Vec::new()),
            ValueType::Float | ValueType::Unsupported(_) => ValuesBuilder::Floats(Vec::new()),
        }
    }

    fn finish(self) -> Values {
        match self {
            ValuesBuilder::Floats(values) => Values::Floats(values),
            ValuesBuilder::Integers(values) => Values::Integers(values),
            ValuesBuilder::Labels(values) => Values::Labels(values),
        }
    }
}

impl Sink for ValuesBuilder {
    fn reserve(&mut self, additional: usize) {
        match self {
            ValuesBuilder::Floats(values) => values.reserve(additional),
            ValuesBuilder::Integers(values) => values.reserve(additional),
            ValuesBuilder::Labels(values) => values.reserve(additional),
        }
    }

    fn float(&mut self, value: f64) {
        if let ValuesBuilder::Floats(values) = self {
            values.push(value);
        }
    }

    fn integer(&mut self, value: Option<i64>) {
        if let ValuesBuilder::Integers(values) = self {
            values.push(value);
        }
    }

    fn label(&mut self, value: Option<&str>) {
        if let ValuesBuilder::Labels(values) = self {
            values.push(value.map(str::to_owned));
        }
    }
}

impl Sink for PreparedColumnBuilder {
    fn reserve(&mut self, additional: usize) {
        PreparedColumnBuilder::reserve(self, additional);
    }

    fn float(&mut self, value: f64) {
        self.push_float(value);
    }

    fn integer(&mut self, value: Option<i64>) {
        self.push_integer(value);
    }

    fn label(&mut self, value: Option<&str>) {
        self.push_label(value);
    }
}

/// Appends a decoded batch's only column to `sink`.
pub(super) fn append_batch(
    sink: &mut impl Sink,
    location: &str,
    column: &str,
    batch: &RecordBatch,
) -> Result<(), TableError> {
    let array = batch.column(0);
    sink.reserve(array.len());
    let appended = match value_type_of(array.data_type()) {
        ValueType::Float => append_floats(sink, array.as_ref()).map(Ok),
        ValueType::Integer => append_integers(sink, array.as_ref()),
        ValueType::Label => append_labels(sink, array.as_ref()).map(Ok),
        ValueType::Unsupported(_) => None,
    };
    match appended {
        Some(Ok(())) => Ok(()),
        Some(Err(reason)) => Err(unreadable(location, format!("column {column:?}: {reason}"))),
        None => Err(TableError::UnsupportedType {
            location: location.to_owned(),
            column: column.to_owned(),
            data_type: array.data_type().to_string(),
        }),
    }
}

fn append_floats(sink: &mut impl Sink, array: &dyn Array) -> Option<()> {
    let nulls = array.logical_nulls();
    let valid = |i: usize| nulls.as_ref().is_none_or(|nulls| nulls.is_valid(i));
    match array.data_type() {
        DataType::Float64 => {
            let typed = array.as_primitive_opt::<Float64Type>()?;
            if nulls.is_none() {
                typed.values().iter().for_each(|&v| sink.float(v));
            } else {
                for (i, &v) in typed.values().iter().enumerate() {
                    sink.float(if valid(i) { v } else { f64::NAN });
                }
            }
        }
        DataType::Float32 => {
            let typed = array.as_primitive_opt::<Float32Type>()?;
            for (i, &v) in typed.values().iter().enumerate() {
                sink.float(if valid(i) { f64::from(v) } else { f64::NAN });
            }
        }
        DataType::Float16 => {
            let typed = array.as_primitive_opt::<Float16Type>()?;
            for (i, v) in typed.values().iter().enumerate() {
                sink.float(if valid(i) { v.to_f64() } else { f64::NAN });
            }
        }
        _ => return None,
    }
    Some(())
}

/// Appends integers; `None` for a type that is not an integer, `Some(Err)` for an unsigned
/// value beyond i64.
fn append_integers(sink: &mut impl Sink, array: &dyn Array) -> Option<Result<(), String>> {
    fn extend<T: arrow_array::ArrowPrimitiveType>(
        sink: &mut impl Sink,
        array: &dyn Array,
        convert: impl Fn(T::Native) -> Option<i64>,
    ) -> Option<Result<(), String>> {
        let typed = array.as_primitive_opt::<T>()?;
        for item in typed.iter() {
            match item.map(&convert) {
                None => sink.integer(None),
                Some(Some(value)) => sink.integer(Some(value)),
                Some(None) => {
                    return Some(Err("an unsigned value exceeds the i64 range".to_owned()));
                }
            }
        }
        Some(Ok(()))
    }
    match array.data_type() {
        DataType::Int8 => extend::<Int8Type>(sink, array, |v| Some(i64::from(v))),
        DataType::Int16 => extend::<Int16Type>(sink, array, |v| Some(i64::from(v))),
        DataType::Int32 => extend::<Int32Type>(sink, array, |v| Some(i64::from(v))),
        DataType::Int64 => extend::<Int64Type>(sink, array, Some),
        DataType::UInt8 => extend::<UInt8Type>(sink, array, |v| Some(i64::from(v))),
        DataType::UInt16 => extend::<UInt16Type>(sink, array, |v| Some(i64::from(v))),
        DataType::UInt32 => extend::<UInt32Type>(sink, array, |v| Some(i64::from(v))),
        DataType::UInt64 => extend::<UInt64Type>(sink, array, |v| i64::try_from(v).ok()),
        _ => None,
    }
}

fn append_labels(sink: &mut impl Sink, array: &dyn Array) -> Option<()> {
    match array.data_type() {
        DataType::Utf8 => array.as_string_opt::<i32>()?.iter().for_each(|v| sink.label(v)),
        DataType::LargeUtf8 => array.as_string_opt::<i64>()?.iter().for_each(|v| sink.label(v)),
        DataType::Utf8View => array.as_string_view_opt()?.iter().for_each(|v| sink.label(v)),
        DataType::Boolean => array
            .as_boolean_opt()?
            .iter()
            .for_each(|v| sink.label(v.map(|flag| if flag { "true" } else { "false" }))),
        DataType::Dictionary(_, _) => {
            let dictionary = array.as_any_dictionary_opt()?;
            let mut labels = ValuesBuilder::Labels(Vec::new());
            append_labels(&mut labels, dictionary.values().as_ref())?;
            let ValuesBuilder::Labels(labels) = labels else { return None };
            let nulls = array.logical_nulls();
            for (row, key) in dictionary.normalized_keys().into_iter().enumerate() {
                let valid = nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row));
                let label = if valid { labels.get(key).and_then(Option::as_deref) } else { None };
                sink.label(label);
            }
        }
        _ => return None,
    }
    Some(())
}
