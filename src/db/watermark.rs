//! The ordering rule of the mirror, in one place. Each mirrored row keeps a watermark: the
//! Stripe `created` second of the state it holds. A state is written only over older state
//! (or over state of its own second, when it is Stripe's answer just now); a state of the
//! row's own second that came in an event is a tie, settled by re-reading the object.
//! [`decide`] is the rule; [`wins_sql`] is the same rule as PostgreSQL's condition for a
//! batch upsert, and the receiver's in-batch planner asks [`decide`] about two events of one
//! object.

/// How current a Stripe state being written is, in Stripe's unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Stripe's answer to a call we just made, or a fresh re-read: it wins over anything
    /// stored at the same second or earlier.
    Current(i64),
    /// The state carried by an event created at this second: it wins only over older state;
    /// a tie cannot be ordered by `created` alone (STRIPE_RULES.md, Delivery).
    Event(i64),
}

impl Freshness {
    /// The incoming state's second and the rule it is written by.
    pub fn parts(self) -> (i64, Rule) {
        match self {
            Freshness::Current(at) => (at, Rule::NewerOrEqual),
            Freshness::Event(at) => (at, Rule::Newer),
        }
    }
}

/// How a batch of states is written over the stored rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Newer state wins; state of the row's own second is a tie (an event's state).
    Newer,
    /// Newer state and state of the row's own second win (Stripe's answer just now).
    NewerOrEqual,
    /// As [`Rule::Newer`], for objects a sync listed: most are not stored yet, so on
    /// PostgreSQL the rows are first written by a plain `INSERT` (in a savepoint), which
    /// costs PostgreSQL about a fifth less than the upsert's speculative insertion; a batch
    /// that meets a stored row is rolled back to the savepoint and upserted.
    Listed,
}

impl Rule {
    /// Whether state of the row's own second wins (else it is a tie).
    pub fn equal_wins(self) -> bool {
        self == Rule::NewerOrEqual
    }

    /// Whether a plain insert is tried first ([`Rule::Listed`]).
    pub fn insert_first(self) -> bool {
        self == Rule::Listed
    }
}

/// What a watermarked write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Written,
    /// The row already holds newer state: nothing changed.
    Stale,
    /// The row holds state of the same second: the object must be re-read from Stripe.
    Tie,
}

/// The rule: what writing a state of second `at` over a row holding `stored` does (`None`:
/// no watermark yet, or no row).
pub fn decide(stored: Option<i64>, at: i64, equal_wins: bool) -> Applied {
    match stored {
        None => Applied::Written,
        Some(w) if w < at || (equal_wins && w == at) => Applied::Written,
        Some(w) if w == at => Applied::Tie,
        Some(_) => Applied::Stale,
    }
}

/// [`decide`]'s "written" as the `WHERE` of PostgreSQL's `ON CONFLICT DO UPDATE` over
/// `table` (the stored row) and `EXCLUDED` (the incoming one). `equal_wins` is not spelled
/// out: the text ends where the caller binds it, so one statement serves both kinds of
/// write.
pub fn wins_sql(table: &str) -> String {
    format!(
        "{table}.watermark IS NULL OR {table}.watermark < EXCLUDED.watermark \
         OR ({table}.watermark = EXCLUDED.watermark AND "
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_state_wins_older_is_stale_and_the_same_second_is_a_tie_unless_current() {
        assert_eq!(decide(None, 10, false), Applied::Written);
        assert_eq!(decide(Some(9), 10, false), Applied::Written);
        assert_eq!(decide(Some(11), 10, false), Applied::Stale);
        assert_eq!(decide(Some(10), 10, false), Applied::Tie);
        assert_eq!(decide(Some(10), 10, true), Applied::Written);
        assert_eq!(decide(Some(11), 10, true), Applied::Stale);
        assert_eq!(Freshness::Event(7).parts(), (7, Rule::Newer));
        assert_eq!(Freshness::Current(7).parts(), (7, Rule::NewerOrEqual));
        assert!(Rule::NewerOrEqual.equal_wins());
        assert!(!Rule::Newer.equal_wins() && !Rule::Listed.equal_wins());
        assert!(Rule::Listed.insert_first() && !Rule::Newer.insert_first());
    }

    /// PostgreSQL's upsert under `wins_sql` writes exactly when `decide` says so (the
    /// suite's database: `TEST_POSTGRES_URL`, as the integration tests use it).
    #[test]
    fn postgres_writes_exactly_when_the_rule_says_written() {
        use diesel::{Connection, PgConnection, RunQueryDsl};
        let url = std::env::var("TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let mut pg = PgConnection::establish(&url).expect("the test PostgreSQL answers");
        diesel::sql_query("CREATE TEMP TABLE rule (k int PRIMARY KEY, watermark bigint)")
            .execute(&mut pg)
            .unwrap();
        for stored in [None, Some(9), Some(10), Some(11)] {
            for equal_wins in [false, true] {
                diesel::sql_query("DELETE FROM rule")
                    .execute(&mut pg)
                    .unwrap();
                let stored_sql = stored.map_or("NULL".to_owned(), |w: i64| w.to_string());
                diesel::sql_query(format!("INSERT INTO rule VALUES (1, {stored_sql})"))
                    .execute(&mut pg)
                    .unwrap();
                let written = diesel::sql_query(format!(
                    "INSERT INTO rule VALUES (1, 10) ON CONFLICT (k) DO UPDATE \
                     SET watermark = EXCLUDED.watermark WHERE {}{equal_wins})",
                    wins_sql("rule")
                ))
                .execute(&mut pg)
                .unwrap();
                assert_eq!(
                    written == 1,
                    decide(stored, 10, equal_wins) == Applied::Written,
                    "stored {stored:?}, equal_wins {equal_wins}"
                );
            }
        }
    }
}
