//! Arithmetic on values; overflow and division by zero give null, never a panic.

use crate::parse::expr::BinOp;
use crate::value::Value;

pub fn apply(op: BinOp, a: &Value, b: &Value) -> Value {
    use Value::*;
    match (a, b) {
        (DateTime(x), TimeSpan(y)) | (TimeSpan(y), DateTime(x)) if op == BinOp::Add => {
            opt(x.checked_add(*y), DateTime)
        }
        (DateTime(x), TimeSpan(y)) if op == BinOp::Sub => opt(x.checked_sub(*y), DateTime),
        (DateTime(x), DateTime(y)) if op == BinOp::Sub => opt(x.checked_sub(*y), TimeSpan),
        (TimeSpan(x), TimeSpan(y)) => match op {
            BinOp::Div if *y != 0 => Real(*x as f64 / *y as f64),
            _ => opt(integer(op, *x, *y), TimeSpan),
        },
        (TimeSpan(x), n) if matches!(op, BinOp::Mul | BinOp::Div) => match n.as_f64() {
            Some(f) if op == BinOp::Mul => TimeSpan((*x as f64 * f) as i64),
            Some(f) if f != 0.0 => TimeSpan((*x as f64 / f) as i64),
            _ => Null,
        },
        (Int(x), Int(y)) => opt(
            integer(op, i64::from(*x), i64::from(*y)).and_then(|v| i32::try_from(v).ok()),
            Int,
        ),
        (Int(_) | Long(_), Int(_) | Long(_)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => opt(integer(op, x, y), Long),
            _ => Null,
        },
        (Decimal(_), Decimal(_) | Int(_) | Long(_)) | (Int(_) | Long(_), Decimal(_)) => {
            decimal(op, a, b)
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => Real(real(op, x, y)),
            _ => Null,
        },
    }
}

fn opt<T>(v: Option<T>, wrap: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, wrap)
}

fn integer(op: BinOp, x: i64, y: i64) -> Option<i64> {
    match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div => x.checked_div(y),
        _ => x.checked_rem(y),
    }
}

fn real(op: BinOp, x: f64, y: f64) -> f64 {
    match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div => x / y,
        _ => x % y,
    }
}

/// Decimal add/sub keep full precision; other operations go through `f64`.
fn decimal(op: BinOp, a: &Value, b: &Value) -> Value {
    let as_dec = |v: &Value| match v {
        Value::Decimal(d) => Some(*d),
        other => other.as_i64().and_then(crate::value::decimal::from_i64),
    };
    let (Some(x), Some(y)) = (as_dec(a), as_dec(b)) else {
        return Value::Null;
    };
    match op {
        BinOp::Add => opt(x.checked_add(y), Value::Decimal),
        BinOp::Sub => opt(x.checked_sub(y), Value::Decimal),
        _ => {
            let f = real(
                op,
                crate::value::decimal::to_f64(x),
                crate::value::decimal::to_f64(y),
            );
            opt(crate::value::decimal::from_f64(f), Value::Decimal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edge_cases_are_null() {
        assert_eq!(
            apply(BinOp::Div, &Value::Long(1), &Value::Long(0)),
            Value::Null
        );
        assert_eq!(
            apply(BinOp::Add, &Value::Long(i64::MAX), &Value::Long(1)),
            Value::Null
        );
        assert_eq!(
            apply(BinOp::Mod, &Value::Long(i64::MIN), &Value::Long(-1)),
            Value::Null
        );
        assert_eq!(
            apply(BinOp::Sub, &Value::DateTime(10), &Value::DateTime(4)),
            Value::TimeSpan(6)
        );
    }
}
