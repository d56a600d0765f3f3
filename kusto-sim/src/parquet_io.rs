//! Rows ↔ parquet, with Kusto's export type mapping:
//! bool BOOLEAN; int INT32; long INT64; real DOUBLE; decimal FIXED_LEN_BYTE_ARRAY
//! DECIMAL(38, 18); string/guid/dynamic UTF-8 (dynamic as JSON text); datetime INT64
//! TIMESTAMP_MICROS (UTC, sub-microsecond ticks dropped); timespan INT64 ticks.
//! Reading maps columns by name and converts to the target column's type.

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Decimal128Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt32Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::error::SimError;
use crate::table::Column;
use crate::value::temporal::TICKS_PER_DAY;
use crate::value::{ColumnType, DECIMAL_SCALE, Value, coerce};

const DECIMAL_PRECISION: u8 = 38;

fn storage_err(e: impl std::fmt::Display) -> SimError {
    SimError::Storage(format!("parquet: {e}"))
}

fn arrow_type(t: ColumnType) -> DataType {
    match t {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int => DataType::Int32,
        ColumnType::Long | ColumnType::TimeSpan => DataType::Int64,
        ColumnType::Real => DataType::Float64,
        ColumnType::Decimal => DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE as i8),
        ColumnType::String | ColumnType::Guid | ColumnType::Dynamic => DataType::Utf8,
        ColumnType::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

/// Encodes `rows` (all of `columns`' types) as one snappy-compressed parquet file.
pub fn write(columns: &[Column], rows: &[&Vec<Value>]) -> Result<Vec<u8>, SimError> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, arrow_type(c.ty), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let arrays = columns
        .iter()
        .enumerate()
        .map(|(i, c)| build_array(c.ty, rows.iter().map(|r| r.get(i).unwrap_or(&Value::Null))))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(storage_err)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, schema, Some(props)).map_err(storage_err)?;
    writer.write(&batch).map_err(storage_err)?;
    writer.close().map_err(storage_err)?;
    Ok(buf)
}

fn build_array<'a>(
    ty: ColumnType,
    values: impl Iterator<Item = &'a Value>,
) -> Result<ArrayRef, SimError> {
    Ok(match ty {
        ColumnType::Bool => {
            let mut b = BooleanBuilder::new();
            values.for_each(|v| {
                b.append_option(if let Value::Bool(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        ColumnType::Int => {
            let mut b = Int32Builder::new();
            values.for_each(|v| {
                b.append_option(if let Value::Int(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        ColumnType::Long | ColumnType::TimeSpan => {
            let mut b = Int64Builder::new();
            values.for_each(|v| {
                b.append_option(match v {
                    Value::Long(x) | Value::TimeSpan(x) => Some(*x),
                    _ => None,
                })
            });
            Arc::new(b.finish())
        }
        ColumnType::Real => {
            let mut b = Float64Builder::new();
            values.for_each(|v| {
                b.append_option(if let Value::Real(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            Arc::new(b.finish())
        }
        ColumnType::Decimal => {
            let mut b = Decimal128Builder::new();
            values.for_each(|v| {
                b.append_option(if let Value::Decimal(x) = v {
                    Some(*x)
                } else {
                    None
                })
            });
            let arr = b
                .finish()
                .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE as i8)
                .map_err(storage_err)?;
            Arc::new(arr)
        }
        ColumnType::DateTime => {
            let mut b = TimestampMicrosecondBuilder::new();
            values.for_each(|v| {
                b.append_option(if let Value::DateTime(t) = v {
                    Some(t.div_euclid(10))
                } else {
                    None
                })
            });
            Arc::new(b.finish().with_timezone("UTC"))
        }
        ColumnType::String | ColumnType::Guid | ColumnType::Dynamic => {
            let mut b = StringBuilder::new();
            values.for_each(|v| b.append_option((!v.is_null()).then(|| export_text(v))));
            Arc::new(b.finish())
        }
    })
}

/// Text written to parquet: dynamic values as compact JSON (strings keep their quotes).
fn export_text(v: &Value) -> String {
    match v {
        Value::Dynamic(j) => j.to_string(),
        other => other.to_kusto_string(),
    }
}

/// Reads every row of a parquet file into `target`'s column order. Columns are matched by
/// name (exactly, else ignoring case); missing ones are null; values that can't be
/// converted to the target type become null, as Kusto's ingestion does.
pub fn read(data: Bytes, target: &[Column]) -> Result<Vec<Vec<Value>>, SimError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .map_err(storage_err)?
        .build()
        .map_err(storage_err)?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(storage_err)?;
        let schema = batch.schema();
        let sources: Vec<Option<usize>> = target
            .iter()
            .map(|c| {
                schema.index_of(&c.name).ok().or_else(|| {
                    schema
                        .fields()
                        .iter()
                        .position(|f| f.name().eq_ignore_ascii_case(&c.name))
                })
            })
            .collect();
        for r in 0..batch.num_rows() {
            let row = target
                .iter()
                .zip(&sources)
                .map(|(c, src)| match src {
                    Some(i) => cell(batch.column(*i).as_ref(), r, c.ty),
                    None => Ok(Value::Null),
                })
                .collect::<Result<Vec<_>, _>>()?;
            rows.push(row);
        }
    }
    Ok(rows)
}

fn cell(a: &dyn Array, i: usize, target: ColumnType) -> Result<Value, SimError> {
    if a.is_null(i) {
        return Ok(Value::Null);
    }
    let raw = match a.data_type() {
        DataType::Boolean => Value::Bool(a.as_boolean().value(i)),
        DataType::Int8 => Value::Int(i32::from(a.as_primitive::<Int8Type>().value(i))),
        DataType::Int16 => Value::Int(i32::from(a.as_primitive::<Int16Type>().value(i))),
        DataType::Int32 => Value::Int(a.as_primitive::<Int32Type>().value(i)),
        DataType::UInt32 => Value::Long(i64::from(a.as_primitive::<UInt32Type>().value(i))),
        DataType::Int64 => Value::Long(a.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => Value::Real(f64::from(a.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => Value::Real(a.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(a.as_string::<i64>().value(i).to_string()),
        DataType::Date32 => {
            Value::DateTime(i64::from(a.as_primitive::<Date32Type>().value(i)) * TICKS_PER_DAY)
        }
        DataType::Timestamp(unit, _) => Value::DateTime(timestamp_ticks(a, i, unit)),
        DataType::Decimal128(_, scale) => {
            decimal_value(a.as_primitive::<Decimal128Type>().value(i), *scale)
        }
        other => {
            return Err(SimError::Storage(format!(
                "parquet: column type {other} is not supported by kusto-sim"
            )));
        }
    };
    Ok(coerce(raw, target).unwrap_or(Value::Null))
}

fn timestamp_ticks(a: &dyn Array, i: usize, unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i) * 10_000_000,
        TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i) * 10_000,
        TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i) * 10,
        TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i) / 100,
    }
}

/// Rescales a parquet decimal to the simulator's fixed scale.
fn decimal_value(v: i128, scale: i8) -> Value {
    let diff = i32::from(scale) - DECIMAL_SCALE as i32;
    let scaled = if diff <= 0 {
        10i128
            .checked_pow(diff.unsigned_abs())
            .and_then(|m| v.checked_mul(m))
    } else {
        10i128.checked_pow(diff.unsigned_abs()).map(|d| v / d)
    };
    scaled.map_or(Value::Null, Value::Decimal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn every_type_round_trips() {
        let cols: Vec<Column> = [
            ("b", ColumnType::Bool),
            ("i", ColumnType::Int),
            ("l", ColumnType::Long),
            ("r", ColumnType::Real),
            ("d", ColumnType::Decimal),
            ("s", ColumnType::String),
            ("t", ColumnType::DateTime),
            ("ts", ColumnType::TimeSpan),
            ("g", ColumnType::Guid),
            ("dy", ColumnType::Dynamic),
        ]
        .into_iter()
        .map(|(n, t)| Column::new(n, t))
        .collect();
        let full = vec![
            Value::Bool(true),
            Value::Int(-7),
            Value::Long(1 << 40),
            Value::Real(2.5),
            Value::Decimal(crate::value::decimal::parse("-12.000000000000000001").unwrap()),
            Value::String("é\"x".into()),
            Value::DateTime(17_000_000_000_000_017),
            Value::TimeSpan(-36_000_000_001),
            Value::Guid(Uuid::new_v4()),
            Value::Dynamic(json!({"a": [1, "x", null]})),
        ];
        let nulls = vec![Value::Null; cols.len()];
        let bytes = write(&cols, &[&full, &nulls]).unwrap();
        let back = read(Bytes::from(bytes), &cols).unwrap();
        let mut expected = full.clone();
        expected[6] = Value::DateTime(17_000_000_000_000_010);
        assert_eq!(back, vec![expected, nulls]);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(read(Bytes::from_static(b"not parquet"), &[]).is_err());
    }
}
