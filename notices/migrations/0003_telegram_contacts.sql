-- Library: notices (notices/). Customers' notices by Telegram (docs/NOTICES.md
-- "Telegram"): a 'telegram' contact is a private chat id, added by "/start <code>"
-- with a customer's link code and removed by "/stop" in that chat.
ALTER TABLE notice_contacts DROP CONSTRAINT notice_contacts_channel_check;
ALTER TABLE notice_contacts ADD CONSTRAINT notice_contacts_channel_check
    CHECK (channel IN ('email', 'telegram'));
