-- Library: notices (notices/). Issue 16: notices people can read (a locale and a
-- time zone per customer), contacts by channel, maintenance windows that can be
-- edited and cancelled, and the notice kinds that tell subscribers so.
-- Customers have no table of their own (they are the customer ids of billing's
-- subscriptions and identity's users), so how a customer reads notices is the
-- notices library's own table, set through PUT /api/v1/notices/preferences/{customer}.

-- How a customer reads notices. No row = Russian, Europe/Moscow.
CREATE TABLE notice_preferences (
    customer_id  TEXT PRIMARY KEY,
    locale       TEXT NOT NULL DEFAULT 'ru' CHECK (locale IN ('ru', 'en')),
    time_zone    TEXT NOT NULL DEFAULT 'Europe/Moscow',  -- IANA name, checked by the API
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Contacts by channel type: a notice goes to each of the customer's contacts on
-- a channel the receiver has configured for that type. Only 'email' exists today;
-- a later 'telegram' contact (address = a chat id, linked by a code) widens the CHECK.
ALTER TABLE notice_contacts RENAME COLUMN email TO address;
ALTER TABLE notice_contacts ADD COLUMN channel TEXT NOT NULL DEFAULT 'email'
    CHECK (channel IN ('email'));
ALTER TABLE notice_contacts DROP CONSTRAINT notice_contacts_pkey;
ALTER TABLE notice_contacts ADD PRIMARY KEY (customer_id, channel, address);

-- Editing (PATCH) bumps `revision`; the engine tells the subscribers once per
-- revision it has not told (maintenance:<id>:changed:<revision>) when the advance
-- notice is already out. Cancelling (DELETE) sets cancelled_at; the engine tells
-- those who were told of the window once (maintenance:<id>:cancelled).
ALTER TABLE maintenance_windows
    ADD COLUMN revision          INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN noticed_revision  INTEGER NOT NULL DEFAULT 0,
    -- The times the subscribers were last told (advance or change notice): what a
    -- cancellation notice repeats.
    ADD COLUMN noticed_starts_at TIMESTAMPTZ,
    ADD COLUMN noticed_ends_at   TIMESTAMPTZ,
    ADD COLUMN updated_by        TEXT,
    ADD COLUMN updated_at        TIMESTAMPTZ,
    ADD COLUMN cancelled_at      TIMESTAMPTZ,
    ADD COLUMN cancelled_by      TEXT,
    ADD COLUMN cancel_noticed_at TIMESTAMPTZ;

ALTER TABLE notices DROP CONSTRAINT notices_kind_check;
ALTER TABLE notices ADD CONSTRAINT notices_kind_check
    CHECK (kind IN ('maintenance_scheduled', 'maintenance_changed', 'maintenance_cancelled',
                    'maintenance_ended', 'connector_problem', 'connector_resolved',
                    'payment_failed'));
