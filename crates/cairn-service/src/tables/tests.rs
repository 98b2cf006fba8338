//! Reading columns from Parquet and CSV, locally and through a (local) artifact store.

use std::sync::Arc;

use arrow_array::builder::StringDictionaryBuilder;
use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, UInt8Array,
};
use cairn_artifacts::{ArtifactPath, ArtifactStore, S3Options};
use cairn_domain::drift::Values;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::{TableError, TableFormat, TableSource, ValueType};

/// Writes a Parquet file of two row groups (three rows each) with one column per type.
fn write_parquet(path: &std::path::Path) {
    let mut dictionary = StringDictionaryBuilder::<Int8Type>::new();
    for value in [Some("x"), None, Some("y"), Some("x"), Some("x"), Some("z")] {
        match value {
            Some(value) => {
                dictionary.append_value(value);
            }
            None => dictionary.append_null(),
        }
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "float",
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                None,
                Some(f64::INFINITY),
                Some(-2.0),
                Some(0.0),
                Some(3.0),
            ])),
        ),
        ("float32", Arc::new(Float32Array::from(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]))),
        (
            "int",
            Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(4), Some(5), Some(6)])),
        ),
        ("uint8", Arc::new(UInt8Array::from(vec![1u8, 2, 3, 4, 5, 250]))),
        (
            "label",
            Arc::new(StringArray::from(vec![
                Some("a"),
                Some("b"),
                None,
                Some("a"),
                Some("c"),
                Some("a"),
            ])),
        ),
        (
            "flag",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
                Some(true),
                Some(false),
            ])),
        ),
        ("dictionary", Arc::new(dictionary.finish())),
        ("date", Arc::new(Date32Array::from(vec![1, 2, 3, 4, 5, 6]))),
    ];
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let file = std::fs::File::create(path).expect("create");
    let properties = WriterProperties::builder().set_max_row_group_row_count(Some(3)).build();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), Some(properties)).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

fn expected_parquet_columns() -> Vec<(&'static str, Values)> {
    let labels = |values: &[Option<&str>]| {
        Values::Labels(values.iter().map(|v| v.map(str::to_owned)).collect())
    };
    vec![
        ("float32", Values::Floats(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        ("int", Values::Integers(vec![Some(1), Some(2), None, Some(4), Some(5), Some(6)])),
        ("uint8", Values::Integers(vec![Some(1), Some(2), Some(3), Some(4), Some(5), Some(250)])),
        ("label", labels(&[Some("a"), Some("b"), None, Some("a"), Some("c"), Some("a")])),
        (
            "flag",
            labels(&[Some("true"), Some("false"), None, Some("true"), Some("true"), Some("false")]),
        ),
        ("dictionary", labels(&[Some("x"), None, Some("y"), Some("x"), Some("x"), Some("z")])),
    ]
}

fn assert_float_column(values: &Values) {
    let Values::Floats(floats) = values else { panic!("floats: {values:?}") };
    assert_eq!(floats.len(), 6);
    assert_eq!(floats[0], 1.5);
    assert!(floats[1].is_nan(), "a null float reads as NaN");
    assert_eq!(floats[2], f64::INFINITY);
    assert_eq!(&floats[3..], &[-2.0, 0.0, 3.0]);
}

async fn check_source(source: &TableSource) {
    let columns = source.list_columns().await.expect("list");
    let types: Vec<(&str, &ValueType)> =
        columns.iter().map(|c| (c.name.as_str(), &c.value_type)).collect();
    assert_eq!(types[0], ("float", &ValueType::Float));
    assert_eq!(types[2], ("int", &ValueType::Integer));
    assert_eq!(types[5], ("flag", &ValueType::Label));
    assert_eq!(types[6], ("dictionary", &ValueType::Label));
    assert!(matches!(types[7], ("date", ValueType::Unsupported(_))), "{types:?}");

    assert_float_column(&source.read_column("float").await.expect("float"));
    for (name, expected) in expected_parquet_columns() {
        assert_eq!(source.read_column(name).await.expect(name), expected, "{name}");
    }
    // Prepared columns hold the cleaned values only.
    let prepared = source.read_prepared("float").await.expect("prepared float");
    assert_eq!((prepared.input_rows(), prepared.rows()), (6, 4));
    let prepared = source.read_prepared("dictionary").await.expect("prepared dictionary");
    assert_eq!((prepared.input_rows(), prepared.rows()), (6, 5));
    let missing = source.read_column("nope").await.unwrap_err();
    assert!(
        matches!(&missing, TableError::MissingColumn { available, .. } if available.contains("float, float32")),
        "{missing}"
    );
    let unsupported = source.read_column("date").await.unwrap_err();
    assert!(matches!(unsupported, TableError::UnsupportedType { .. }), "{unsupported}");
}

#[tokio::test]
async fn parquet_columns_read_locally_and_from_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("store/tables")).expect("mkdir");
    let path = dir.path().join("store/tables/t.parquet");
    write_parquet(&path);

    check_source(&TableSource::local(&path).expect("local")).await;

    let store =
        ArtifactStore::open(&dir.path().join("store").display().to_string(), &S3Options::default())
            .expect("store");
    let artifact = ArtifactPath::parse("tables/t.parquet").expect("path");
    check_source(&TableSource::artifact(store.clone(), artifact).expect("artifact")).await;

    let absent =
        TableSource::artifact(store, ArtifactPath::parse("tables/absent.parquet").expect("path"))
            .expect("source");
    assert!(matches!(absent.read_column("float").await, Err(TableError::NotFound { .. })));
}

#[tokio::test]
async fn csv_columns_follow_pandas_typing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.csv");
    std::fs::write(
        &path,
        "int,float,flag,text,mixed,empty\n\
         1,1.5,True,a,1,\n\
         ,inf,false,\"b, quoted\",x,NA\n\
         3,NaN,TRUE,,2.50,\n\
         -4,-2e3,False,NA,True,nan\n",
    )
    .expect("write");
    let source = TableSource::local(&path).expect("source");
    assert_eq!(source.format(), TableFormat::Csv);
    let types: Vec<ValueType> =
        source.list_columns().await.expect("list").into_iter().map(|c| c.value_type).collect();
    assert_eq!(
        types,
        vec![
            ValueType::Integer,
            ValueType::Float,
            ValueType::Label,
            ValueType::Label,
            ValueType::Label,
            ValueType::Float
        ]
    );
    assert_eq!(
        source.read_column("int").await.expect("int"),
        Values::Integers(vec![Some(1), None, Some(3), Some(-4)])
    );
    let Values::Floats(floats) = source.read_column("float").await.expect("float") else {
        panic!("floats")
    };
    assert_eq!(floats[0], 1.5);
    assert_eq!(floats[1], f64::INFINITY);
    assert!(floats[2].is_nan());
    assert_eq!(floats[3], -2000.0);
    let labels = |values: &[Option<&str>]| {
        Values::Labels(values.iter().map(|v| v.map(str::to_owned)).collect())
    };
    assert_eq!(
        source.read_column("flag").await.expect("flag"),
        labels(&[Some("true"), Some("false"), Some("true"), Some("false")])
    );
    assert_eq!(
        source.read_column("text").await.expect("text"),
        labels(&[Some("a"), Some("b, quoted"), None, None])
    );
    // A column mixing numbers and words keeps every cell's text, as pandas' object column does.
    assert_eq!(
        source.read_column("mixed").await.expect("mixed"),
        labels(&[Some("1"), Some("x"), Some("2.50"), Some("True")])
    );
    let Values::Floats(empty) = source.read_column("empty").await.expect("empty") else {
        panic!("floats")
    };
    assert!(empty.iter().all(|v| v.is_nan()));

    let store = ArtifactStore::open(&dir.path().display().to_string(), &S3Options::default())
        .expect("store");
    let remote =
        TableSource::artifact(store, ArtifactPath::parse("t.csv").expect("path")).expect("source");
    assert_eq!(
        remote.read_column("text").await.expect("text"),
        labels(&[Some("a"), Some("b, quoted"), None, None])
    );
}

#[test]
fn formats_come_from_extensions() {
    assert_eq!(TableFormat::from_name("a/b.PARQUET"), Some(TableFormat::Parquet));
    assert_eq!(TableFormat::from_name("x.csv"), Some(TableFormat::Csv));
    assert_eq!(TableFormat::from_name("x.json"), None);
    assert!(matches!(TableSource::local("x.json"), Err(TableError::UnknownFormat { .. })));
}

#[tokio::test]
async fn a_missing_local_file_is_not_found() {
    let source = TableSource::local("/nonexistent/dir/t.parquet").expect("source");
    assert!(matches!(source.read_column("a").await, Err(TableError::NotFound { .. })));
}
