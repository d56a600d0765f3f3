//! `summarize`: grouping and the aggregation functions.

use std::collections::{HashMap, HashSet};

use super::expr::{Row, eval, truthy, type_of};
use super::{Ctx, Scope, default_name, scope_of};
use crate::error::{SimError, not_supported};
use crate::parse::expr::{Expr, NamedExpr};
use crate::table::{Column, ResultTable};
use crate::value::{ColumnType, Value, compare};

/// One aggregation call, type-checked.
struct AggSpec {
    func: String,
    arg: Option<Expr>,
    ty: ColumnType,
}

enum Acc {
    Count(i64),
    Sum(Value),
    Min(Value),
    Max(Value),
    Avg(f64, i64),
    Distinct(HashSet<String>),
    Any(Value),
}

pub fn summarize(
    t: ResultTable,
    aggregates: &[NamedExpr],
    by: &[NamedExpr],
    ctx: &mut Ctx,
) -> Result<ResultTable, SimError> {
    let scope = scope_of(&t);
    let mut columns = Vec::new();
    for (n, b) in by.iter().enumerate() {
        let name = b
            .name
            .clone()
            .unwrap_or_else(|| default_name(&b.expr, format!("Column{}", n + 1)));
        columns.push(Column::new(name, type_of(&b.expr, &scope)?));
    }
    let mut specs = Vec::new();
    for a in aggregates {
        let spec = agg_spec(&a.expr, &scope)?;
        columns.push(Column::new(
            a.name.clone().unwrap_or_else(|| agg_name(&spec)),
            spec.ty,
        ));
        specs.push(spec);
    }
    let mut groups: HashMap<Vec<String>, (Vec<Value>, Vec<Acc>)> = HashMap::new();
    let mut order = Vec::new();
    for i in 0..t.rows.len() {
        let row = Row {
            values: &t.rows[i],
            meta: t.meta.as_ref().map(|m| m[i]),
        };
        let keys = by
            .iter()
            .map(|b| eval(&b.expr, &row, &scope, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        let key: Vec<String> = keys.iter().map(Value::group_key).collect();
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            (keys, specs.iter().map(new_acc).collect())
        });
        for (spec, acc) in specs.iter().zip(entry.1.iter_mut()) {
            let v = match &spec.arg {
                Some(e) => eval(e, &row, &scope, ctx)?,
                None => Value::Null,
            };
            update(acc, v, spec);
        }
    }
    // Without `by`, an empty input still gives one row (count() = 0).
    if by.is_empty() && order.is_empty() {
        order.push(Vec::new());
        groups.insert(
            Vec::new(),
            (Vec::new(), specs.iter().map(new_acc).collect()),
        );
    }
    let mut out = ResultTable::new(columns);
    for key in order {
        if let Some((mut keys, accs)) = groups.remove(&key) {
            keys.extend(accs.into_iter().map(finish));
            out.rows.push(keys);
        }
    }
    Ok(out)
}

fn agg_spec(e: &Expr, scope: &Scope) -> Result<AggSpec, SimError> {
    let Expr::Call(func, args) = e else {
        return Err(SimError::semantic(
            "summarize: expected an aggregation function call",
        ));
    };
    let arg = args.first().cloned();
    let arg_ty = match &arg {
        Some(a) => Some(type_of(a, scope)?),
        None => None,
    };
    let needs_arg = |ty: Option<ColumnType>| {
        ty.ok_or_else(|| SimError::semantic(format!("{func}(): expects an argument")))
    };
    let ty = match func.as_str() {
        "count" if args.is_empty() => ColumnType::Long,
        "countif" | "dcount" => {
            needs_arg(arg_ty)?;
            ColumnType::Long
        }
        "sum" => match needs_arg(arg_ty)? {
            ColumnType::Int | ColumnType::Long => ColumnType::Long,
            t @ (ColumnType::Real | ColumnType::Decimal | ColumnType::TimeSpan) => t,
            other => {
                return Err(SimError::semantic(format!(
                    "sum(): not defined for {}",
                    other.kusto_name()
                )));
            }
        },
        "avg" => {
            needs_arg(arg_ty)?;
            ColumnType::Real
        }
        "min" | "max" | "take_any" | "any" => needs_arg(arg_ty)?,
        _ => return Err(not_supported(&format!("aggregation {func}()"))),
    };
    Ok(AggSpec {
        func: func.clone(),
        arg,
        ty,
    })
}

/// `count_`, `sum_Amount`, ... : Kusto's names for unnamed aggregations.
fn agg_name(spec: &AggSpec) -> String {
    let column = match &spec.arg {
        Some(Expr::Col(c)) => c.as_str(),
        _ => "",
    };
    format!("{}_{column}", spec.func)
}

fn new_acc(spec: &AggSpec) -> Acc {
    match spec.func.as_str() {
        "count" | "countif" => Acc::Count(0),
        "sum" => Acc::Sum(Value::Null),
        "min" => Acc::Min(Value::Null),
        "max" => Acc::Max(Value::Null),
        "avg" => Acc::Avg(0.0, 0),
        "dcount" => Acc::Distinct(HashSet::new()),
        _ => Acc::Any(Value::Null),
    }
}

fn update(acc: &mut Acc, v: Value, spec: &AggSpec) {
    match acc {
        Acc::Count(n) if spec.func == "count" || truthy(&v) => *n += 1,
        Acc::Count(_) => {}
        Acc::Sum(s) => *s = add(s, &v, spec.ty),
        Acc::Min(m) => keep_if(m, v, std::cmp::Ordering::Less),
        Acc::Max(m) => keep_if(m, v, std::cmp::Ordering::Greater),
        Acc::Avg(sum, n) => {
            if let Some(f) = v.as_f64() {
                *sum += f;
                *n += 1;
            }
        }
        Acc::Distinct(set) => {
            if !v.is_null() {
                set.insert(v.group_key());
            }
        }
        Acc::Any(a) => {
            if a.is_null() {
                *a = v;
            }
        }
    }
}

fn keep_if(current: &mut Value, v: Value, wanted: std::cmp::Ordering) {
    if v.is_null() {
        return;
    }
    if current.is_null() || compare(&v, current) == Some(wanted) {
        *current = v;
    }
}

/// Sums wrap on overflow, so a sum of hashes never fails.
fn add(sum: &Value, v: &Value, ty: ColumnType) -> Value {
    match (sum, v) {
        (_, Value::Null) => sum.clone(),
        (Value::Null, v) => crate::value::coerce(v.clone(), ty).unwrap_or(Value::Null),
        (Value::Long(a), b) => Value::Long(a.wrapping_add(b.as_i64().unwrap_or(0))),
        (Value::Real(a), b) => Value::Real(a + b.as_f64().unwrap_or(0.0)),
        (Value::Decimal(a), Value::Decimal(b)) => Value::Decimal(a.wrapping_add(*b)),
        (Value::TimeSpan(a), Value::TimeSpan(b)) => Value::TimeSpan(a.wrapping_add(*b)),
        _ => sum.clone(),
    }
}

fn finish(acc: Acc) -> Value {
    match acc {
        Acc::Count(n) => Value::Long(n),
        Acc::Sum(v) | Acc::Min(v) | Acc::Max(v) | Acc::Any(v) => v,
        Acc::Avg(_, 0) => Value::Null,
        Acc::Avg(sum, n) => Value::Real(sum / n as f64),
        Acc::Distinct(set) => Value::Long(set.len() as i64),
    }
}
