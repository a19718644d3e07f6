-- Library: notifier (notifier/). Link codes for customers' notices (docs/NOTICES.md
-- "Telegram"): a code names either an on-call person or a customer, never both. A
-- customer's code binds no person: it adds a telegram contact of the customer's notices.
ALTER TABLE telegram_link_codes ALTER COLUMN person DROP NOT NULL;
ALTER TABLE telegram_link_codes ADD COLUMN customer_id TEXT;
ALTER TABLE telegram_link_codes ADD CONSTRAINT telegram_link_codes_one_subject
    CHECK ((person IS NULL) <> (customer_id IS NULL));
