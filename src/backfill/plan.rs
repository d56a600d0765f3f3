//! Planning: turning row counts per ingestion-time bin into batches of bounded size, and
//! halving a batch that turned out too big. Pure functions, so the rules are tested here
//! and the benchmark plans a billion rows without a cluster.
//!
//! Ranges are half-open, `[from, to)` in ingestion time, and the batches of a plan are
//! contiguous from the earliest ingestion time to just past the latest: adjacent batches
//! never share a row, and no row of the history falls between two batches.

use std::time::Duration;

use time::OffsetDateTime;

/// Kusto's clock resolution: one tick is 100 ns.
pub const TICK: Duration = Duration::from_nanos(100);

/// Most bins one planning query asks for: the answer stays small whatever the table.
pub const MAX_BINS: u64 = 100_000;

/// Bins per planned batch: enough that batches come out close to the row limit.
const BINS_PER_BATCH: u64 = 8;

/// Rows of one ingestion-time bin, with the earliest and latest ingestion time in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin {
    pub min: OffsetDateTime,
    pub max: OffsetDateTime,
    pub rows: u64,
}

/// One batch as planned: a half-open ingestion-time range and the rows counted in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub rows: u64,
}

/// The bin width for `rows` rows spread over `[min, max]`: about [`BINS_PER_BATCH`] bins per
/// batch of `max_rows`, never more than [`MAX_BINS`] bins, never finer than a tick.
pub fn bin_width(min: OffsetDateTime, max: OffsetDateTime, rows: u64, max_rows: u64) -> Duration {
    let span = u128::try_from((max - min).whole_nanoseconds()).unwrap_or(0) + 1;
    let bins = rows
        .div_ceil(max_rows.max(1))
        .saturating_mul(BINS_PER_BATCH)
        .clamp(1, MAX_BINS);
    let width = span.div_ceil(u128::from(bins));
    let ticks = width.div_ceil(TICK.as_nanos()).max(1);
    Duration::from_nanos(u64::try_from(ticks * TICK.as_nanos()).unwrap_or(u64::MAX))
}

/// Groups bins into batches of at most `max_rows` rows each (a single bin over the limit
/// becomes a batch of its own; the adaptive split deals with it). Bins may come in any
/// order; empty bins are ignored.
pub fn batches(mut bins: Vec<Bin>, max_rows: u64) -> Vec<Range> {
    bins.retain(|b| b.rows > 0);
    bins.sort_unstable_by_key(|b| b.min);
    let Some(last) = bins.last() else {
        return Vec::new();
    };
    let end = last.max + TICK;
    let mut out: Vec<Range> = Vec::new();
    let mut current: Option<Range> = None;
    for bin in &bins {
        current = Some(match current {
            Some(mut open) if open.rows + bin.rows <= max_rows => {
                open.rows += bin.rows;
                open
            }
            Some(mut full) => {
                full.to = bin.min;
                out.push(full);
                Range {
                    from: bin.min,
                    to: end,
                    rows: bin.rows,
                }
            }
            None => Range {
                from: bin.min,
                to: end,
                rows: bin.rows,
            },
        });
    }
    out.extend(current);
    out
}

/// Why a batch is not split further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSplit {
    /// It has no more rows than the floor.
    AtFloor { rows: u64, floor: u64 },
    /// Its range is a single tick: all its rows share one ingestion time.
    OneInstant,
}

impl std::fmt::Display for NoSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSplit::AtFloor { rows, floor } => write!(
                f,
                "not split further: {rows} row(s) is at or below the split floor of {floor} (AdxBackup__BackfillSplitFloorRows)"
            ),
            NoSplit::OneInstant => f.write_str(
                "not split further: all its rows share one ingestion time, so no ingestion-time range can divide them",
            ),
        }
    }
}

/// Where to cut a batch in two: the middle of its range, on a tick. The halves are
/// `[from, mid)` and `[mid, to)`.
pub fn split_point(range: &Range, floor: u64) -> Result<OffsetDateTime, NoSplit> {
    if range.rows <= floor {
        return Err(NoSplit::AtFloor {
            rows: range.rows,
            floor,
        });
    }
    let span = (range.to - range.from).whole_nanoseconds();
    let tick = i128::from(u32::try_from(TICK.as_nanos()).unwrap_or(100));
    let half_ticks = span / 2 / tick;
    if half_ticks < 1 {
        return Err(NoSplit::OneInstant);
    }
    let offset = i64::try_from(half_ticks * tick).unwrap_or(i64::MAX);
    Ok(range.from + time::Duration::nanoseconds(offset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(second: i64) -> OffsetDateTime {
        datetime!(2024-01-15 00:00 UTC) + time::Duration::seconds(second)
    }

    fn bin(second: i64, rows: u64) -> Bin {
        Bin {
            min: at(second),
            max: at(second) + time::Duration::milliseconds(500),
            rows,
        }
    }

    /// Every bin lies inside exactly one batch, batches are contiguous and none is over
    /// the limit unless it is a single bin.
    fn check(bins: &[Bin], plan: &[Range], max_rows: u64) {
        for pair in plan.windows(2) {
            assert_eq!(pair[0].to, pair[1].from, "contiguous");
        }
        for b in bins.iter().filter(|b| b.rows > 0) {
            let holders: Vec<_> = plan
                .iter()
                .filter(|r| r.from <= b.min && b.max < r.to)
                .collect();
            assert_eq!(holders.len(), 1, "{b:?} in {plan:?}");
        }
        for r in plan {
            let inside: Vec<_> = bins
                .iter()
                .filter(|b| b.rows > 0 && r.from <= b.min && b.max < r.to)
                .collect();
            assert_eq!(r.rows, inside.iter().map(|b| b.rows).sum::<u64>());
            assert!(r.rows <= max_rows || inside.len() == 1, "{r:?}");
        }
        assert_eq!(
            plan.iter().map(|r| r.rows).sum::<u64>(),
            bins.iter().map(|b| b.rows).sum::<u64>()
        );
    }

    #[test]
    fn bins_are_grouped_up_to_the_limit() {
        let bins = vec![bin(0, 40), bin(1, 40), bin(2, 40), bin(5, 10), bin(9, 90)];
        let plan = batches(bins.clone(), 100);
        check(&bins, &plan, 100);
        assert_eq!(
            plan.iter().map(|r| r.rows).collect::<Vec<_>>(),
            vec![80, 50, 90]
        );
        assert_eq!(plan[0].from, at(0), "starts at the earliest ingestion time");
        assert_eq!(
            plan[1].from,
            at(2),
            "the next batch starts at its first bin"
        );
        assert_eq!(
            plan[2].to,
            at(9) + time::Duration::milliseconds(500) + time::Duration::nanoseconds(100),
            "ends one tick past the latest ingestion time"
        );
    }

    #[test]
    fn a_bin_over_the_limit_is_a_batch_of_its_own_and_order_does_not_matter() {
        let bins = vec![bin(3, 10), bin(1, 500), bin(0, 10), bin(2, 0)];
        let plan = batches(bins.clone(), 100);
        check(&bins, &plan, 100);
        assert_eq!(
            plan.iter().map(|r| r.rows).collect::<Vec<_>>(),
            vec![10, 500, 10]
        );
        assert!(batches(vec![bin(0, 0)], 100).is_empty());
        assert!(batches(Vec::new(), 100).is_empty());
    }

    #[test]
    fn bin_width_scales_with_rows_and_stays_on_ticks() {
        let (min, max) = (at(0), at(3600));
        // 1,000 rows in batches of 100: 10 batches, 80 bins over an hour.
        assert_eq!(
            bin_width(min, max, 1_000, 100),
            Duration::from_nanos(45_000_000_100)
        );
        // Never finer than a tick, even for rows ingested in one instant.
        assert_eq!(bin_width(min, min, 1_000_000, 1), TICK);
        // Never more than MAX_BINS bins.
        let w = bin_width(min, max, u64::MAX, 1);
        assert!(
            u128::from(MAX_BINS) * w.as_nanos() >= 3_600_000_000_000,
            "{w:?}"
        );
        assert_eq!(w.as_nanos() % TICK.as_nanos(), 0);
    }

    #[test]
    fn split_halves_on_a_tick_and_stops_at_the_floor_or_one_instant() {
        let r = Range {
            from: at(0),
            to: at(10),
            rows: 1_000,
        };
        assert_eq!(split_point(&r, 100), Ok(at(5)));
        let odd = Range {
            to: at(0) + time::Duration::nanoseconds(300),
            ..r
        };
        assert_eq!(
            split_point(&odd, 100),
            Ok(at(0) + time::Duration::nanoseconds(100))
        );
        assert_eq!(
            split_point(&r, 1_000),
            Err(NoSplit::AtFloor {
                rows: 1_000,
                floor: 1_000
            })
        );
        let instant = Range {
            to: at(0) + time::Duration::nanoseconds(100),
            ..r
        };
        assert_eq!(split_point(&instant, 100), Err(NoSplit::OneInstant));
        assert!(
            NoSplit::OneInstant
                .to_string()
                .contains("one ingestion time")
        );
    }
}
