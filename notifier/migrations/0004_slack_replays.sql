-- Library: notifier (notifier/). Slack interactions already acted on: Slack's
-- signature is valid for five minutes, so a signed request copied and resent in that
-- window would act again (Escalate now pages the next level each time). The receiver
-- records the SHA-256 of each signature it acted on and answers a repeat without
-- acting (docs/SECURITY.md "Slack app"). Rows older than ten minutes are deleted as
-- new ones come.
CREATE TABLE slack_interactions_seen (
    digest   TEXT PRIMARY KEY,  -- hex SHA-256 of the X-Slack-Signature header
    seen_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX slack_interactions_seen_at ON slack_interactions_seen (seen_at);
