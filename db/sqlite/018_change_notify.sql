-- 018: PostgreSQL's 018 makes every committed write notify a channel the
-- FastCGI pool listens on (its answer cache). SQLite has no such channel
-- and the pool keeps no answers on it: nothing to do, but the number is
-- kept so both dialects count the same.
SELECT 1;
