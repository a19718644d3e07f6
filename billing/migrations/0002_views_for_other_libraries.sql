-- What other libraries may read of billing (docs/ARCHITECTURE.md, "Tables and their
-- owners"): the tables stay billing's to change; these views are the contract. Read by
-- notices/ (maintenance and problem notices go to the customers subscribed to a
-- connector; failed payments are noticed to their customer).

-- One row per subscription: who subscribes to which connector, and until when
-- (cancelled_at NULL = live).
CREATE VIEW billing_subscribers AS
    SELECT customer_id, connector_id, started_at, cancelled_at
    FROM subscriptions;

-- Every failed payment, with what its notice says.
CREATE VIEW billing_failed_payments AS
    SELECT id, customer_id, connector_id, amount_minor, currency, failure_reason, occurred_at
    FROM payments
    WHERE status = 'failed';
