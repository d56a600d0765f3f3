//! One management command run as a named step of a capability's work, so every failure says
//! which database, table and step it happened in, without each caller writing it out.

use super::client::KustoClient;
use super::command::Command;
use super::error::KustoError;
use super::frames::KustoTable;
use crate::ids::{DatabaseName, TableName, TableRef};

/// Where a command runs and what it is for (`"read the table schema"`).
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    pub database: &'a DatabaseName,
    pub table: Option<&'a TableName>,
    /// Reads after "could not": a verb phrase.
    pub what: &'static str,
}

/// A step's command failed, or its result did not have the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("could not {step} in database {database}{}: {source}", table.as_ref().map(|t| format!(", table {t}")).unwrap_or_default())]
pub struct StepError {
    pub database: DatabaseName,
    pub table: Option<TableName>,
    pub step: &'static str,
    #[source]
    pub source: Box<KustoError>,
}

impl<'a> Step<'a> {
    pub fn database(database: &'a DatabaseName, what: &'static str) -> Self {
        Self {
            database,
            table: None,
            what,
        }
    }

    pub fn table(t: &'a TableRef, what: &'static str) -> Self {
        Self {
            database: &t.database,
            table: Some(&t.table),
            what,
        }
    }

    /// Runs `cmd` on the step's database.
    pub async fn mgmt(
        &self,
        kusto: &KustoClient,
        cmd: &Command,
    ) -> Result<Vec<KustoTable>, StepError> {
        kusto
            .mgmt(self.database, cmd)
            .await
            .map_err(|e| self.error(e))
    }

    /// An error of this step, e.g. a result row that does not have the expected shape.
    pub fn error(&self, source: impl Into<KustoError>) -> StepError {
        StepError {
            database: self.database.clone(),
            table: self.table.cloned(),
            step: self.what,
            source: Box::new(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::frames::{FrameError, RowProblem};

    #[test]
    fn errors_name_database_table_and_step() {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        };
        let shape = FrameError {
            table: "Table_0".into(),
            column: "Schema".into(),
            problem: RowProblem::Null,
        };
        let text = Step::table(&t, "read the table schema")
            .error(shape.clone())
            .to_string();
        assert!(
            text.starts_with("could not read the table schema in database Sales, table Orders: "),
            "{text}"
        );
        let text = Step::database(&t.database, "list tables")
            .error(shape)
            .to_string();
        assert!(
            text.starts_with("could not list tables in database Sales: "),
            "{text}"
        );
    }
}
