-- What other libraries may read of connectors (docs/ARCHITECTURE.md, "Tables and
-- their owners"): their display names. Read by notices/ (a customer's service status
-- names the connectors as people know them). The table stays identity's to change.
CREATE VIEW connector_names AS
    SELECT id, name FROM connectors;
