//! Numbers for the admin overview: conversations started and the median
//! time to the first agent reply, per UTC day, and the open backlog. Only
//! reads, and every query filters on the tenant.

use crate::rows;
use crate::{Result, Store};
use palisade_model::TenantId;

/// One day in milliseconds.
pub const DAY_MILLIS: i64 = 86_400_000;

/// One UTC day of the overview.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayStats {
    /// The day's first millisecond (UTC).
    pub day_start: i64,
    /// Conversations started that day.
    pub conversations: i64,
    /// The median time from a conversation's start to its first agent
    /// reply, over that day's conversations that have one.
    pub median_first_response_ms: Option<i64>,
}

/// Conversations waiting for an answer now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Backlog {
    pub open_unassigned: i64,
    pub open_assigned: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantStats {
    /// Oldest day first; today is the last.
    pub days: Vec<DayStats>,
    pub backlog: Backlog,
}

impl Store {
    /// The last `days` UTC days up to and including the one holding `now`.
    pub async fn stats(&self, tenant: &TenantId, days: i64, now: i64) -> Result<TenantStats> {
        let days = days.max(1);
        let first_day = now.div_euclid(DAY_MILLIS) - (days - 1);
        let since = first_day * DAY_MILLIS;

        // Both reads in one tenant transaction: row-level security on
        // PostgreSQL, and one snapshot for the days and the backlog.
        let mut tx = self.tenant_tx(tenant).await?;
        let found = sqlx::query(
            "SELECT c.created_at AS created_at, \
             (SELECT MIN(m.created_at) FROM messages m \
              WHERE m.conversation_id = c.id AND m.tenant_id = c.tenant_id \
              AND m.author_kind = 'agent') AS first_reply \
             FROM conversations c WHERE c.tenant_id = $1 AND c.created_at >= $2",
        )
        .bind(tenant.as_str())
        .bind(since)
        .fetch_all(&mut *tx)
        .await?;
        let backlog_rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM conversations \
             WHERE tenant_id = $1 AND status IN ('open', 'assigned') GROUP BY status",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        let slots = usize::try_from(days).unwrap_or(1);
        let mut counts = vec![0_i64; slots];
        let mut waits: Vec<Vec<i64>> = vec![Vec::new(); slots];
        for row in &found {
            let created = rows::int(row, "created_at")?;
            let Ok(slot) = usize::try_from(created.div_euclid(DAY_MILLIS) - first_day) else {
                continue;
            };
            if slot >= slots {
                // Started after `now` (a clock step); not part of these days.
                continue;
            }
            counts[slot] += 1;
            if let Some(reply) = rows::opt_int(row, "first_reply")? {
                waits[slot].push((reply - created).max(0));
            }
        }

        let days = (0..slots)
            .map(|slot| DayStats {
                day_start: (first_day + slot as i64) * DAY_MILLIS,
                conversations: counts[slot],
                median_first_response_ms: median(&mut waits[slot]),
            })
            .collect();
        let mut backlog = Backlog::default();
        for row in &backlog_rows {
            let n = rows::int(row, "n")?;
            match rows::text(row, "status")?.as_str() {
                "open" => backlog.open_unassigned = n,
                _ => backlog.open_assigned = n,
            }
        }
        Ok(TenantStats { days, backlog })
    }
}

/// The middle value; for an even count, the mean of the two middle ones
/// (rounded down).
fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[mid])
    } else {
        Some(values[mid - 1] + (values[mid] - values[mid - 1]) / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [7]), Some(7));
        assert_eq!(median(&mut [30, 10, 20]), Some(20));
        assert_eq!(median(&mut [40, 10, 20, 30]), Some(25));
    }
}
