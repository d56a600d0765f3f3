//! Kusto's scalar types, shared by the command builder (external-table schemas) and the result
//! parser (column types).
//!
//! Kusto spells a type several ways: `long` in commands, `int64` in some cslschema output,
//! `Int64` / `System.Int64` as the .NET `DataType` of V1 results. [`KustoType::parse`] accepts
//! all of them; [`KustoType::as_str`] always writes the canonical name.

use std::fmt;

/// A Kusto scalar type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KustoType {
    Int,
    Long,
    Real,
    Decimal,
    String,
    Bool,
    DateTime,
    TimeSpan,
    Guid,
    Dynamic,
}

impl KustoType {
    /// The canonical name, as written in `.create table T (c:long)`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::Long => "long",
            Self::Real => "real",
            Self::Decimal => "decimal",
            Self::String => "string",
            Self::Bool => "bool",
            Self::DateTime => "datetime",
            Self::TimeSpan => "timespan",
            Self::Guid => "guid",
            Self::Dynamic => "dynamic",
        }
    }

    /// Parses a type name from cslschema text, a V2 `ColumnType`, or a V1 .NET `DataType`
    /// (case-insensitive, with or without the `System.` prefix). None for anything else.
    pub fn parse(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let bare = lower
            .strip_prefix("system.data.sqltypes.")
            .or_else(|| lower.strip_prefix("system."))
            .unwrap_or(&lower);
        let ty = match bare {
            "int" | "int32" => Self::Int,
            "long" | "int64" => Self::Long,
            "real" | "double" => Self::Real,
            "decimal" | "sqldecimal" => Self::Decimal,
            "string" => Self::String,
            // V1 sometimes reports bool columns as SByte (0/1).
            "bool" | "boolean" | "sbyte" => Self::Bool,
            "datetime" | "date" => Self::DateTime,
            "timespan" | "time" => Self::TimeSpan,
            "guid" | "uniqueid" => Self::Guid,
            "dynamic" | "object" => Self::Dynamic,
            _ => return None,
        };
        Some(ty)
    }
}

impl fmt::Display for KustoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for (name, ty) in [
            ("long", KustoType::Long),
            ("Int64", KustoType::Long),
            ("System.Int64", KustoType::Long),
            ("int", KustoType::Int),
            ("System.Int32", KustoType::Int),
            ("real", KustoType::Real),
            ("Double", KustoType::Real),
            ("decimal", KustoType::Decimal),
            ("System.Data.SqlTypes.SqlDecimal", KustoType::Decimal),
            ("string", KustoType::String),
            ("bool", KustoType::Bool),
            ("boolean", KustoType::Bool),
            ("SByte", KustoType::Bool),
            ("datetime", KustoType::DateTime),
            ("date", KustoType::DateTime),
            ("timespan", KustoType::TimeSpan),
            ("time", KustoType::TimeSpan),
            ("guid", KustoType::Guid),
            ("uniqueid", KustoType::Guid),
            ("dynamic", KustoType::Dynamic),
            ("Object", KustoType::Dynamic),
        ] {
            assert_eq!(KustoType::parse(name), Some(ty), "{name}");
        }
        assert_eq!(KustoType::parse("varchar"), None);
    }

    #[test]
    fn canonical_names_round_trip() {
        for ty in [
            KustoType::Int,
            KustoType::Long,
            KustoType::Real,
            KustoType::Decimal,
            KustoType::String,
            KustoType::Bool,
            KustoType::DateTime,
            KustoType::TimeSpan,
            KustoType::Guid,
            KustoType::Dynamic,
        ] {
            assert_eq!(KustoType::parse(ty.as_str()), Some(ty));
        }
    }
}
