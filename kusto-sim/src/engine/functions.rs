//! Scalar functions: their result types and their evaluation.

use sha2::{Digest, Sha256};

use super::expr::{Row, eval, truthy};
use super::{Ctx, Scope};
use crate::error::{SimError, not_supported};
use crate::parse::expr::Expr;
use crate::value::temporal::{TICKS_PER_DAY, format_pattern, parse_datetime};
use crate::value::{ColumnType, Value, coerce};

/// The type `name(args)` returns; unknown functions are "not supported".
pub fn result_type(name: &str, args: &[ColumnType]) -> Result<ColumnType, SimError> {
    use ColumnType as T;
    let first = args.first().copied();
    let arity = |n: usize| -> Result<(), SimError> {
        if args.len() == n {
            Ok(())
        } else {
            Err(SimError::semantic(format!(
                "{name}(): expects {n} argument(s), got {}",
                args.len()
            )))
        }
    };
    Ok(match name {
        "ingestion_time" | "now" => T::DateTime,
        "cursor_current" | "current_cursor" => T::String,
        "cursor_after" | "cursor_before_or_at" => {
            arity(1)?;
            T::Bool
        }
        "isnull" | "isnotnull" | "isempty" | "isnotempty" | "not" => {
            arity(1)?;
            T::Bool
        }
        "ago" => T::DateTime,
        "bin" | "floor" => {
            arity(2)?;
            first.unwrap_or(T::Real)
        }
        "startofday" | "startofweek" | "startofmonth" | "startofyear" => T::DateTime,
        "todatetime" => T::DateTime,
        "totimespan" => T::TimeSpan,
        "tostring" | "strcat" | "format_datetime" | "hash_sha256" => T::String,
        "tolong" | "strlen" | "hash" => T::Long,
        "toint" => T::Int,
        "toreal" | "todouble" => T::Real,
        "todecimal" => T::Decimal,
        "toguid" => T::Guid,
        "tobool" | "toboolean" => T::Bool,
        "todynamic" | "parse_json" | "pack_all" => T::Dynamic,
        "iif" | "iff" => {
            arity(3)?;
            args[1]
        }
        "coalesce" => first.unwrap_or(T::String),
        _ => return Err(not_supported(&format!("function {name}()"))),
    })
}

pub fn call(
    name: &str,
    args: &[Expr],
    row: &Row,
    scope: &Scope,
    ctx: &mut Ctx,
) -> Result<Value, SimError> {
    match name {
        "ingestion_time" => {
            return Ok(row
                .meta
                .and_then(|m| m.ingestion_time)
                .map_or(Value::Null, Value::DateTime));
        }
        "cursor_current" | "current_cursor" => return Ok(Value::String(ctx.cursor_text())),
        "cursor_after" | "cursor_before_or_at" => return cursor_predicate(name, args, row, ctx),
        "pack_all" => return Ok(pack_all(row, scope)),
        "now" => return Ok(Value::DateTime(ctx.now)),
        "ago" => {
            return Ok(
                match eval(args.first().unwrap_or(&Expr::Star), row, scope, ctx)? {
                    Value::TimeSpan(t) => Value::DateTime(ctx.now - t),
                    _ => Value::Null,
                },
            );
        }
        "iif" | "iff" => {
            let cond = eval(&args[0], row, scope, ctx)?;
            let pick = if truthy(&cond) { &args[1] } else { &args[2] };
            return eval(pick, row, scope, ctx);
        }
        _ => {}
    }
    let values = args
        .iter()
        .map(|a| eval(a, row, scope, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pure(name, &values))
}

/// Functions of their argument values only.
fn pure(name: &str, v: &[Value]) -> Value {
    let arg = |i: usize| v.get(i).cloned().unwrap_or(Value::Null);
    let to = |ty: ColumnType| coerce(arg(0), ty).unwrap_or(Value::Null);
    match name {
        "isnull" => Value::Bool(arg(0).is_null()),
        "isnotnull" => Value::Bool(!arg(0).is_null()),
        "isempty" => Value::Bool(arg(0).to_kusto_string().is_empty()),
        "isnotempty" => Value::Bool(!arg(0).to_kusto_string().is_empty()),
        "not" => match arg(0) {
            Value::Bool(b) => Value::Bool(!b),
            _ => Value::Null,
        },
        "bin" | "floor" => bin(&arg(0), &arg(1)),
        "startofday" | "startofweek" | "startofmonth" | "startofyear" => match arg(0) {
            Value::DateTime(t) => start_of(name, t).map_or(Value::Null, Value::DateTime),
            _ => Value::Null,
        },
        "todatetime" => match arg(0) {
            Value::String(s) => parse_datetime(&s).map_or(Value::Null, Value::DateTime),
            _ => to(ColumnType::DateTime),
        },
        "totimespan" => to(ColumnType::TimeSpan),
        "tostring" => Value::String(arg(0).to_kusto_string()),
        "tolong" => to(ColumnType::Long),
        "toint" => to(ColumnType::Int),
        "toreal" | "todouble" => to(ColumnType::Real),
        "todecimal" => to(ColumnType::Decimal),
        "toguid" => to(ColumnType::Guid),
        "tobool" | "toboolean" => to(ColumnType::Bool),
        "todynamic" | "parse_json" => to(ColumnType::Dynamic),
        "strcat" => Value::String(v.iter().map(Value::to_kusto_string).collect()),
        "strlen" => Value::Long(arg(0).to_kusto_string().chars().count() as i64),
        "format_datetime" => match (arg(0), arg(1)) {
            (Value::DateTime(t), Value::String(f)) => Value::String(format_pattern(t, &f)),
            _ => Value::Null,
        },
        "hash" => hash(&arg(0), &arg(1)),
        "hash_sha256" => Value::String(sha256_hex(&arg(0).to_kusto_string())),
        "coalesce" => v
            .iter()
            .find(|x| !x.is_null())
            .cloned()
            .unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn cursor_predicate(
    name: &str,
    args: &[Expr],
    row: &Row,
    ctx: &mut Ctx,
) -> Result<Value, SimError> {
    let [Expr::Lit(Value::String(text))] = args else {
        return Err(SimError::semantic(format!(
            "{name}(): the argument must be a string literal"
        )));
    };
    let bound = if text.is_empty() {
        0
    } else {
        text.parse::<u64>().map_err(|_| {
            SimError::semantic(format!("{name}(): '{text}' is not a valid database cursor"))
        })?
    };
    ctx.cursor_used = true;
    // Rows ingested while the IngestionTime policy was off have no cursor position.
    let Some(meta) = row.meta.filter(|m| m.ingestion_time.is_some()) else {
        return Ok(Value::Bool(false));
    };
    Ok(Value::Bool(if name == "cursor_after" {
        meta.cursor > bound
    } else {
        meta.cursor <= bound
    }))
}

fn pack_all(row: &Row, scope: &Scope) -> Value {
    let map: serde_json::Map<String, serde_json::Value> = scope
        .columns
        .iter()
        .zip(row.values)
        .map(|(c, v)| (c.name.clone(), v.to_json()))
        .collect();
    Value::Dynamic(serde_json::Value::Object(map))
}

fn bin(v: &Value, size: &Value) -> Value {
    match (v, size) {
        (Value::DateTime(t), Value::TimeSpan(s)) if *s > 0 => Value::DateTime(t.div_euclid(*s) * s),
        (Value::TimeSpan(t), Value::TimeSpan(s)) if *s > 0 => Value::TimeSpan(t.div_euclid(*s) * s),
        (Value::Int(_) | Value::Long(_), Value::Int(_) | Value::Long(_)) => {
            match (v.as_i64(), size.as_i64()) {
                (Some(x), Some(s)) if s > 0 => Value::Long(x.div_euclid(s) * s),
                _ => Value::Null,
            }
        }
        _ => match (v.as_f64(), size.as_f64()) {
            (Some(x), Some(s)) if s > 0.0 => Value::Real((x / s).floor() * s),
            _ => Value::Null,
        },
    }
}

/// `startofday` / `startofweek` (Sunday) / `startofmonth` / `startofyear` of a datetime.
pub fn start_of(func: &str, ticks: i64) -> Option<i64> {
    let day = ticks.div_euclid(TICKS_PER_DAY) * TICKS_PER_DAY;
    let days_since_epoch = ticks.div_euclid(TICKS_PER_DAY);
    match func {
        "startofday" => Some(day),
        // 1970-01-01 was a Thursday, four days after a Sunday.
        "startofweek" => Some(day - (days_since_epoch + 4).rem_euclid(7) * TICKS_PER_DAY),
        "startofmonth" | "startofyear" => {
            let text = format_pattern(ticks, "yyyy-MM-dd");
            let (year, rest) = text.split_once('-')?;
            let month = if func == "startofyear" {
                "01"
            } else {
                rest.get(..2)?
            };
            parse_datetime(&format!("{year}-{month}-01"))
        }
        _ => None,
    }
}

/// A deterministic 64-bit hash (FNV-1a over the value's text); values differ from
/// Kusto's xxhash64-based `hash()`, which matters only when comparing against real Kusto.
fn hash(v: &Value, modulo: &Value) -> Value {
    if v.is_null() {
        return Value::Null;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in v.to_kusto_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let h = (h >> 1) as i64;
    match modulo.as_i64() {
        Some(m) if m > 0 => Value::Long(h % m),
        _ => Value::Long(h),
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_of_periods() {
        let t = parse_datetime("2024-01-17T10:00:00Z").unwrap();
        let day = |s| parse_datetime(s).unwrap();
        assert_eq!(start_of("startofday", t), Some(day("2024-01-17")));
        assert_eq!(start_of("startofweek", t), Some(day("2024-01-14")));
        assert_eq!(start_of("startofmonth", t), Some(day("2024-01-01")));
        assert_eq!(start_of("startofyear", t), Some(day("2024-01-01")));
    }

    #[test]
    fn bins() {
        assert_eq!(bin(&Value::Long(17), &Value::Long(5)), Value::Long(15));
        assert_eq!(bin(&Value::Long(17), &Value::Long(0)), Value::Null);
    }
}
