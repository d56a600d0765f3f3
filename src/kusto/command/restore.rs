//! Restore's commands: the queued-ingestion handshake on the target's ingest endpoint, the
//! tables a schema snapshot names, and the extents a restore job tagged.

use super::Command;
use super::literal::{ident, string_literal};
use crate::ids::{ColumnName, TableName};
use crate::kusto::KustoType;

/// `.get ingestion resources` (on the ingest endpoint) → `ResourceTypeName, StorageRoot`:
/// the ingestion queues, the status queues and temporary storage, as SAS URLs.
pub fn get_ingestion_resources() -> Command {
    Command::mgmt(".get ingestion resources".to_owned())
}

/// `.get kusto identity token` (on the ingest endpoint) → `AuthorizationContext`, which
/// every queued-ingestion message carries.
pub fn get_kusto_identity_token() -> Command {
    Command::mgmt(".get kusto identity token".to_owned())
}

/// `.create-merge table ['T'] (['c']:type, ...)`: creates the table, or adds the columns it
/// lacks; a column of another type fails the command and changes nothing.
pub fn create_merge_table(table: &TableName, columns: &[(ColumnName, KustoType)]) -> Command {
    let columns = columns
        .iter()
        .map(|(name, ty)| format!("{}:{}", ident(name.as_str()), ty.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    Command::mgmt(format!(
        ".create-merge table {} ({columns})",
        ident(table.as_str())
    ))
}

/// `.show tables (['T1'], ...) extents where tags contains 'common' | where Tags contains
/// 'a' or Tags contains 'b' | project RowCount, Tags` → one row per extent of those tables
/// carrying a tag that contains `common` and one that contains any of `any`, `Tags`
/// separated by line breaks. The tag filter inside the command (the doc's recommended
/// narrowing) takes every extent of a restore job; the pipe keeps those of its open chunks,
/// so the answer stays as small as the chunks in flight however long the job has run.
/// The grammar (a list of tables, one tag filter per `and`, no `or`) is the table scope of
/// https://learn.microsoft.com/azure/data-explorer/kusto/management/show-extents.
pub fn show_tables_extents_tagged(tables: &[TableName], common: &str, any: &[String]) -> Command {
    let tables = tables
        .iter()
        .map(|t| ident(t.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut csl = format!(
        ".show tables ({tables}) extents where tags contains {}",
        string_literal(common)
    );
    if !any.is_empty() {
        let any = any
            .iter()
            .map(|text| format!("Tags contains {}", string_literal(text)))
            .collect::<Vec<_>>()
            .join(" or ");
        csl.push_str(&format!(" | where {any}"));
    }
    csl.push_str(" | project RowCount, Tags");
    Command::mgmt(csl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_commands() {
        let t = TableName::new("My T").unwrap();
        assert_eq!(
            create_merge_table(
                &t,
                &[
                    (ColumnName::new("Timestamp").unwrap(), KustoType::DateTime),
                    (ColumnName::new("a b").unwrap(), KustoType::Dynamic)
                ]
            )
            .as_str(),
            ".create-merge table ['My T'] (['Timestamp']:datetime, ['a b']:dynamic)"
        );
        let u = TableName::new("U").unwrap();
        assert_eq!(
            show_tables_extents_tagged(
                &[t.clone(), u],
                "ingest-by:r-1.",
                &[
                    "ingest-by:r-1.c-000001.".into(),
                    "ingest-by:r-1.c-000002.".into()
                ]
            )
            .as_str(),
            ".show tables (['My T'], ['U']) extents where tags contains 'ingest-by:r-1.' | where Tags contains 'ingest-by:r-1.c-000001.' or Tags contains 'ingest-by:r-1.c-000002.' | project RowCount, Tags"
        );
        assert_eq!(
            show_tables_extents_tagged(
                std::slice::from_ref(&t),
                "x' or tags has '",
                &["y'".into()]
            )
            .as_str(),
            r".show tables (['My T']) extents where tags contains 'x\' or tags has \'' | where Tags contains 'y\'' | project RowCount, Tags"
        );
        assert_eq!(
            show_tables_extents_tagged(std::slice::from_ref(&t), "a", &[]).as_str(),
            ".show tables (['My T']) extents where tags contains 'a' | project RowCount, Tags"
        );
        assert_eq!(
            get_ingestion_resources().as_str(),
            ".get ingestion resources"
        );
        assert_eq!(
            get_kusto_identity_token().as_str(),
            ".get kusto identity token"
        );
    }
}
