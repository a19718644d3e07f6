-- Library: billing (billing/). Owns subscriptions, payments and the raw log of
-- billing events.
-- Apply after: identity (subscriptions and payments reference connectors(id)).
-- Baseline: equal to the final state of the legacy migrations (exporter 0001-0010 / receiver 0001-0005).

-- Billing facts from the platform (POST /v1/billing/events, docs/BILLING.md):
-- subscriptions, payments and the raw event log that makes ingestion
-- idempotent. The platform authenticates with platform_tokens (identity).
-- A customer is an API key owner (api_keys.owner); it is not a foreign key,
-- because a customer may subscribe before creating a key.
-- Money is exact: integer minor units (kopecks, cents) plus an ISO 4217 code.

-- One row per subscription; started_at, trial_converted_at and cancelled_at
-- are the occurred_at of the events that set them.
CREATE TABLE subscriptions (
    id                  VARCHAR(100) PRIMARY KEY,
    customer_id         VARCHAR(100) NOT NULL,
    connector_id        VARCHAR(50) NOT NULL REFERENCES connectors(id),
    plan                VARCHAR(100) NOT NULL,
    trial               BOOLEAN NOT NULL,
    price_minor         BIGINT NOT NULL,
    currency            CHAR(3) NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL,
    trial_converted_at  TIMESTAMPTZ,
    cancelled_at        TIMESTAMPTZ,
    cancel_reason       TEXT,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_price_check CHECK (price_minor >= 0),
    CONSTRAINT subscriptions_currency_check CHECK (currency ~ '^[A-Z]{3}$')
);
CREATE INDEX idx_subscriptions_connector ON subscriptions (connector_id);
CREATE INDEX idx_subscriptions_customer ON subscriptions (customer_id);
CREATE INDEX idx_subscriptions_started_at ON subscriptions (started_at);
CREATE INDEX idx_subscriptions_cancelled_at ON subscriptions (cancelled_at);

-- One row per payment attempt (the platform's payment id), succeeded or failed.
CREATE TABLE payments (
    id               VARCHAR(100) PRIMARY KEY,
    subscription_id  VARCHAR(100) REFERENCES subscriptions(id),
    customer_id      VARCHAR(100) NOT NULL,
    connector_id     VARCHAR(50) NOT NULL REFERENCES connectors(id),
    amount_minor     BIGINT NOT NULL,
    currency         CHAR(3) NOT NULL,
    status           VARCHAR(20) NOT NULL,
    failure_reason   VARCHAR(100),
    occurred_at      TIMESTAMPTZ NOT NULL,
    CONSTRAINT payments_amount_check CHECK (amount_minor >= 0),
    CONSTRAINT payments_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed'))
);
CREATE INDEX idx_payments_occurred_at ON payments (occurred_at);
CREATE INDEX idx_payments_connector_occurred_at ON payments (connector_id, occurred_at);
CREATE INDEX idx_payments_customer_occurred_at ON payments (customer_id, occurred_at);
CREATE INDEX idx_payments_subscription ON payments (subscription_id);

-- The raw log of every applied billing event. The primary key is the
-- idempotency key: an event is applied in the same transaction that inserts
-- its row here, and only when that insert did not conflict.
CREATE TABLE billing_events (
    event_id     UUID PRIMARY KEY,
    type         VARCHAR(40) NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    occurred_at  TIMESTAMPTZ NOT NULL,
    body         JSONB NOT NULL
);
CREATE INDEX idx_billing_events_occurred_at ON billing_events (occurred_at);
