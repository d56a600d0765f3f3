//! Background extent merges and extent-tags retention, as a cluster's maintenance does
//! them: small extents of a table are merged into one that carries the union of their
//! tags (so an `ingest-by:` tag can end up on rows another ingestion brought), except that
//! extents with different `drop-by:` tags are kept apart, creation times further apart
//! than `MaxRangeInHours` are kept apart, and `AllowMerge: false` stops merging.

use uuid::Uuid;

use super::{Cluster, Extent, Table};

/// One merge: the extents it replaced and the extent it made.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub table: String,
    pub sources: Vec<Uuid>,
    pub result: Uuid,
}

impl Cluster {
    /// One maintenance pass over every table: expire extent tags, then merge.
    pub fn maintain(&mut self, now: i64) -> Vec<Merged> {
        let mut merges = Vec::new();
        for table in self
            .databases
            .values_mut()
            .flat_map(|db| db.tables.values_mut())
        {
            table.expire_tags(now);
            merges.extend(table.merge_extents());
        }
        merges
    }
}

impl Table {
    /// Merges what the merge policy allows; returns the merges made.
    pub fn merge_extents(&mut self) -> Vec<Merged> {
        if !self.policies.allow_merge() {
            return Vec::new();
        }
        let max_range = self.policies.merge_max_range();
        let mut groups: Vec<Vec<Extent>> = Vec::new();
        for extent in std::mem::take(&mut self.extents) {
            let fits = groups.iter_mut().find(|g| {
                drop_by_tags(&g[0]) == drop_by_tags(&extent) && within(g, &extent, max_range)
            });
            match fits {
                Some(group) => group.push(extent),
                None => groups.push(vec![extent]),
            }
        }
        let mut merges = Vec::new();
        for group in groups {
            if group.len() < 2 {
                self.extents.extend(group);
                continue;
            }
            let sources = group.iter().map(|e| e.id).collect();
            let merged = merge(group);
            merges.push(Merged {
                table: self.name.clone(),
                sources,
                result: merged.id,
            });
            self.extents.push(merged);
        }
        merges
    }

    /// Removes the tags whose extent-tags retention period has passed (counted from the
    /// extent's newest creation time); returns how many tags went.
    pub fn expire_tags(&mut self, now: i64) -> usize {
        let rules = self.policies.tag_retention();
        let mut removed = 0;
        for extent in &mut self.extents {
            let before = extent.tags.len();
            extent.tags.retain(|tag| {
                !rules.iter().any(|(prefix, period)| {
                    tag.starts_with(prefix.as_str())
                        && extent.max_created_on.saturating_add(*period) < now
                })
            });
            removed += before - extent.tags.len();
        }
        removed
    }
}

fn drop_by_tags(e: &Extent) -> Vec<&str> {
    let mut tags: Vec<&str> = e
        .tags
        .iter()
        .filter(|t| t.starts_with("drop-by:"))
        .map(String::as_str)
        .collect();
    tags.sort_unstable();
    tags
}

/// Whether adding `e` keeps the group's creation times within `max_range`.
fn within(group: &[Extent], e: &Extent, max_range: i64) -> bool {
    let min = group
        .iter()
        .map(|g| g.min_created_on)
        .chain([e.min_created_on])
        .min();
    let max = group
        .iter()
        .map(|g| g.max_created_on)
        .chain([e.max_created_on])
        .max();
    matches!((min, max), (Some(lo), Some(hi)) if hi - lo <= max_range)
}

fn merge(group: Vec<Extent>) -> Extent {
    let mut tags: Vec<String> = Vec::new();
    let mut out = Extent {
        id: Uuid::new_v4(),
        rows: Vec::new(),
        deleted: Vec::new(),
        metas: Vec::new(),
        min_created_on: i64::MAX,
        max_created_on: i64::MIN,
        tags: Vec::new(),
        original_size: 0,
    };
    for e in group {
        out.rows.extend(e.rows);
        out.deleted.extend(e.deleted);
        out.metas.extend(e.metas);
        out.min_created_on = out.min_created_on.min(e.min_created_on);
        out.max_created_on = out.max_created_on.max(e.max_created_on);
        out.original_size += e.original_size;
        for t in e.tags {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
    }
    out.tags = tags;
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::{Database, ExtentProps};
    use crate::table::Column;
    use crate::value::{ColumnType, Value};

    const DAY: i64 = 86_400 * 10_000_000;

    fn db_with(extents: &[(&[&str], i64)]) -> Database {
        let mut db = Database::new("db");
        db.tables.insert(
            "T".into(),
            Table::new("T", vec![Column::new("a", ColumnType::Long)]),
        );
        let now = 1_700_000_000 * 10_000_000;
        for (i, (tags, created)) in extents.iter().enumerate() {
            let props = ExtentProps {
                creation_time: Some(now + created),
                tags: tags.iter().map(|t| (*t).to_string()).collect(),
            };
            db.ingest("T", vec![(vec![vec![Value::Long(i as i64)]], props)], now)
                .unwrap();
        }
        db
    }

    fn tag_sets(t: &Table) -> Vec<Vec<String>> {
        let mut sets: Vec<Vec<String>> = t.extents.iter().map(|e| e.tags.clone()).collect();
        sets.sort();
        sets
    }

    #[test]
    fn merged_extents_carry_every_tag_but_drop_by_tags_stay_apart() {
        let mut db = db_with(&[
            (&["ingest-by:a"], 0),
            (&["ingest-by:b"], 0),
            (&["drop-by:x"], 0),
            (&["drop-by:y"], 0),
            (&["drop-by:x", "ingest-by:c"], 0),
            (&[], 3 * DAY),
        ]);
        let t = db.table_mut("T").unwrap();
        let merges = t.merge_extents();
        assert_eq!(merges.len(), 2, "{merges:?}");
        assert_eq!(
            tag_sets(t),
            vec![
                vec![],
                vec!["drop-by:x".to_string(), "ingest-by:c".to_string()],
                vec!["drop-by:y".to_string()],
                vec!["ingest-by:a".to_string(), "ingest-by:b".to_string()],
            ]
        );
        let rows: usize = t.extents.iter().map(|e| e.rows.len()).sum();
        assert_eq!(rows, 6);
        let metas_follow_rows = t.extents.iter().all(|e| e.metas.len() == e.rows.len());
        assert!(metas_follow_rows);
    }

    #[test]
    fn allow_merge_false_stops_merging() {
        let mut db = db_with(&[(&["ingest-by:a"], 0), (&["ingest-by:b"], 0)]);
        let t = db.table_mut("T").unwrap();
        t.policies.merge = Some(json!({"AllowMerge": false}));
        assert!(t.merge_extents().is_empty());
        assert_eq!(t.extents.len(), 2);
    }

    #[test]
    fn expired_tags_go_and_others_stay() {
        let mut db = db_with(&[(&["ingest-by:a", "keep"], 0)]);
        let t = db.table_mut("T").unwrap();
        t.policies.extent_tags_retention =
            Some(json!([{"TagPrefix": "ingest-by:", "RetentionPeriod": "1.00:00:00"}]));
        let created = t.extents[0].max_created_on;
        assert_eq!(t.expire_tags(created + DAY / 2), 0);
        assert_eq!(t.expire_tags(created + 2 * DAY), 1);
        assert_eq!(t.extents[0].tags, vec!["keep".to_string()]);
    }
}
