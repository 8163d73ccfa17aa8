-- No query looks findings up by `check_key`: scoring reads every row and groups them itself.
-- Keeping the index cost the collection's writer about a tenth of its time per finding
-- (docs/benchmarks.md), for nothing.
DROP INDEX findings_check;
