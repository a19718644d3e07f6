-- Library: notices (notices/). Owns maintenance windows, the per-customer notice
-- feed, customers' contact e-mails and the notice engine's cursors.
-- Apply after: webhook_receiver (alerts of connectors under maintenance are stored
-- with receiver_alert_events.outcome 'muted', allowed there), notifier (notice
-- e-mails go through notification_outbox) and incidents (incident notices). No
-- foreign keys leave this module.
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Notices to platform users (notices/, docs/NOTICES.md): planned maintenance windows,
-- the per-customer notice feed, customers' contact e-mails and the engine's cursors.
-- Customers are the exporter's customer ids (subscriptions.customer_id, users.customer_id);
-- no foreign keys, because the exporter's tables may live in another database or come later.

-- Planned maintenance of connectors. While now() is in [starts_at, ends_at) alerts whose
-- `connector` label is in `connectors` are stored but page nobody (outcome 'muted').
CREATE TABLE maintenance_windows (
    id                  BIGSERIAL PRIMARY KEY,
    connectors          TEXT[] NOT NULL CHECK (cardinality(connectors) > 0),
    starts_at           TIMESTAMPTZ NOT NULL,
    ends_at             TIMESTAMPTZ NOT NULL,
    message             TEXT NOT NULL,
    created_by          TEXT NOT NULL,           -- users.name of the admin
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Set in the transaction that created the advance (resp. end) notices: each is done once.
    advance_noticed_at  TIMESTAMPTZ,
    end_noticed_at      TIMESTAMPTZ,
    CHECK (ends_at > starts_at)
);
CREATE INDEX maintenance_windows_ends_at ON maintenance_windows (ends_at);
CREATE INDEX maintenance_windows_connectors ON maintenance_windows USING gin (connectors);
-- What the notice engine still has to do.
CREATE INDEX maintenance_windows_pending ON maintenance_windows (starts_at)
    WHERE end_noticed_at IS NULL;

-- The per-customer notice feed (GET /api/v1/notices). A notice names only its own customer's
-- connectors and payments. UNIQUE (customer_id, dedup_key) makes every notice happen once
-- even with two receivers or a crash between steps:
--   maintenance:<window id>:advance | maintenance:<window id>:ended
--   incident:<incident id>:problem  | incident:<incident id>:resolved
--   payment:<payment id>
CREATE TABLE notices (
    id            BIGSERIAL PRIMARY KEY,
    customer_id   TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('maintenance_scheduled', 'maintenance_ended',
                                                'connector_problem', 'connector_resolved',
                                                'payment_failed')),
    connectors    TEXT[] NOT NULL DEFAULT '{}',  -- this customer's connectors it is about
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    dedup_key     TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Outbox rows enqueued for it (one per contact address), and why none when 0:
    -- no_channel (notices.email_channel unset), no_contact, rate_limited.
    emails        INTEGER NOT NULL DEFAULT 0,
    email_skipped TEXT,
    -- A connector_problem notice whose connector_resolved notice is still to come.
    open          BOOLEAN NOT NULL DEFAULT false,
    UNIQUE (customer_id, dedup_key)
);
CREATE INDEX notices_customer_id ON notices (customer_id, id);
CREATE INDEX notices_dedup_key ON notices (dedup_key);
CREATE INDEX notices_open ON notices (id) WHERE open;
-- The per-customer e-mail rate limit counts recent e-mailed notices.
CREATE INDEX notices_emailed ON notices (customer_id, created_at) WHERE emails > 0;

-- Where notices to a customer are e-mailed (PUT /api/v1/notices/contacts/{customer}).
CREATE TABLE notice_contacts (
    customer_id  TEXT NOT NULL,
    email        TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, email)
);

-- Named positions of the notice engine. 'payments': failed payments that occurred before
-- `since` are never noticed (the first start does not notice the whole history).
CREATE TABLE notice_cursors (
    name   TEXT PRIMARY KEY,
    since  TIMESTAMPTZ NOT NULL
);
INSERT INTO notice_cursors (name, since) VALUES ('payments', now());
