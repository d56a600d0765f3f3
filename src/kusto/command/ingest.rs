//! Ingestion (restore), tagged extents (exactly-once bookkeeping), capacity, and the
//! test-only seeding commands.

use time::OffsetDateTime;

use super::literal::{ident, iso_datetime, obfuscated_string_literal, string_literal};
use super::{Command, Query};
use crate::ids::TableName;

/// Properties of one `.ingest async` of parquet blobs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestProps {
    /// The extents' creation time (retention and caching age), e.g. the day of the data.
    pub creation_time: Option<OffsetDateTime>,
    /// Extent tags, e.g. `ingest-by:<job>-<chunk>` so the chunk can be found and dropped.
    pub tags: Vec<String>,
    /// Skip the ingestion if an extent already carries `ingest-by:<value>`.
    pub ingest_if_not_exists: Vec<String>,
}

/// `.ingest async into table ['T'] (h'uri', ...) with (format='parquet', ...)` → `OperationId`.
/// Each URI is a blob URL with its auth suffix, e.g. `...parquet;managed_identity=system`.
pub fn ingest_async<U: AsRef<str>>(table: &TableName, uris: &[U], props: &IngestProps) -> Command {
    let sources = uris
        .iter()
        .map(|uri| obfuscated_string_literal(uri.as_ref()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut with = vec!["format='parquet'".to_owned()];
    if let Some(at) = props.creation_time {
        with.push(format!(
            "creationTime={}",
            string_literal(&iso_datetime(at))
        ));
    }
    if !props.tags.is_empty() {
        with.push(format!("tags={}", json_list_literal(&props.tags)));
    }
    if !props.ingest_if_not_exists.is_empty() {
        with.push(format!(
            "ingestIfNotExists={}",
            json_list_literal(&props.ingest_if_not_exists)
        ));
    }
    Command::mgmt(format!(
        ".ingest async into table {} ({sources}) with ({})",
        ident(table.as_str()),
        with.join(", ")
    ))
}

/// Kusto takes tag lists as a JSON array inside a string literal: `'["a","b"]'`.
fn json_list_literal(items: &[String]) -> String {
    // Serializing a list of strings cannot fail; fall back to an empty list rather than panic.
    let json = serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned());
    string_literal(&json)
}

/// `.show table ['T'] extents where tags has 'tag'`
pub fn show_table_extents_with_tag(table: &TableName, tag: &str) -> Command {
    Command::mgmt(tagged_extents(table, tag))
}

/// `.drop extents <| .show table ['T'] extents where tags has 'tag'`: undoes a tagged ingestion.
pub fn drop_extents_tagged(table: &TableName, tag: &str) -> Command {
    Command::mgmt(format!(".drop extents <| {}", tagged_extents(table, tag)))
}

fn tagged_extents(table: &TableName, tag: &str) -> String {
    format!(
        ".show table {} extents where tags has {}",
        ident(table.as_str()),
        string_literal(tag)
    )
}

/// `.show capacity` → `Resource, Total, Consumed, Remaining` (compare `Resource` with `=~`).
pub fn show_capacity() -> Command {
    Command::mgmt(".show capacity".to_owned())
}

/// `.set-or-append ['T'] <| query`. For seeding test data only.
pub fn set_or_append(table: &TableName, query: &Query) -> Command {
    Command::mgmt(format!(
        ".set-or-append {} <| {}",
        ident(table.as_str()),
        query.as_str()
    ))
}

/// `.ingest inline into table ['T'] <| csv`. For seeding test data only. Every field is
/// CSV-quoted (`"a""b"`), so a field can hold commas, quotes and line breaks.
pub fn ingest_inline(table: &TableName, rows: &[Vec<String>]) -> Command {
    let csv = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n");
    Command::mgmt(format!(
        ".ingest inline into table {} <|\n{csv}",
        ident(table.as_str())
    ))
}

fn csv_field(field: &str) -> String {
    format!("\"{}\"", field.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::command::QueryBuilder;
    use time::macros::datetime;

    fn t(name: &str) -> TableName {
        TableName::new(name).unwrap()
    }

    #[test]
    fn ingest_with_tags_and_creation_time() {
        let props = IngestProps {
            creation_time: Some(datetime!(2024-01-15 00:00 UTC)),
            tags: vec!["ingest-by:bk-20240115-a".to_owned(), "backup".to_owned()],
            ingest_if_not_exists: vec!["bk-20240115-a".to_owned()],
        };
        let uris = [
            "https://acct.blob.core.windows.net/backup/Db/T/20240115/a.parquet;managed_identity=system",
        ];
        assert_eq!(
            ingest_async(&t("T"), &uris, &props).as_str(),
            ".ingest async into table ['T'] \
             (h'https://acct.blob.core.windows.net/backup/Db/T/20240115/a.parquet;managed_identity=system') \
             with (format='parquet', creationTime='2024-01-15T00:00:00.0000000Z', \
             tags='[\"ingest-by:bk-20240115-a\",\"backup\"]', ingestIfNotExists='[\"bk-20240115-a\"]')"
        );
        assert_eq!(
            ingest_async(&t("T"), &["a", "b"], &IngestProps::default()).as_str(),
            ".ingest async into table ['T'] (h'a', h'b') with (format='parquet')"
        );
    }

    #[test]
    fn hostile_tags_stay_inside_the_literal() {
        let props = IngestProps {
            tags: vec!["x']\n.drop table T".to_owned()],
            ..IngestProps::default()
        };
        let text = ingest_async(&t("T"), &["u"], &props).as_str().to_owned();
        assert!(
            text.ends_with(r#"tags='["x\']\\n.drop table T"]')"#),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn extents_and_capacity() {
        assert_eq!(
            show_table_extents_with_tag(&t("T"), "ingest-by:bk-1").as_str(),
            ".show table ['T'] extents where tags has 'ingest-by:bk-1'"
        );
        assert_eq!(
            drop_extents_tagged(&t("T"), "ingest-by:bk-1").as_str(),
            ".drop extents <| .show table ['T'] extents where tags has 'ingest-by:bk-1'"
        );
        assert_eq!(
            drop_extents_tagged(&t("T"), "a' or tags has '").as_str(),
            r".drop extents <| .show table ['T'] extents where tags has 'a\' or tags has \''"
        );
        assert_eq!(show_capacity().as_str(), ".show capacity");
    }

    #[test]
    fn seeding() {
        let q = QueryBuilder::table(&t("Src")).build();
        assert_eq!(
            set_or_append(&t("T"), &q).as_str(),
            ".set-or-append ['T'] <| ['Src']"
        );
        let rows = vec![
            vec!["2024-01-15T00:00:00Z".to_owned(), "a,\"b\"".to_owned()],
            vec!["2024-01-16T00:00:00Z".to_owned(), String::new()],
        ];
        assert_eq!(
            ingest_inline(&t("T"), &rows).as_str(),
            ".ingest inline into table ['T'] <|\n\"2024-01-15T00:00:00Z\",\"a,\"\"b\"\"\"\n\"2024-01-16T00:00:00Z\",\"\""
        );
    }
}
