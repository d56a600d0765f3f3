//! Kusto scalar types and values, and their JSON wire form.
//!
//! datetime and timespan are kept as 100 ns ticks (Kusto's own resolution); datetime ticks
//! count from the Unix epoch. decimal is kept as an `i128` with a fixed scale of
//! [`DECIMAL_SCALE`] digits, which is also the scale written to parquet.

pub mod decimal;
pub mod temporal;

use std::cmp::Ordering;

use serde_json::Value as Json;
use uuid::Uuid;

pub use decimal::DECIMAL_SCALE;

/// A Kusto column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnType {
    Bool,
    Int,
    Long,
    Real,
    Decimal,
    String,
    DateTime,
    TimeSpan,
    Guid,
    Dynamic,
}

impl ColumnType {
    /// Parses a Kusto type name, including the documented aliases.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "bool" | "boolean" => Self::Bool,
            "int" | "int32" => Self::Int,
            "long" | "int64" => Self::Long,
            "real" | "double" => Self::Real,
            "decimal" => Self::Decimal,
            "string" => Self::String,
            "datetime" | "date" => Self::DateTime,
            "timespan" | "time" => Self::TimeSpan,
            "guid" | "uniqueid" => Self::Guid,
            "dynamic" => Self::Dynamic,
            _ => return None,
        })
    }

    /// The Kusto name (V2 `ColumnType`, V1 `ColumnType`, `cslschema`).
    pub fn kusto_name(self) -> &'static str {
        match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Long => "long",
            Self::Real => "real",
            Self::Decimal => "decimal",
            Self::String => "string",
            Self::DateTime => "datetime",
            Self::TimeSpan => "timespan",
            Self::Guid => "guid",
            Self::Dynamic => "dynamic",
        }
    }

    /// The .NET type name used as V1 `DataType` and in `schema as json`.
    pub fn dotnet_name(self) -> &'static str {
        match self {
            Self::Bool => "Boolean",
            Self::Int => "Int32",
            Self::Long => "Int64",
            Self::Real => "Double",
            Self::Decimal => "Decimal",
            Self::String => "String",
            Self::DateTime => "DateTime",
            Self::TimeSpan => "TimeSpan",
            Self::Guid => "Guid",
            Self::Dynamic => "Object",
        }
    }

    /// The fully qualified CLR name used by `.show ... schema as json`.
    pub fn clr_name(self) -> String {
        format!("System.{}", self.dotnet_name())
    }
}

/// One Kusto scalar value; `Null` is the typed null of whatever column holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    Decimal(i128),
    String(String),
    DateTime(i64),
    TimeSpan(i64),
    Guid(Uuid),
    Dynamic(Json),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// The type this value naturally has; `None` for null.
    pub fn column_type(&self) -> Option<ColumnType> {
        Some(match self {
            Self::Null => return None,
            Self::Bool(_) => ColumnType::Bool,
            Self::Int(_) => ColumnType::Int,
            Self::Long(_) => ColumnType::Long,
            Self::Real(_) => ColumnType::Real,
            Self::Decimal(_) => ColumnType::Decimal,
            Self::String(_) => ColumnType::String,
            Self::DateTime(_) => ColumnType::DateTime,
            Self::TimeSpan(_) => ColumnType::TimeSpan,
            Self::Guid(_) => ColumnType::Guid,
            Self::Dynamic(_) => ColumnType::Dynamic,
        })
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Int(v) => Some(f64::from(*v)),
            Self::Long(v) => Some(*v as f64),
            Self::Real(v) => Some(*v),
            Self::Decimal(v) => Some(decimal::to_f64(*v)),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(i64::from(*v)),
            Self::Long(v) => Some(*v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as Kusto's `tostring()` renders it (null → empty string).
    pub fn to_kusto_string(&self) -> String {
        match self {
            Self::Null => String::new(),
            Self::Bool(b) => b.to_string(),
            Self::Int(v) => v.to_string(),
            Self::Long(v) => v.to_string(),
            Self::Real(v) => format_real(*v),
            Self::Decimal(v) => decimal::format(*v),
            Self::String(s) => s.clone(),
            Self::DateTime(t) => temporal::format_datetime(*t),
            Self::TimeSpan(t) => temporal::format_timespan(*t),
            Self::Guid(g) => g.to_string(),
            Self::Dynamic(Json::String(s)) => s.clone(),
            Self::Dynamic(j) => j.to_string(),
        }
    }

    /// The JSON wire form shared by V1 and V2 (datetime/timespan/guid/decimal as strings,
    /// dynamic as its JSON value, non-finite reals as their .NET names).
    pub fn to_json(&self) -> Json {
        match self {
            Self::Null => Json::Null,
            Self::Bool(b) => Json::Bool(*b),
            Self::Int(v) => Json::from(*v),
            Self::Long(v) => Json::from(*v),
            Self::Real(v) => serde_json::Number::from_f64(*v)
                .map(Json::Number)
                .unwrap_or_else(|| Json::String(format_real(*v))),
            Self::Dynamic(j) => j.clone(),
            other => Json::String(other.to_kusto_string()),
        }
    }

    /// A canonical key for grouping and distinct counting; equal values give equal keys.
    pub fn group_key(&self) -> String {
        match self {
            Self::Null => "n".to_string(),
            Self::Real(v) => format!("r{}", v.to_bits()),
            other => format!("{:?}", other),
        }
    }
}

/// Kusto renders reals like .NET: `NaN`, `Infinity`, `-Infinity`, else the shortest form.
pub fn format_real(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    }
}

/// Orders two values the way Kusto comparisons do; numbers compare across numeric types.
/// `None` when the types can't be compared or either side is null.
pub fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    use Value::*;
    match (a, b) {
        (Null, _) | (_, Null) => None,
        (Int(_) | Long(_), Int(_) | Long(_)) => Some(a.as_i64()?.cmp(&b.as_i64()?)),
        (Decimal(x), Decimal(y)) => Some(x.cmp(y)),
        (Int(_) | Long(_) | Real(_) | Decimal(_), Int(_) | Long(_) | Real(_) | Decimal(_)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        (Bool(x), Bool(y)) => Some(x.cmp(y)),
        (String(x), String(y)) => Some(x.cmp(y)),
        (DateTime(x), DateTime(y)) | (TimeSpan(x), TimeSpan(y)) => Some(x.cmp(y)),
        (Guid(x), Guid(y)) => Some(x.cmp(y)),
        (Guid(x), String(y)) | (String(y), Guid(x)) => Some(x.to_string().cmp(&y.to_lowercase())),
        (Dynamic(x), Dynamic(y)) => Some(x.to_string().cmp(&y.to_string())),
        _ => None,
    }
}

/// Converts a value to the given column type, as ingestion does (strings are parsed,
/// numbers widened/narrowed); `None` if it can't be represented.
pub fn coerce(value: Value, ty: ColumnType) -> Option<Value> {
    use Value as V;
    if value.is_null() {
        return Some(V::Null);
    }
    if value.column_type() == Some(ty) {
        return Some(value);
    }
    Some(match (ty, value) {
        (ColumnType::String, v) => V::String(v.to_kusto_string()),
        (ColumnType::Dynamic, V::String(s)) => {
            V::Dynamic(serde_json::from_str(&s).unwrap_or(Json::String(s)))
        }
        (ColumnType::Dynamic, v) => V::Dynamic(v.to_json()),
        (ColumnType::Long, V::Int(i)) => V::Long(i64::from(i)),
        (ColumnType::Int, V::Long(l)) => V::Int(i32::try_from(l).ok()?),
        (ColumnType::Real, v @ (V::Int(_) | V::Long(_) | V::Decimal(_))) => V::Real(v.as_f64()?),
        (ColumnType::Decimal, V::Int(i)) => V::Decimal(decimal::from_i64(i64::from(i))?),
        (ColumnType::Decimal, V::Long(l)) => V::Decimal(decimal::from_i64(l)?),
        (ColumnType::Decimal, V::Real(r)) => V::Decimal(decimal::from_f64(r)?),
        (ColumnType::TimeSpan, V::Long(l)) => V::TimeSpan(l),
        (ColumnType::DateTime, V::Long(l)) => V::DateTime(l),
        (_, V::Dynamic(Json::String(s))) | (_, V::String(s)) => parse_text(&s, ty)?,
        (_, V::Dynamic(Json::Number(n))) => coerce(json_number(&n)?, ty)?,
        (ColumnType::Bool, V::Dynamic(Json::Bool(b))) => V::Bool(b),
        _ => return None,
    })
}

fn json_number(n: &serde_json::Number) -> Option<Value> {
    n.as_i64()
        .map(Value::Long)
        .or_else(|| n.as_f64().map(Value::Real))
}

/// Parses a value of type `ty` from its text form (CSV cells, JSON strings, `todatetime()`).
pub fn parse_text(s: &str, ty: ColumnType) -> Option<Value> {
    let t = s.trim();
    Some(match ty {
        ColumnType::String => Value::String(s.to_string()),
        _ if t.is_empty() => Value::Null,
        ColumnType::Bool => match t.to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return None,
        },
        ColumnType::Int => Value::Int(t.parse().ok()?),
        ColumnType::Long => Value::Long(t.parse().ok()?),
        ColumnType::Real => Value::Real(parse_real(t)?),
        ColumnType::Decimal => Value::Decimal(decimal::parse(t)?),
        ColumnType::DateTime => Value::DateTime(temporal::parse_datetime(t)?),
        ColumnType::TimeSpan => Value::TimeSpan(temporal::parse_timespan(t)?),
        ColumnType::Guid => Value::Guid(Uuid::parse_str(t).ok()?),
        ColumnType::Dynamic => Value::Dynamic(serde_json::from_str(t).ok()?),
    })
}

fn parse_real(t: &str) -> Option<f64> {
    match t {
        "NaN" => Some(f64::NAN),
        "Infinity" | "+Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => t.parse().ok(),
    }
}

/// Reads a value of type `ty` from its JSON wire form (the inverse of [`Value::to_json`]).
pub fn from_json(j: &Json, ty: ColumnType) -> Option<Value> {
    match (j, ty) {
        (Json::Null, _) => Some(Value::Null),
        (Json::String(s), ColumnType::Dynamic) => Some(Value::Dynamic(Json::String(s.clone()))),
        (Json::String(s), _) => parse_text(s, ty),
        (Json::Bool(b), ColumnType::Bool) => Some(Value::Bool(*b)),
        (Json::Number(n), _) if ty != ColumnType::Dynamic => coerce(json_number(n)?, ty),
        (other, ColumnType::Dynamic) => Some(Value::Dynamic(other.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        assert_eq!(Value::Long(5).to_json(), Json::from(5));
        assert_eq!(Value::Real(f64::NAN).to_json(), Json::from("NaN"));
        let g = Uuid::nil();
        assert_eq!(
            Value::Guid(g).to_json(),
            Json::from("00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn coerce_follows_target_type() {
        let ticks = Value::Long(36_000_000_000);
        assert_eq!(
            coerce(ticks, ColumnType::TimeSpan),
            Some(Value::TimeSpan(36_000_000_000))
        );
        let g = "123e27de-1e4e-49d9-b579-fe0b331d3642";
        assert!(matches!(
            coerce(Value::String(g.into()), ColumnType::Guid),
            Some(Value::Guid(_))
        ));
        assert_eq!(
            coerce(Value::String("{\"a\":1}".into()), ColumnType::Dynamic),
            Some(Value::Dynamic(serde_json::json!({"a":1})))
        );
        assert_eq!(coerce(Value::Long(1 << 40), ColumnType::Int), None);
    }

    #[test]
    fn numbers_compare_across_types() {
        assert_eq!(
            compare(&Value::Int(3), &Value::Real(2.5)),
            Some(Ordering::Greater)
        );
        assert_eq!(compare(&Value::Null, &Value::Int(1)), None);
    }
}
