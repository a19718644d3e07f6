-- audit_log retention (docs/ACCESS.md "Retention"): the append-only trigger now
-- lets a DELETE through only for rows older than the retention the deleting
-- transaction declares in the setting bpmc.audit_retention_days (PruneAuditLog
-- sets it with SET LOCAL). UPDATE, TRUNCATE and any other DELETE still fail.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    days int;
BEGIN
    IF TG_OP = 'DELETE' THEN
        days := nullif(current_setting('bpmc.audit_retention_days', true), '')::int;
        IF days IS NOT NULL AND days > 0 AND OLD.at < now() - make_interval(days => days) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
