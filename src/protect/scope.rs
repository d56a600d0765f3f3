//! Which tables are in scope: include and exclude glob patterns over table names, optionally
//! qualified by database (`Sales/Orders*`). Kusto names are case-sensitive; so are patterns.
//! adx-backup's own objects are external tables, which `.show tables` never lists, so they
//! cannot be protected by accident.

use crate::ids::{DatabaseName, TableName};
use crate::settings::ProtectSettings;

/// Whether `table` of `db` is to be protected.
pub fn in_scope(settings: &ProtectSettings, db: &DatabaseName, table: &TableName) -> bool {
    let matches = |pattern: &String| match pattern.split_once('/') {
        Some((db_pattern, table_pattern)) => {
            glob(db_pattern, db.as_str()) && glob(table_pattern, table.as_str())
        }
        None => glob(pattern, table.as_str()),
    };
    settings.include.iter().any(matches) && !settings.exclude.iter().any(matches)
}

/// `*` matches any run of characters, `?` exactly one; everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear for the patterns people write.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "Orders", true),
            ("Ord*", "Orders", true),
            ("*ers", "Orders", true),
            ("O?ders", "Orders", true),
            ("o*", "Orders", false),
            ("Temp*", "Orders", false),
            ("*_staging", "a_staging", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("", "x", false),
        ] {
            assert_eq!(glob(p, t), want, "{p} ~ {t}");
        }
    }

    #[test]
    fn include_exclude_and_database_qualified() {
        let mut s = crate::settings::Settings::load(&crate::settings::Env::from_pairs([
            ("AdxBackup__ClusterUri", "http://127.0.0.1:1"),
            ("AdxBackup__KustoCredential", "devtoken"),
            ("AdxBackup__KustoDevToken", "t"),
            ("AdxBackup__Databases", "Sales"),
            ("BackupStorage", "UseDevelopmentStorage=true"),
        ]))
        .unwrap()
        .protect;
        s.exclude = vec!["Temp*".into(), "Sales/Staging".into()];
        let db = DatabaseName::new("Sales").unwrap();
        let other = DatabaseName::new("Ops").unwrap();
        let t = |n: &str| TableName::new(n).unwrap();
        assert!(in_scope(&s, &db, &t("Orders")));
        assert!(!in_scope(&s, &db, &t("TempLoad")));
        assert!(!in_scope(&s, &db, &t("Staging")));
        assert!(in_scope(&s, &other, &t("Staging")));
    }
}
