-- What other libraries may read of incidents (docs/ARCHITECTURE.md, "Tables and their
-- owners"): the tables stay incidents' to change; this view is the contract. Read by
-- notices/ (a connector's open problem and its resolution are noticed to the
-- customers subscribed to it). Writes go through incidents' C++ API
-- (incidents/timeline.h).
CREATE VIEW incident_states AS
    SELECT id, connector, status, muted, created_at, resolved_at
    FROM incidents;
