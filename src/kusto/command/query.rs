//! Queries, assembled from typed parts only.
//!
//! A [`QueryBuilder`] starts from a table and appends `where` filters; a terminal method
//! (`count`, `count_by_day`, `ingestion_time_bins`, `build`) yields a [`Query`], which can be
//! sent ([`Query::command`]) or embedded in a command (`.export ... <| query`).

use std::time::Duration;

use time::OffsetDateTime;

use super::Command;
use super::literal::{datetime_literal, ident, string_literal, timespan_literal};
use crate::ids::{ColumnName, Cursor, Day, TableName};

/// A complete query, built only by [`QueryBuilder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query(String);

impl Query {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The query as something to send to `/v2/rest/query`.
    pub fn command(&self) -> Command {
        Command::query(self.0.clone())
    }
}

/// `source | where ... | ...`, one typed step at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryBuilder {
    text: String,
}

impl QueryBuilder {
    /// `['T']`
    pub fn table(table: &TableName) -> Self {
        Self {
            text: ident(table.as_str()),
        }
    }

    /// `external_table('bk_T')`
    pub fn external_table(table: &TableName) -> Self {
        Self {
            text: format!("external_table({})", string_literal(table.as_str())),
        }
    }

    /// `print Cursor=cursor_current()`: the database's current cursor, one row.
    pub fn print_cursor_current() -> Query {
        Query("print Cursor=cursor_current()".to_owned())
    }

    /// `print ['C']='text'`: one row of one string column, from no table.
    pub fn print_text(column: &ColumnName, text: &str) -> Query {
        Query(format!(
            "print {}={}",
            ident(column.as_str()),
            string_literal(text)
        ))
    }

    /// `| where cursor_after('c')`: rows committed after the cursor.
    pub fn cursor_after(self, cursor: &Cursor) -> Self {
        self.pipe(&format!(
            "where cursor_after({})",
            string_literal(cursor.as_str())
        ))
    }

    /// `| where cursor_before_or_at('c')`: rows committed up to and including the cursor.
    pub fn cursor_before_or_at(self, cursor: &Cursor) -> Self {
        self.pipe(&format!(
            "where cursor_before_or_at({})",
            string_literal(cursor.as_str())
        ))
    }

    /// `| where ingestion_time() >= from and ingestion_time() < to`: a half-open batch, so
    /// adjacent batches never share a row.
    pub fn ingestion_time_between(self, from: OffsetDateTime, to: OffsetDateTime) -> Self {
        self.pipe(&format!(
            "where ingestion_time() >= {} and ingestion_time() < {}",
            datetime_literal(from),
            datetime_literal(to)
        ))
    }

    /// `| where ingestion_time() > t`: rows ingested after a moment, e.g. after what an
    /// earlier continuous export reached.
    pub fn ingestion_time_after(self, at: OffsetDateTime) -> Self {
        self.pipe(&format!(
            "where ingestion_time() > {}",
            datetime_literal(at)
        ))
    }

    /// `| where ingestion_time() <= t`: rows a continuous export that reached `t` has
    /// exported (its `ExportedTo`), and no later ones.
    pub fn ingestion_time_at_or_before(self, at: OffsetDateTime) -> Self {
        self.pipe(&format!(
            "where ingestion_time() <= {}",
            datetime_literal(at)
        ))
    }

    /// `| where ['c'] >= day and ['c'] < next day`: the rows of one backup day folder (the
    /// export partitions by `startofday(c)`).
    pub fn on_day(self, column: &ColumnName, day: Day) -> Self {
        let start = day.date().midnight().assume_utc();
        self.pipe(&format!(
            "where {c} >= {} and {c} < {}",
            datetime_literal(start),
            datetime_literal(start + time::Duration::DAY),
            c = ident(column.as_str())
        ))
    }

    /// `| where isnull(ingestion_time())`: rows ingested while the policy was off, which every
    /// time range misses.
    pub fn ingestion_time_is_null(self) -> Self {
        self.pipe("where isnull(ingestion_time())")
    }

    /// `| count` → one row `Count`.
    pub fn count(self) -> Query {
        self.pipe("count").build()
    }

    /// `| summarize RowCount=count() by Day=startofday(['col'])` → `Day, RowCount`.
    pub fn count_by_day(self, column: &ColumnName) -> Query {
        self.pipe(&format!(
            "summarize RowCount=count() by Day=startofday({})",
            ident(column.as_str())
        ))
        .build()
    }

    /// What `verify` compares with the catalog: per day of `column` (one row when None),
    /// every row, and the rows ingested at or before `until` (what the backup should already
    /// hold) → `[Day,] Rows, Comparable`. Rows without an ingestion time are in `Rows` only.
    pub fn verify_counts(self, column: Option<&ColumnName>, until: OffsetDateTime) -> Query {
        let counts = format!(
            "summarize Rows=count(), Comparable=countif(ingestion_time() <= {})",
            datetime_literal(until)
        );
        match column {
            Some(c) => self.pipe(&format!(
                "{counts} by Day=startofday({})",
                ident(c.as_str())
            )),
            None => self.pipe(&counts),
        }
        .build()
    }

    /// Row counts per ingestion-time bin, the input of backfill planning →
    /// `Bin, RowCount, MinIngestionTime, MaxIngestionTime`.
    pub fn ingestion_time_bins(self, bin: Duration) -> Query {
        self.pipe(&format!(
            "summarize RowCount=count(), MinIngestionTime=min(ingestion_time()), MaxIngestionTime=max(ingestion_time()) by Bin=bin(ingestion_time(), {})",
            timespan_literal(bin)
        ))
        .build()
    }

    /// Row count and ingestion-time range of what is left →
    /// `RowCount, MinIngestionTime, MaxIngestionTime` (one row).
    pub fn ingestion_time_summary(self) -> Query {
        self.pipe(
            "summarize RowCount=count(), MinIngestionTime=min(ingestion_time()), MaxIngestionTime=max(ingestion_time())",
        )
        .build()
    }

    pub fn build(self) -> Query {
        Query(self.text)
    }

    fn pipe(mut self, step: &str) -> Self {
        self.text.push_str(" | ");
        self.text.push_str(step);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::command::CommandKind;
    use time::macros::datetime;

    fn t(name: &str) -> TableName {
        TableName::new(name).unwrap()
    }

    #[test]
    fn cursor_range_count() {
        let q = QueryBuilder::table(&t("My Table"))
            .cursor_after(&Cursor::new("1"))
            .cursor_before_or_at(&Cursor::new("2"))
            .count();
        assert_eq!(
            q.as_str(),
            "['My Table'] | where cursor_after('1') | where cursor_before_or_at('2') | count"
        );
        assert_eq!(q.command().kind(), CommandKind::Query);
        assert_eq!(q.command().as_str(), q.as_str());
    }

    #[test]
    fn hostile_cursor_is_a_literal() {
        let q = QueryBuilder::table(&t("T"))
            .cursor_before_or_at(&Cursor::new("') | project secret //"))
            .build();
        assert_eq!(
            q.as_str(),
            r"['T'] | where cursor_before_or_at('\') | project secret //')"
        );
    }

    #[test]
    fn ingestion_time_batches() {
        let q = QueryBuilder::table(&t("T"))
            .cursor_before_or_at(&Cursor::new("9"))
            .ingestion_time_between(
                datetime!(2024-01-15 00:00 UTC),
                datetime!(2024-01-15 01:00 UTC),
            )
            .build();
        assert_eq!(
            q.as_str(),
            "['T'] | where cursor_before_or_at('9') | where ingestion_time() >= datetime(2024-01-15T00:00:00.0000000Z) \
             and ingestion_time() < datetime(2024-01-15T01:00:00.0000000Z)"
        );
        assert_eq!(
            QueryBuilder::table(&t("T"))
                .ingestion_time_is_null()
                .count()
                .as_str(),
            "['T'] | where isnull(ingestion_time()) | count"
        );
        assert_eq!(
            QueryBuilder::table(&t("T"))
                .ingestion_time_bins(Duration::from_secs(3600))
                .as_str(),
            "['T'] | summarize RowCount=count(), MinIngestionTime=min(ingestion_time()), \
             MaxIngestionTime=max(ingestion_time()) by Bin=bin(ingestion_time(), time(0.01:00:00.0000000))"
        );
        assert_eq!(
            QueryBuilder::table(&t("T"))
                .cursor_before_or_at(&Cursor::new("9"))
                .ingestion_time_summary()
                .as_str(),
            "['T'] | where cursor_before_or_at('9') | summarize RowCount=count(), \
             MinIngestionTime=min(ingestion_time()), MaxIngestionTime=max(ingestion_time())"
        );
    }

    #[test]
    fn verification_queries() {
        let col = ColumnName::new("Timestamp").unwrap();
        assert_eq!(
            QueryBuilder::external_table(&t("bk_T"))
                .count_by_day(&col)
                .as_str(),
            "external_table('bk_T') | summarize RowCount=count() by Day=startofday(['Timestamp'])"
        );
        let until = datetime!(2024-01-15 10:00:00.5 UTC);
        assert_eq!(
            QueryBuilder::table(&t("My T"))
                .verify_counts(Some(&col), until)
                .as_str(),
            "['My T'] | summarize Rows=count(), Comparable=countif(ingestion_time() <= \
             datetime(2024-01-15T10:00:00.5000000Z)) by Day=startofday(['Timestamp'])"
        );
        assert_eq!(
            QueryBuilder::table(&t("T"))
                .verify_counts(None, until)
                .as_str(),
            "['T'] | summarize Rows=count(), Comparable=countif(ingestion_time() <= \
             datetime(2024-01-15T10:00:00.5000000Z))"
        );
        assert_eq!(
            QueryBuilder::print_cursor_current().as_str(),
            "print Cursor=cursor_current()"
        );
    }
}
