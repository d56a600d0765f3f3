//! Typing and evaluation of scalar expressions against one row.

use std::cmp::Ordering;

use super::functions;
use super::{Ctx, Scope};
use crate::error::SimError;
use crate::parse::expr::{BinOp, Expr};
use crate::table::RowMeta;
use crate::value::{ColumnType, Value, compare};

/// One row being evaluated.
pub struct Row<'a> {
    pub values: &'a [Value],
    pub meta: Option<RowMeta>,
}

/// The static type of `e`; also where semantic errors (unknown columns, type mismatches,
/// unsupported functions) are reported, before any row is read.
pub fn type_of(e: &Expr, scope: &Scope) -> Result<ColumnType, SimError> {
    use ColumnType as T;
    Ok(match e {
        Expr::Lit(v) => v.column_type().unwrap_or(T::String),
        Expr::Col(name) => scope.column(name)?.1,
        Expr::Neg(inner) => type_of(inner, scope)?,
        Expr::Star => {
            return Err(SimError::semantic(
                "'*' is only valid as a function argument",
            ));
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            check_comparable(type_of(expr, scope)?, type_of(low, scope)?)?;
            type_of(high, scope)?;
            T::Bool
        }
        Expr::In { expr, items, .. } => {
            let t = type_of(expr, scope)?;
            for i in items {
                check_comparable(t, type_of(i, scope)?)?;
            }
            T::Bool
        }
        Expr::Bin(op, l, r) | Expr::NotBin(op, l, r) => {
            binary_type(*op, type_of(l, scope)?, type_of(r, scope)?)?
        }
        Expr::Call(name, args) => {
            let types = args
                .iter()
                .map(|a| match a {
                    Expr::Star => Ok(T::Dynamic),
                    other => type_of(other, scope),
                })
                .collect::<Result<Vec<_>, _>>()?;
            functions::result_type(name, &types)?
        }
    })
}

fn check_comparable(a: ColumnType, b: ColumnType) -> Result<(), SimError> {
    let numeric = |t| {
        matches!(
            t,
            ColumnType::Int | ColumnType::Long | ColumnType::Real | ColumnType::Decimal
        )
    };
    let ok = a == b
        || (numeric(a) && numeric(b))
        || a == ColumnType::Dynamic
        || b == ColumnType::Dynamic
        || matches!(
            (a, b),
            (ColumnType::Guid, ColumnType::String) | (ColumnType::String, ColumnType::Guid)
        );
    if ok {
        Ok(())
    } else {
        Err(SimError::semantic(format!(
            "Cannot compare values of types {} and {}. Try adding explicit casts",
            a.kusto_name(),
            b.kusto_name()
        )))
    }
}

fn binary_type(op: BinOp, l: ColumnType, r: ColumnType) -> Result<ColumnType, SimError> {
    use BinOp::*;
    use ColumnType as T;
    Ok(match op {
        And | Or | Has | Contains | StartsWith | EndsWith | EqCi | NeCi => T::Bool,
        Eq | Ne | Lt | Le | Gt | Ge => {
            check_comparable(l, r)?;
            T::Bool
        }
        Add | Sub | Mul | Div | Mod => arithmetic_type(op, l, r).ok_or_else(|| {
            SimError::semantic(format!(
                "Operator {op:?} is not defined for {} and {}",
                l.kusto_name(),
                r.kusto_name()
            ))
        })?,
    })
}

fn arithmetic_type(op: BinOp, l: ColumnType, r: ColumnType) -> Option<ColumnType> {
    use BinOp::*;
    use ColumnType as T;
    Some(match (op, l, r) {
        (Add, T::DateTime, T::TimeSpan) | (Add, T::TimeSpan, T::DateTime) => T::DateTime,
        (Sub, T::DateTime, T::TimeSpan) => T::DateTime,
        (Sub, T::DateTime, T::DateTime) => T::TimeSpan,
        (Add | Sub, T::TimeSpan, T::TimeSpan) => T::TimeSpan,
        (Mul, T::TimeSpan, T::Int | T::Long | T::Real) => T::TimeSpan,
        (Div, T::TimeSpan, T::TimeSpan) => T::Real,
        (Div, T::TimeSpan, T::Int | T::Long | T::Real) => T::TimeSpan,
        (_, T::Int, T::Int) => T::Int,
        (_, T::Int | T::Long, T::Int | T::Long) => T::Long,
        (_, T::Decimal, T::Int | T::Long | T::Decimal) | (_, T::Int | T::Long, T::Decimal) => {
            T::Decimal
        }
        (_, T::Int | T::Long | T::Real | T::Decimal, T::Int | T::Long | T::Real | T::Decimal) => {
            T::Real
        }
        _ => return None,
    })
}

pub fn eval(e: &Expr, row: &Row, scope: &Scope, ctx: &mut Ctx) -> Result<Value, SimError> {
    Ok(match e {
        Expr::Lit(v) => v.clone(),
        Expr::Col(name) => row
            .values
            .get(scope.column(name)?.0)
            .cloned()
            .unwrap_or(Value::Null),
        Expr::Neg(inner) => negate(eval(inner, row, scope, ctx)?),
        Expr::Star => Value::Null,
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let v = eval(expr, row, scope, ctx)?;
            let lo = eval(low, row, scope, ctx)?;
            let mut hi = eval(high, row, scope, ctx)?;
            if let (Value::DateTime(l), Value::TimeSpan(span)) = (&lo, &hi) {
                hi = Value::DateTime(l + span);
            }
            let inside = matches!(compare(&v, &lo), Some(Ordering::Greater | Ordering::Equal))
                && matches!(compare(&v, &hi), Some(Ordering::Less | Ordering::Equal));
            null_or(&v, inside != *negated)
        }
        Expr::In {
            expr,
            items,
            negated,
            case_insensitive,
        } => {
            let v = eval(expr, row, scope, ctx)?;
            let mut found = false;
            for item in items {
                let i = eval(item, row, scope, ctx)?;
                found |= equal(&v, &i, *case_insensitive);
            }
            null_or(&v, found != *negated)
        }
        Expr::Bin(op, l, r) => binary(*op, l, r, row, scope, ctx)?,
        Expr::NotBin(op, l, r) => match binary(*op, l, r, row, scope, ctx)? {
            Value::Bool(b) => Value::Bool(!b),
            other => other,
        },
        Expr::Call(name, args) => functions::call(name, args, row, scope, ctx)?,
    })
}

fn null_or(v: &Value, b: bool) -> Value {
    if v.is_null() {
        Value::Null
    } else {
        Value::Bool(b)
    }
}

fn negate(v: Value) -> Value {
    match v {
        Value::Int(i) => Value::Int(i.wrapping_neg()),
        Value::Long(i) => Value::Long(i.wrapping_neg()),
        Value::Real(r) => Value::Real(-r),
        Value::Decimal(d) => Value::Decimal(-d),
        Value::TimeSpan(t) => Value::TimeSpan(-t),
        _ => Value::Null,
    }
}

pub fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn equal(a: &Value, b: &Value, case_insensitive: bool) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) if case_insensitive => x.eq_ignore_ascii_case(y),
        _ => compare(a, b) == Some(Ordering::Equal),
    }
}

fn binary(
    op: BinOp,
    l: &Expr,
    r: &Expr,
    row: &Row,
    scope: &Scope,
    ctx: &mut Ctx,
) -> Result<Value, SimError> {
    use BinOp::*;
    let a = eval(l, row, scope, ctx)?;
    // `and`/`or` short-circuit, so cursor predicates on the right still see their rows.
    match op {
        And if !truthy(&a) => return Ok(Value::Bool(false)),
        Or if truthy(&a) => return Ok(Value::Bool(true)),
        _ => {}
    }
    let b = eval(r, row, scope, ctx)?;
    Ok(match op {
        And | Or => Value::Bool(truthy(&b)),
        Eq | Ne | Lt | Le | Gt | Ge => match compare(&a, &b) {
            None => Value::Null,
            Some(ord) => Value::Bool(match op {
                Eq => ord == Ordering::Equal,
                Ne => ord != Ordering::Equal,
                Lt => ord == Ordering::Less,
                Le => ord != Ordering::Greater,
                Gt => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }),
        },
        EqCi => Value::Bool(equal(&a, &b, true)),
        NeCi => Value::Bool(!equal(&a, &b, true)),
        Has | Contains | StartsWith | EndsWith => {
            let (x, y) = (
                a.to_kusto_string().to_lowercase(),
                b.to_kusto_string().to_lowercase(),
            );
            Value::Bool(match op {
                Has => has_term(&x, &y),
                Contains => x.contains(&y),
                StartsWith => x.starts_with(&y),
                _ => x.ends_with(&y),
            })
        }
        Add | Sub | Mul | Div | Mod => super::arith::apply(op, &a, &b),
    })
}

/// `has`: `term` occurs in `text` delimited by non-alphanumeric characters.
fn has_term(text: &str, term: &str) -> bool {
    if term.is_empty() {
        return true;
    }
    text.match_indices(term).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + term.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        boundary(before) && boundary(after)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_matches_whole_terms() {
        assert!(has_term("ingest-by:job-1", "ingest-by:job-1"));
        assert!(has_term("a b c", "b"));
        assert!(!has_term("abc", "b"));
    }
}
