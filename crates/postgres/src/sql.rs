//! The SQL the destination runs: the helper schema it installs once per
//! database, and the per-table statements that apply a batch.
//!
//! One batch is one call of `pauselog.apply_batch_v1(whole, one, keys, seqs,
//! deletes, payloads)`: a single round trip and a single transaction. The
//! function runs `whole` on the whole batch inside a subtransaction (the
//! fast path: one set-based statement). When that fails with a data or
//! integrity error (SQLSTATE classes 22 and 23: CHECK, NOT NULL, foreign key,
//! unique, bad JSON), it applies each half of the batch the same way, and so
//! on down to single records, which run `one`; it returns the index,
//! SQLSTATE and message of every record that failed, and the others are
//! applied. Halving costs about `2 × log2(batch)` statements per bad record
//! (about 20 for a batch of 1024) where record by record would cost one per
//! record, each planned anew (`EXECUTE`): a batch with a bad record stays
//! well inside the statement timeout. Any other error escapes the function
//! and fails the whole call.

/// Name of the helper schema. Holds the tombstones table and the function.
pub(crate) const HELPER_SCHEMA: &str = "pauselog";

/// Key of the advisory lock that serialises installs of the helper schema
/// (`CREATE OR REPLACE FUNCTION` run by two sessions at once fails with
/// "tuple concurrently updated"). The bytes spell "pauselog".
const INSTALL_LOCK_KEY: i64 = 0x7061_7573_656c_6f67;

/// Creates the helper schema, the tombstones table and the batch function.
/// Idempotent; run in one transaction under [`INSTALL_LOCK_KEY`].
pub(crate) fn install_script() -> String {
    format!(
        r#"
SELECT pg_advisory_xact_lock({INSTALL_LOCK_KEY});
CREATE SCHEMA IF NOT EXISTS {HELPER_SCHEMA};
-- The seq of the last delete applied per (table, key): an older upsert
-- delivered late (at least once, retries) must not bring a deleted row back.
CREATE TABLE IF NOT EXISTS {HELPER_SCHEMA}.tombstones (
    table_name text NOT NULL,
    key text NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (table_name, key)
);
CREATE OR REPLACE FUNCTION {HELPER_SCHEMA}.apply_batch_v1(
    whole text, one text, keys text[], seqs bigint[], deletes boolean[], payloads text[])
RETURNS TABLE (error_index integer, error_code text, error_message text)
LANGUAGE plpgsql AS $fn$
DECLARE
    -- Ranges of the batch still to apply, as a stack whose top is the
    -- leftmost range, so that records apply in batch order.
    los integer[] := ARRAY[1];
    his integer[] := ARRAY[coalesce(array_length(keys, 1), 0)];
    depth integer;
    lo integer;
    hi integer;
    mid integer;
BEGIN
    IF his[1] = 0 THEN
        RETURN;
    END IF;
    WHILE coalesce(array_length(los, 1), 0) > 0 LOOP
        depth := array_length(los, 1);
        lo := los[depth];
        hi := his[depth];
        los := los[1:depth - 1];
        his := his[1:depth - 1];
        IF lo = hi THEN
            BEGIN
                EXECUTE one USING keys[lo:lo], seqs[lo:lo], deletes[lo:lo], payloads[lo:lo];
            EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
                error_index := lo;
                error_code := SQLSTATE;
                error_message := SQLERRM;
                RETURN NEXT;
            END;
        ELSE
            BEGIN
                EXECUTE whole USING keys[lo:hi], seqs[lo:hi], deletes[lo:hi], payloads[lo:hi];
            EXCEPTION WHEN data_exception OR integrity_constraint_violation THEN
                -- A bad record in the range: apply each half on its own.
                mid := (lo + hi) / 2;
                los := los || (mid + 1) || lo;
                his := his || hi || mid;
            END;
        END IF;
    END LOOP;
END
$fn$;
"#
    )
}

/// The signature [`install_script`] creates, for `to_regprocedure`.
pub(crate) const APPLY_SIGNATURE: &str = "pauselog.apply_batch_v1(text,text,text[],bigint[],boolean[],text[])";

/// The call that applies one batch: `$1` and `$2` the table's statements
/// for a whole batch and for one record ([`batch_statement`]), then the
/// batch's keys, seqs, delete flags and payloads (JSON text; NULL for
/// deletes).
pub(crate) fn apply_call() -> String {
    format!(
        "SELECT error_index, error_code, error_message \
         FROM {HELPER_SCHEMA}.apply_batch_v1($1, $2, $3::text[], $4::bigint[], $5::boolean[], $6::text[])"
    )
}

/// Reads the target table's qualified name (quoted and as a literal) and the
/// columns a row upsert writes: not dropped, not generated, not
/// `GENERATED ALWAYS AS IDENTITY`, in table order.
pub(crate) const DESCRIBE_TABLE: &str = "
SELECT format('%I.%I', n.nspname, c.relname),
       quote_literal(format('%I.%I', n.nspname, c.relname)),
       array(SELECT a.attname::text FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' AND a.attidentity <> 'a'
             ORDER BY a.attnum)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = $1::text::regclass";

/// The shape of a target table, as [`DESCRIBE_TABLE`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TableShape {
    /// `schema.table`, each part quoted as an identifier where needed.
    pub qualified: String,
    /// `qualified` as a SQL string literal (the tombstones' `table_name`).
    pub literal: String,
    /// Every column a row upsert writes, in table order.
    pub columns: Vec<String>,
}

/// Quotes `name` as a SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The set-based statement that applies a batch to `table`, for
/// `apply_batch_v1`. Parameters: `$1` keys, `$2` seqs, `$3` delete flags,
/// `$4` JSON payloads. `Stale::Skip` gives the statement for one record at a
/// time, `Stale::Guard` the faster one for a whole batch.
///
/// Per key only the batch's newest record counts (`DISTINCT ON`): applying a
/// key's records in seq order ends in the same row. A record applies only
/// where its seq is greater than both the row's seq (the `ON CONFLICT ...
/// WHERE`) and the key's tombstone, so a late or repeated delivery never
/// overwrites a newer version. The insert checks the table's constraints
/// on a stale record too, before it finds the conflict: a stale record that
/// breaks one fails the whole-batch statement, and the per-record one,
/// which leaves out records older than their row first (`Stale::Skip`),
/// accepts it as already superseded. The whole-batch statement does without
/// that filter, a join with the whole table that would cost every batch.
pub(crate) fn batch_statement(table: &TableShape, key_column: &str, seq_column: &str, stale: Stale) -> String {
    let key = ident(key_column);
    let seq = ident(seq_column);
    let data: Vec<String> =
        table.columns.iter().filter(|c| *c != key_column && *c != seq_column).map(|c| ident(c)).collect();
    let mut insert_columns = vec![key.clone(), seq.clone()];
    insert_columns.extend(data.iter().cloned());
    let mut select_values = vec!["f.k".to_owned(), "f.s".to_owned()];
    select_values.extend(data.iter().map(|c| format!("r.{c}")));
    let mut update_columns = vec![seq.clone()];
    update_columns.extend(data.iter().cloned());
    let excluded: Vec<String> = update_columns.iter().map(|c| format!("EXCLUDED.{c}")).collect();
    let (qualified, literal) = (&table.qualified, &table.literal);
    format!(
        "WITH batch AS (
    SELECT DISTINCT ON (b.k) b.k, b.s, b.d, b.p
    FROM unnest($1::text[], $2::bigint[], $3::boolean[], $4::text[]) AS b(k, s, d, p)
    ORDER BY b.k, b.s DESC
), fresh AS (
    SELECT b.k, b.s, b.d, b.p FROM batch b
    WHERE NOT EXISTS (SELECT 1 FROM {HELPER_SCHEMA}.tombstones t
                      WHERE t.table_name = {literal} AND t.key = b.k AND t.seq >= b.s)
{skip_stale}
), upserted AS (
    INSERT INTO {qualified} AS t ({insert_columns})
    SELECT {select_values}
    FROM fresh f CROSS JOIN LATERAL json_populate_record(NULL::{qualified}, f.p::json) AS r
    WHERE NOT f.d
    ON CONFLICT ({key}) DO UPDATE SET ({update_columns}) = ROW({excluded})
    WHERE t.{seq} < EXCLUDED.{seq}
), deleted AS (
    DELETE FROM {qualified} AS t USING fresh f
    WHERE f.d AND t.{key} = f.k AND t.{seq} < f.s
)
INSERT INTO {HELPER_SCHEMA}.tombstones AS t (table_name, key, seq)
SELECT {literal}, f.k, f.s FROM fresh f WHERE f.d
ON CONFLICT (table_name, key) DO UPDATE SET seq = EXCLUDED.seq WHERE t.seq < EXCLUDED.seq",
        insert_columns = insert_columns.join(", "),
        select_values = select_values.join(", "),
        update_columns = update_columns.join(", "),
        excluded = excluded.join(", "),
        skip_stale = match stale {
            Stale::Guard => String::new(),
            Stale::Skip =>
                format!("      AND NOT EXISTS (SELECT 1 FROM {qualified} t WHERE t.{key} = b.k AND t.{seq} >= b.s)"),
        },
    )
}

/// What [`batch_statement`] does with a record older than its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale {
    /// The `ON CONFLICT ... WHERE` keeps it from applying (whole batches).
    Guard,
    /// It is left out before the insert (one record at a time).
    Skip,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_doubled_quotes() {
        assert_eq!(ident("credit_limit"), "\"credit_limit\"");
        assert_eq!(ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn the_batch_statement_writes_key_and_seq_from_the_record_and_the_rest_from_the_payload() {
        let shape = TableShape {
            qualified: "public.customers".into(),
            literal: "'public.customers'".into(),
            columns: vec!["key".into(), "name".into(), "seq".into(), "credit_limit".into()],
        };
        let sql = batch_statement(&shape, "key", "seq", Stale::Guard);
        assert!(sql.contains("INSERT INTO public.customers AS t (\"key\", \"seq\", \"name\", \"credit_limit\")"));
        assert!(sql.contains("SELECT f.k, f.s, r.\"name\", r.\"credit_limit\""));
        assert!(sql.contains("ON CONFLICT (\"key\") DO UPDATE SET (\"seq\", \"name\", \"credit_limit\")"));
        assert!(sql.contains("WHERE t.\"seq\" < EXCLUDED.\"seq\""));
        assert!(!sql.contains("FROM public.customers t WHERE"), "no join with the table in the whole-batch statement");
        let one = batch_statement(&shape, "key", "seq", Stale::Skip);
        assert!(
            one.contains("NOT EXISTS (SELECT 1 FROM public.customers t WHERE t.\"key\" = b.k AND t.\"seq\" >= b.s)")
        );
    }
}
