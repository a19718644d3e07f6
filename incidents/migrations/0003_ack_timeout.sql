-- Acknowledgement timeouts (escalation_policies.<id>.ack_timeout, docs/INCIDENTS.md):
-- an acknowledged incident not resolved in time goes back to triggered and its
-- escalation resumes (oncall/escalation.h, IncidentState::resumptions). Each
-- timed-out acknowledgement is kept here, oldest first:
-- [{"acknowledged_us": <µs since the epoch>, "resumed_us": <µs>}, ...].
-- next_due_at of an acknowledged incident is now its acknowledgement's timeout
-- (NULL when its policy has none).
ALTER TABLE incidents ADD COLUMN ack_resumptions JSONB NOT NULL DEFAULT '[]'::jsonb
    CHECK (jsonb_typeof(ack_resumptions) = 'array');
