-- Snooze (POST /api/v1/incidents/{id}/snooze, docs/INCIDENTS.md "Snooze and
-- reassign"): an acknowledged incident stays acknowledged until snoozed_until,
-- then goes back to triggered and pages its acknowledger. While it is set,
-- next_due_at is snoozed_until (a snooze replaces the ack_timeout). Cleared by
-- every status change.
ALTER TABLE incidents ADD COLUMN snoozed_until TIMESTAMPTZ;
ALTER TABLE incidents ADD COLUMN snoozed_by TEXT;
