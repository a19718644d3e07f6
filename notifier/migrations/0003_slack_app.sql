-- Library: notifier (notifier/). The Slack app form of the slack channel (docs/RECEIVER.md
-- "Slack app"): the message posted about one incident to one destination (thread_key: the
-- page's dedup key without "~<n>"), so that a later state change updates it (chat.update).
CREATE TABLE slack_messages (
  channel        TEXT NOT NULL,
  destination    TEXT NOT NULL,   -- '' = the channel's own Slack channel, else a member id
  thread_key     TEXT NOT NULL,
  slack_channel  TEXT NOT NULL,   -- the channel id chat.postMessage answered (D... for a DM)
  ts             TEXT NOT NULL,
  updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (channel, destination, thread_key)
);
