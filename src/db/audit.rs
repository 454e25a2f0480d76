//! Queries on `audit_event`: append and page through, newest first.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::models::AuditEvent;
use super::schema::audit_event;
use super::{Conn, DbError, query, run};

query! {
    pub async fn insert(c, event: &AuditEvent) -> () {
        diesel::insert_into(audit_event::table)
            .values(event)
            .execute(c)
            .await
            .map(drop)
    }
}

/// Filters and the keyset position of an audit page.
pub struct AuditFilter<'a> {
    pub subject_user_id: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// Events strictly older than this `(created_at, id)`.
    pub before: Option<(NaiveDateTime, &'a str)>,
}

/// Up to `limit` events matching `filter`, newest first, and the total matching count
/// (ignoring the position).
pub async fn page(
    conn: &mut Conn,
    filter: &AuditFilter<'_>,
    limit: i64,
) -> Result<(Vec<AuditEvent>, i64), DbError> {
    // A macro, not a closure: a boxed query is tied to one backend, and each `run!` arm has its own.
    macro_rules! matching {
        () => {{
            let mut q = audit_event::table.into_boxed();
            if let Some(subject) = filter.subject_user_id {
                q = q.filter(audit_event::subject_user_id.eq(subject));
            }
            if let Some(kind) = filter.kind {
                q = q.filter(audit_event::kind.eq(kind));
            }
            q
        }};
    }
    let total: i64 = run!(conn, |c| matching!().count().get_result(c).await)?;
    let rows = run!(conn, |c| {
        let mut q = matching!();
        if let Some((at, id)) = filter.before {
            q = q.filter(
                audit_event::created_at
                    .lt(at)
                    .or(audit_event::created_at.eq(at).and(audit_event::id.lt(id))),
            );
        }
        q.order((audit_event::created_at.desc(), audit_event::id.desc()))
            .limit(limit)
            .select(AuditEvent::as_select())
            .load(c)
            .await
    })?;
    Ok((rows, total))
}
