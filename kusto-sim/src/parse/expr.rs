//! Scalar expressions: the AST and its precedence-climbing parser.

use super::Parser;
use crate::error::SimError;
use crate::lexer::Tok;
use crate::value::{ColumnType, Value, parse_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    EqCi,
    NeCi,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Has,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    Col(String),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `Bin(op, ..)` negated: `!has`, `!contains`, ...
    NotBin(BinOp, Box<Expr>, Box<Expr>),
    Between {
        expr: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    In {
        expr: Box<Expr>,
        items: Vec<Expr>,
        negated: bool,
        case_insensitive: bool,
    },
    Call(String, Vec<Expr>),
    /// `*` as a function argument (`count(*)` is not KQL, but `arg_max(x, *)` is).
    Star,
}

/// `Name = expr` or a bare `expr` (named later by the operator's naming rule).
#[derive(Debug, Clone, PartialEq)]
pub struct NamedExpr {
    pub name: Option<String>,
    pub expr: Expr,
}

pub fn named_list(p: &mut Parser) -> Result<Vec<NamedExpr>, SimError> {
    let mut out = vec![named(p)?];
    while p.eat_punct(",") {
        out.push(named(p)?);
    }
    Ok(out)
}

pub fn named(p: &mut Parser) -> Result<NamedExpr, SimError> {
    let is_name = matches!(p.peek(), Some(Tok::Ident(_) | Tok::Quoted(_)));
    if is_name && p.peek_at(1) == Some(&Tok::Punct("=")) {
        let name = p.name()?;
        p.expect_punct("=")?;
        return Ok(NamedExpr {
            name: Some(name),
            expr: expr(p)?,
        });
    }
    Ok(NamedExpr {
        name: None,
        expr: expr(p)?,
    })
}

pub fn expr(p: &mut Parser) -> Result<Expr, SimError> {
    let mut left = and_expr(p)?;
    while p.eat_kw("or") {
        left = Expr::Bin(BinOp::Or, Box::new(left), Box::new(and_expr(p)?));
    }
    Ok(left)
}

fn and_expr(p: &mut Parser) -> Result<Expr, SimError> {
    let mut left = comparison(p)?;
    while p.eat_kw("and") {
        left = Expr::Bin(BinOp::And, Box::new(left), Box::new(comparison(p)?));
    }
    Ok(left)
}

const CMP_PUNCTS: &[(&str, BinOp)] = &[
    ("==", BinOp::Eq),
    ("!=", BinOp::Ne),
    ("<>", BinOp::Ne),
    ("<=", BinOp::Le),
    (">=", BinOp::Ge),
    ("<", BinOp::Lt),
    (">", BinOp::Gt),
    ("=~", BinOp::EqCi),
    ("!~", BinOp::NeCi),
];

const STRING_OPS: &[(&str, BinOp)] = &[
    ("has", BinOp::Has),
    ("contains", BinOp::Contains),
    ("startswith", BinOp::StartsWith),
    ("endswith", BinOp::EndsWith),
];

fn comparison(p: &mut Parser) -> Result<Expr, SimError> {
    let left = additive(p)?;
    for (punct, op) in CMP_PUNCTS {
        if p.eat_punct(punct) {
            return Ok(Expr::Bin(*op, Box::new(left), Box::new(additive(p)?)));
        }
    }
    let negated = p.is_punct("!") && matches!(p.peek_at(1), Some(Tok::Ident(_)));
    if negated {
        p.advance();
    }
    if p.eat_kw("between") {
        return between(p, left, negated);
    }
    if p.eat_kw("in") {
        let case_insensitive = p.eat_punct("~");
        let items = p.paren_list(expr)?;
        return Ok(Expr::In {
            expr: Box::new(left),
            items,
            negated,
            case_insensitive,
        });
    }
    for (kw, op) in STRING_OPS {
        if p.eat_kw(kw) {
            let right = Box::new(additive(p)?);
            let left = Box::new(left);
            return Ok(if negated {
                Expr::NotBin(*op, left, right)
            } else {
                Expr::Bin(*op, left, right)
            });
        }
    }
    if negated {
        return Err(p.unexpected("between, in, has, contains, startswith or endswith"));
    }
    Ok(left)
}

fn between(p: &mut Parser, left: Expr, negated: bool) -> Result<Expr, SimError> {
    p.expect_punct("(")?;
    let low = additive(p)?;
    p.expect_punct("..")?;
    let high = additive(p)?;
    p.expect_punct(")")?;
    Ok(Expr::Between {
        expr: Box::new(left),
        low: Box::new(low),
        high: Box::new(high),
        negated,
    })
}

fn additive(p: &mut Parser) -> Result<Expr, SimError> {
    let mut left = multiplicative(p)?;
    loop {
        let op = if p.eat_punct("+") {
            BinOp::Add
        } else if p.eat_punct("-") {
            BinOp::Sub
        } else {
            return Ok(left);
        };
        left = Expr::Bin(op, Box::new(left), Box::new(multiplicative(p)?));
    }
}

fn multiplicative(p: &mut Parser) -> Result<Expr, SimError> {
    let mut left = unary(p)?;
    loop {
        let op = if p.eat_punct("*") {
            BinOp::Mul
        } else if p.eat_punct("/") {
            BinOp::Div
        } else if p.eat_punct("%") {
            BinOp::Mod
        } else {
            return Ok(left);
        };
        left = Expr::Bin(op, Box::new(left), Box::new(unary(p)?));
    }
}

fn unary(p: &mut Parser) -> Result<Expr, SimError> {
    if p.eat_punct("-") {
        return Ok(Expr::Neg(Box::new(unary(p)?)));
    }
    primary(p)
}

fn primary(p: &mut Parser) -> Result<Expr, SimError> {
    let Some(tok) = p.peek().cloned() else {
        return Err(p.unexpected("an expression"));
    };
    match tok {
        Tok::Punct("(") => {
            p.advance();
            let e = expr(p)?;
            p.expect_punct(")")?;
            Ok(e)
        }
        Tok::Punct("*") => {
            p.advance();
            Ok(Expr::Star)
        }
        Tok::Str(s) => {
            p.advance();
            Ok(Expr::Lit(Value::String(s)))
        }
        Tok::Number(n) => {
            p.advance();
            number(&n).map(Expr::Lit)
        }
        Tok::Span(t) => {
            p.advance();
            Ok(Expr::Lit(Value::TimeSpan(t)))
        }
        Tok::Typed(ty, raw) => {
            p.advance();
            typed_literal(&ty, &raw).map(Expr::Lit)
        }
        Tok::Quoted(name) => {
            p.advance();
            Ok(Expr::Col(name))
        }
        Tok::Ident(word) => {
            p.advance();
            identifier(p, word)
        }
        _ => Err(p.unexpected("an expression")),
    }
}

fn identifier(p: &mut Parser, word: String) -> Result<Expr, SimError> {
    if p.is_punct("(") {
        let args = p.paren_list(expr)?;
        return Ok(Expr::Call(word.to_ascii_lowercase(), args));
    }
    Ok(match word.as_str() {
        "true" => Expr::Lit(Value::Bool(true)),
        "false" => Expr::Lit(Value::Bool(false)),
        _ => Expr::Col(word),
    })
}

fn number(text: &str) -> Result<Value, SimError> {
    if text.contains(['.', 'e', 'E']) {
        return text
            .parse()
            .map(Value::Real)
            .map_err(|_| SimError::Syntax(format!("invalid real literal '{text}'")));
    }
    text.parse()
        .map(Value::Long)
        .map_err(|_| SimError::Syntax(format!("invalid long literal '{text}'")))
}

/// `datetime(...)`, `timespan(...)`, `guid(...)`, `dynamic(...)`, ... with `null` allowed.
pub fn typed_literal(ty: &str, raw: &str) -> Result<Value, SimError> {
    let Some(column_type) = ColumnType::parse(ty) else {
        return Err(SimError::Syntax(format!("unknown literal type '{ty}'")));
    };
    if raw == "null" {
        return Ok(Value::Null);
    }
    let body = raw.trim_matches(|c| c == '"' || c == '\'');
    let body = if column_type == ColumnType::Dynamic {
        raw
    } else {
        body
    };
    parse_text(body, column_type)
        .filter(|v| !v.is_null())
        .ok_or_else(|| SimError::Syntax(format!("invalid {ty} literal '{raw}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Expr {
        let mut p = Parser::new(s).unwrap();
        let e = expr(&mut p).unwrap();
        p.expect_end().unwrap();
        e
    }

    #[test]
    fn precedence() {
        let e = parse("a > 1 and b < 2 or c == 'x'");
        assert!(matches!(e, Expr::Bin(BinOp::Or, _, _)));
        let e = parse("x + 2 * 3");
        let Expr::Bin(BinOp::Add, _, r) = e else {
            panic!()
        };
        assert!(matches!(*r, Expr::Bin(BinOp::Mul, _, _)));
    }

    #[test]
    fn special_forms() {
        assert!(matches!(
            parse("['t'] between (datetime(2024-01-01) .. datetime(2024-01-02))"),
            Expr::Between { negated: false, .. }
        ));
        assert!(matches!(
            parse("x !in ('a', 'b')"),
            Expr::In { negated: true, .. }
        ));
        assert!(matches!(
            parse("tags !has 'x'"),
            Expr::NotBin(BinOp::Has, _, _)
        ));
        assert_eq!(
            parse("ingestion_time()"),
            Expr::Call("ingestion_time".into(), vec![])
        );
        assert_eq!(
            parse("time(1.02:03:04)"),
            Expr::Lit(Value::TimeSpan(937_840_000_000))
        );
        assert_eq!(parse("datetime(null)"), Expr::Lit(Value::Null));
    }

    #[test]
    fn bad_literals_are_errors() {
        let mut p = Parser::new("datetime(2024-99-99)").unwrap();
        assert!(expr(&mut p).is_err());
        let mut p = Parser::new("x !foo 'a'").unwrap();
        assert!(expr(&mut p).is_err());
    }
}
