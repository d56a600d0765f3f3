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

/// `.show table ['T'] extents where tags contains 'text'` → one row per extent, `Tags`
/// separated by line breaks. `contains` finds every per-blob tag sharing a prefix.
pub fn show_table_extents_tag_contains(table: &TableName, text: &str) -> Command {
    Command::mgmt(format!(
        ".show table {} extents where tags contains {}",
        ident(table.as_str()),
        string_literal(text)
    ))
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
        assert_eq!(
            show_table_extents_tag_contains(&t, "ingest-by:r-1.").as_str(),
            ".show table ['My T'] extents where tags contains 'ingest-by:r-1.'"
        );
        assert_eq!(
            show_table_extents_tag_contains(&t, "x' or tags has '").as_str(),
            r".show table ['My T'] extents where tags contains 'x\' or tags has \''"
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
