//! Queries on `mail_outbox`. Mail is written in the transaction that decides to send it (with
//! its token, when it carries one) and delivered later by a worker that claims rows atomically,
//! so several replicas never send the same row twice.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::schema::{mail_outbox, verification};
use super::verifications::NewVerification;
use super::{Conn, DbError, run, transaction};

#[derive(Debug, Insertable)]
#[diesel(table_name = mail_outbox, treat_none_as_default_value = false)]
pub struct NewMail<'a> {
    pub id: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
    pub created_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
}

/// A claimed row, ready to deliver.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct Mail {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub attempts: i32,
}

/// One message to queue, and what goes with it.
pub struct Enqueue<'a> {
    pub mail: NewMail<'a>,
    /// Send limit: no more than `limit` messages to this recipient created after `since`.
    pub since: NaiveDateTime,
    pub limit: i64,
    /// Tokens of this (user id, purpose) to void first: a new link replaces older ones.
    pub invalidate: Option<(&'a str, &'a str)>,
    pub token: Option<NewVerification<'a>>,
}

/// Queues a message with its token, atomically. Returns false (and writes nothing) when the
/// recipient has reached its send limit: older links then stay valid.
pub async fn enqueue(conn: &mut Conn, e: &Enqueue<'_>) -> Result<bool, DbError> {
    transaction!(conn, |c| {
        let recent: i64 = mail_outbox::table
            .filter(mail_outbox::recipient.eq(e.mail.recipient))
            .filter(mail_outbox::created_at.gt(e.since))
            .count()
            .get_result(c)
            .await?;
        if recent >= e.limit {
            return Ok(false);
        }
        if let Some((user_id, purpose)) = e.invalidate {
            diesel::delete(
                verification::table
                    .filter(verification::user_id.eq(user_id))
                    .filter(verification::purpose.eq(purpose)),
            )
            .execute(c)
            .await?;
        }
        if let Some(token) = &e.token {
            diesel::insert_into(verification::table)
                .values(token)
                .execute(c)
                .await?;
        }
        diesel::insert_into(mail_outbox::table)
            .values(&e.mail)
            .execute(c)
            .await?;
        Ok(true)
    })
}

/// Ids of undelivered rows that are due and not claimed by a live worker.
pub async fn due(conn: &mut Conn, now: NaiveDateTime, max: i64) -> Result<Vec<String>, DbError> {
    run!(conn, |c| {
        mail_outbox::table
            .filter(mail_outbox::sent_at.is_null())
            .filter(mail_outbox::next_attempt_at.le(now))
            .filter(
                mail_outbox::locked_until
                    .is_null()
                    .or(mail_outbox::locked_until.lt(now)),
            )
            .order(mail_outbox::next_attempt_at.asc())
            .limit(max)
            .select(mail_outbox::id)
            .load(c)
            .await
    })
}

/// Claims one row until `until`: only the worker whose conditional update changed the row
/// delivers it.
pub async fn claim(
    conn: &mut Conn,
    id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<Option<Mail>, DbError> {
    run!(conn, |c| {
        diesel::update(
            mail_outbox::table
                .find(id)
                .filter(mail_outbox::sent_at.is_null())
                .filter(
                    mail_outbox::locked_until
                        .is_null()
                        .or(mail_outbox::locked_until.lt(now)),
                ),
        )
        .set(mail_outbox::locked_until.eq(until))
        .returning(Mail::as_returning())
        .get_result(c)
        .await
        .optional()
    })
}

/// Marks a row delivered and drops its bodies (they may hold a live link); the row stays only
/// to count toward the recipient's send limit.
pub async fn mark_sent(conn: &mut Conn, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::update(mail_outbox::table.find(id))
            .set((
                mail_outbox::sent_at.eq(now),
                mail_outbox::locked_until.eq(None::<NaiveDateTime>),
                mail_outbox::text_body.eq(""),
                mail_outbox::html_body.eq(""),
                mail_outbox::last_error.eq(None::<String>),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Records a failed attempt and when to try again.
pub async fn mark_failed(
    conn: &mut Conn,
    id: &str,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    error: &str,
) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::update(mail_outbox::table.find(id))
            .set((
                mail_outbox::attempts.eq(attempts),
                mail_outbox::next_attempt_at.eq(next_attempt_at),
                mail_outbox::locked_until.eq(None::<NaiveDateTime>),
                mail_outbox::last_error.eq(error),
            ))
            .execute(c)
            .await
    })
    .map(drop)
}

/// Deletes a row (given up on after too many attempts).
pub async fn delete(conn: &mut Conn, id: &str) -> Result<(), DbError> {
    run!(conn, |c| {
        diesel::delete(mail_outbox::table.find(id)).execute(c).await
    })
    .map(drop)
}

/// Deletes delivered rows created before `before` (older than the send-limit window).
pub async fn purge_sent(conn: &mut Conn, before: NaiveDateTime) -> Result<usize, DbError> {
    run!(conn, |c| {
        diesel::delete(
            mail_outbox::table
                .filter(mail_outbox::sent_at.is_not_null())
                .filter(mail_outbox::created_at.lt(before)),
        )
        .execute(c)
        .await
    })
}
