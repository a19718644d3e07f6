-- Library: notifier (notifier/). The Telegram channel's state (docs/RECEIVER.md "Telegram").

-- The message sent to a chat about one incident (thread_key: the page's dedup key without
-- "~<n>"), so that a later state change edits it (editMessageText) instead of sending anew.
CREATE TABLE telegram_messages (
  channel     TEXT NOT NULL,
  chat_id     TEXT NOT NULL,
  thread_key  TEXT NOT NULL,
  message_id  BIGINT NOT NULL,
  updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, chat_id, thread_key)
);

-- Who a Telegram user is: button presses act as the bound person, and a contact method
-- without chat_id pages the bound chat. One Telegram account per person and vice versa.
CREATE TABLE telegram_bindings (
  person    TEXT PRIMARY KEY,             -- an id under people: in the receiver's config
  user_id   BIGINT NOT NULL UNIQUE,       -- Telegram's from.id
  chat_id   TEXT NOT NULL,                -- the private chat with the bot
  bound_at  TIMESTAMPTZ NOT NULL
);

-- One-time link codes (/start <code>); only their SHA-256 is kept.
CREATE TABLE telegram_link_codes (
  code_hash   TEXT PRIMARY KEY,
  person      TEXT NOT NULL,
  created_at  TIMESTAMPTZ NOT NULL,
  expires_at  TIMESTAMPTZ NOT NULL,
  used_at     TIMESTAMPTZ
);

-- One getUpdates poller per bot across receivers: a lease row with an expiry (no session
-- advisory lock: it would not survive a transaction-mode pooler), and the next update
-- offset, so a restart does not replay presses.
CREATE TABLE telegram_pollers (
  bot_key        TEXT PRIMARY KEY,        -- a hash of the bot token, never the token
  holder         TEXT NOT NULL,
  expires_at     TIMESTAMPTZ NOT NULL,
  update_offset  BIGINT NOT NULL DEFAULT 0
);
